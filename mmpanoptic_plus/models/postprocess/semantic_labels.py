# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Semantic labels at the output resolution: the argmax of stride-``s``
semantic logits bilinearly resampled to the output size (the stuff / thing
labels RTP's panoptic fusion starts from, Hou et al., CVPR 2020, Sec. 3.3),
without resampling all C channels at every pixel."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.models.utils import output_sample_coordinates


def _channel_argmax(values: Tensor) -> Tensor:
    """``values.argmax(dim=0)`` (first maximum) of a (C, ...) tensor, one
    contiguous channel at a time: on a CPU, a reduction over the outer,
    strided dimension is several times slower."""
    best = values[0].clone()
    index = torch.zeros(values.shape[1:], dtype=torch.long,
                        device=values.device)
    for channel in range(1, len(values)):
        index.masked_fill_(values[channel] > best, channel)
        torch.maximum(best, values[channel], out=best)
    return index


def semantic_labels_to_output(sem_logits: Tensor,
                              img_shape: Tuple[int, int],
                              out_shape: Tuple[int, int],
                              stride: int = 4,
                              chunk_pixels: int = 1 << 18,
                              max_boundary_fraction: float = 0.25) -> Tensor:
    """Argmax of the semantic logits bilinearly resampled to the output size
    (as :func:`resample_to_output`), mostly without resampling C channels.

    A bilinear sample is a convex combination of its 4 neighbouring cells: if
    class ``c`` is the (first) argmax at all 4, it is the argmax of the
    sample. Only output pixels whose neighbours disagree (class boundaries)
    are interpolated, ``chunk_pixels`` at a time; the result equals the argmax
    of the full resampling (up to float rounding at exact ties). When more
    than ``max_boundary_fraction`` of the pixels are boundaries (noisy
    logits, e.g. an untrained network), the full resampling is done instead,
    ``chunk_pixels`` pixels worth of rows at a time, as it is then faster.

    Args:
        sem_logits (Tensor): (C, h, w) at ``stride`` on the padded input.
        img_shape (tuple[int, int]): Valid (H_img, W_img) of the input.
        out_shape (tuple[int, int]): (H_out, W_out).
        stride (int): Stride of ``sem_logits``. Defaults to 4.
        chunk_pixels (int): Pixels interpolated at once. Defaults to 2 ** 18.
        max_boundary_fraction (float): See above. Defaults to 0.25.

    Returns:
        Tensor: (H_out, W_out) int64 labels.
    """
    num_classes, h, w = sem_logits.shape
    out_h, out_w = out_shape
    device, dtype = sem_logits.device, sem_logits.dtype

    def axis(out_size: int, img_size: int,
             map_size: int) -> Tuple[Tensor, Tensor, Tensor]:
        # cell coordinate of each output pixel, clamped as grid_sample's
        # border padding does
        coord = (torch.arange(out_size, device=device, dtype=dtype) + 0.5) * (
            img_size / (out_size * stride)) - 0.5
        coord = coord.clamp(0, map_size - 1)
        low = coord.floor().long()
        high = (low + 1).clamp(max=map_size - 1)
        return low, high, coord - low

    y_low, y_high, y_frac = axis(out_h, img_shape[0], h)
    x_low, x_high, x_frac = axis(out_w, img_shape[1], w)
    cell_labels = _channel_argmax(sem_logits)
    if num_classes <= torch.iinfo(torch.int16).max:
        cell_labels = cell_labels.to(torch.int16)  # 4x less to gather
    rows_low, rows_high = cell_labels[y_low], cell_labels[y_high]
    labels = rows_low[:, x_low]
    boundary = (labels != rows_low[:, x_high]) | (
        labels != rows_high[:, x_low]) | (labels != rows_high[:, x_high])
    del rows_low, rows_high
    labels = labels.long()
    ys, xs = torch.nonzero(boundary, as_tuple=True)
    if len(ys) > max_boundary_fraction * boundary.numel():
        gy = output_sample_coordinates(out_h, img_shape[0], h, stride,
                                       device, dtype)
        gx = output_sample_coordinates(out_w, img_shape[1], w, stride,
                                       device, dtype)
        band_rows = max(1, chunk_pixels // max(out_w, 1))
        for top in range(0, out_h, band_rows):
            band_gy = gy[top:top + band_rows]
            grid = torch.stack((gx[None, :].expand(len(band_gy), out_w),
                                band_gy[:, None].expand(len(band_gy), out_w)),
                               -1)
            band = F.grid_sample(
                sem_logits[None],
                grid[None],
                mode='bilinear',
                padding_mode='border',
                align_corners=False)[0]
            labels[top:top + band_rows] = _channel_argmax(band)
        return labels
    for start in range(0, len(ys), chunk_pixels):
        py, px = ys[start:start + chunk_pixels], xs[start:start + chunk_pixels]
        y0, y1, fy = y_low[py], y_high[py], y_frac[py]
        x0, x1, fx = x_low[px], x_high[px], x_frac[px]
        values = ((1 - fy) * (1 - fx)) * sem_logits[:, y0, x0]
        values += ((1 - fy) * fx) * sem_logits[:, y0, x1]
        values += (fy * (1 - fx)) * sem_logits[:, y1, x0]
        values += (fy * fx) * sem_logits[:, y1, x1]
        labels[py, px] = _channel_argmax(values)
    return labels
