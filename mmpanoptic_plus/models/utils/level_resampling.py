# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Bilinear resampling between strided maps with exact cell alignment.

Cells follow :mod:`.stride_grid` (cell ``j`` of a stride-``s`` map at image
coordinate ``s * j + s // 2``). ``F.interpolate(align_corners=False)``
respects this alignment only when both maps cover the same extent; FPN levels
whose size padding rounded up (P6/P7 of an input that is a multiple of 32 but
not of 128) do not, so these functions sample with ``grid_sample`` at the
image coordinates of the target cells instead (border-clamped).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .stride_grid import grid_sample_coordinates, stride_grid_coordinates


def sample_on_stride_grid(feat: Tensor, stride: int, size: Tuple[int, int],
                          out_stride: int) -> Tensor:
    """Bilinearly sample a stride-``stride`` map at the cells of the
    stride-``out_stride`` grid of ``size`` (border-clamped).

    Args:
        feat (Tensor): (B, C, H_l, W_l).
        stride (int): Stride of ``feat``.
        size (tuple[int, int]): (h, w) of the output grid.
        out_stride (int): Stride of the output grid.

    Returns:
        Tensor: (B, C, h, w).
    """
    height, width = feat.shape[-2:]
    xs, ys = stride_grid_coordinates(size[0], size[1], out_stride,
                                     feat.device, feat.dtype)
    grid_x = grid_sample_coordinates(xs, stride, width)
    grid_y = grid_sample_coordinates(ys, stride, height)
    grid = torch.stack((grid_x[None, :].expand(size[0], size[1]),
                        grid_y[:, None].expand(size[0], size[1])), -1)
    grid = grid[None].expand(feat.size(0), size[0], size[1], 2)
    return F.grid_sample(
        feat, grid, mode='bilinear', padding_mode='border',
        align_corners=False)


def resample_to_grid(feat: Tensor, stride: int, size: Tuple[int, int],
                     out_stride: int) -> Tensor:
    """Bilinearly resample a stride-``stride`` map onto the stride-
    ``out_stride`` grid of ``size`` (cell centres at ``s * j + s / 2``, as
    the target assigner and the post-processing place them).

    When ``feat size * stride == size * out_stride`` this is
    ``F.interpolate(size=size, mode='bilinear', align_corners=False)`` (or
    ``feat`` itself at equal sizes); otherwise (a level whose size padding
    rounded up) :func:`sample_on_stride_grid` keeps the same alignment. Both
    are linear with weights summing to 1, so a 1x1 conv commutes with this
    resampling, bias included.

    Args:
        feat (Tensor): (B, C, H_l, W_l).
        stride (int): Stride of ``feat``.
        size (tuple[int, int]): (h, w) of the output grid.
        out_stride (int): Stride of the output grid.

    Returns:
        Tensor: (B, C, h, w).
    """
    height, width = feat.shape[-2:]
    if (height * stride, width * stride) == (size[0] * out_stride,
                                             size[1] * out_stride):
        if (height, width) == tuple(size):
            return feat
        return F.interpolate(
            feat, size=size, mode='bilinear', align_corners=False)
    return sample_on_stride_grid(feat, stride, size, out_stride)


def sample_level_regressions(bbox_preds: Sequence[Tensor],
                             strides: Sequence[int],
                             size: Tuple[int, int],
                             out_stride: int = 4) -> Tensor:
    """Sample every level's box regression at the pixels of a finer map.

    Each level ``l`` is a map of cells centred at ``s_l * j + s_l / 2``; it is
    bilinearly sampled (border-clamped) at the image coordinate of each output
    cell, ``out_stride * x + out_stride // 2``. When ``size * out_stride ==
    level size * s_l`` this equals ``F.interpolate(scale_factor=s_l /
    out_stride, mode='bilinear', align_corners=False)`` (what RTP's released
    code does); ``grid_sample`` keeps the alignment exact also when padding
    made the level sizes round up.

    Args:
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb
            distances in image pixels.
        strides (Sequence[int]): Stride of each level.
        size (tuple[int, int]): (h, w) of the output map.
        out_stride (int): Stride of the output map. Defaults to 4.

    Returns:
        Tensor: (B, L, 4, h, w) ltrb distances.
    """
    if len(bbox_preds) != len(strides):
        raise ValueError(f'got {len(bbox_preds)} box regression levels but '
                         f'{len(strides)} strides')
    sampled = []
    for bbox_pred, stride in zip(bbox_preds, strides):
        if bbox_pred.dim() != 4 or bbox_pred.size(1) != 4:
            raise ValueError('box regressions must be (B, 4, H_l, W_l), got '
                             f'{tuple(bbox_pred.shape)}')
        sampled.append(
            sample_on_stride_grid(bbox_pred, stride, tuple(size), out_stride))
    return torch.stack(sampled, 1)


def output_sample_coordinates(out_size: int, img_size: int, map_size: int,
                              stride: int, device, dtype) -> Tensor:
    """``grid_sample`` coordinates (``align_corners=False``) on a
    stride-``stride`` map of ``map_size`` cells for each pixel of an output
    axis that spans the valid image extent ``img_size`` (input pixels) at
    ``out_size`` pixels.

    Output pixel ``i`` covers the image coordinate ``(i + 0.5) * img_size /
    out_size``.

    Args:
        out_size (int): Output pixels on the axis.
        img_size (int): Valid image extent on the axis (input pixels; the
            map may cover more, i.e. padding).
        map_size (int): Cells of the map on the axis.
        stride (int): Stride of the map.
        device (torch.device): Device of the output.
        dtype (torch.dtype): Dtype of the output.

    Returns:
        Tensor: (out_size,) normalised coordinates.
    """
    centres = (torch.arange(out_size, device=device, dtype=dtype) +
               0.5) * (img_size / out_size)
    return grid_sample_coordinates(centres, stride, map_size)


def resample_to_output(maps: Tensor,
                       img_shape: Tuple[int, int],
                       out_shape: Tuple[int, int],
                       stride: int = 4,
                       rows: Optional[Tuple[int, int]] = None) -> Tensor:
    """Bilinearly resample stride-``stride`` maps of a padded input to an
    output size, in one step.

    The maps cover the padded input; only its top-left ``img_shape`` part is
    image. The result equals upsampling by ``stride`` (bilinear,
    ``align_corners=False``), cropping to ``img_shape`` and resizing to
    ``out_shape`` as a single bilinear map, e.g. back to ``ori_shape``.

    Args:
        maps (Tensor): (C, h, w).
        img_shape (tuple[int, int]): Valid (H_img, W_img) of the input.
        out_shape (tuple[int, int]): (H_out, W_out).
        stride (int): Stride of ``maps``. Defaults to 4.
        rows (tuple[int, int], optional): ``(top, bottom)``: only output rows
            ``top .. bottom - 1`` (a band of the output, as a band-wise
            consumer needs it); None: all.

    Returns:
        Tensor: (C, H_out, W_out), or (C, bottom - top, W_out) with
        ``rows``.
    """
    h, w = maps.shape[-2:]
    gy = output_sample_coordinates(out_shape[0], img_shape[0], h, stride,
                                   maps.device, maps.dtype)
    if rows is not None:
        gy = gy[rows[0]:rows[1]]
    gx = output_sample_coordinates(out_shape[1], img_shape[1], w, stride,
                                   maps.device, maps.dtype)
    grid = torch.stack((gx[None, :].expand(len(gy), len(gx)),
                        gy[:, None].expand(len(gy), len(gx))), -1)
    return F.grid_sample(
        maps[None],
        grid[None],
        mode='bilinear',
        padding_mode='border',
        align_corners=False)[0]
