# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Image coordinates of the cells of a strided feature map.

One convention everywhere (targets, heads, losses, post-processing): cell
``(i, j)`` of a stride-``s`` map sits at the input pixel ``(s * j + s // 2, s
* i + s // 2)``, as FCOS and mmdet's ``MlvlPointGenerator(offset=0.5)`` place
it for even strides.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor


def stride_grid_coordinates(height: int,
                            width: int,
                            stride: int,
                            device=None,
                            dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """Image coordinates of the cells of a stride-``stride`` map.

    Cell ``(i, j)`` sits at ``(x, y) = (stride * j + stride // 2, stride * i
    + stride // 2)``, the convention of FCOS and of mmdet's
    ``MlvlPointGenerator(offset=0.5)`` for even strides.

    Args:
        height (int): Rows of the map.
        width (int): Columns of the map.
        stride (int): Stride of the map in input pixels.
        device (torch.device, optional): Device of the outputs.
        dtype (torch.dtype): Dtype of the outputs. Defaults to float32.

    Returns:
        tuple[Tensor, Tensor]: ``xs`` (width,) and ``ys`` (height,).
    """
    offset = stride // 2
    xs = torch.arange(width, device=device, dtype=dtype) * stride + offset
    ys = torch.arange(height, device=device, dtype=dtype) * stride + offset
    return xs, ys


def grid_sample_coordinates(coords: Tensor, stride: int,
                            map_size: int) -> Tensor:
    """Normalised ``grid_sample`` coordinates (``align_corners=False``) of
    image coordinates on one axis of a stride-``stride`` map.

    ``grid_sample`` puts the centre of cell ``j`` of a ``map_size``-cell axis
    at ``(2 * j + 1) / map_size - 1``; the cell centre at image coordinate
    ``stride * (j + 0.5)`` hence maps to ``2 * x / (stride * map_size) - 1``.

    Args:
        coords (Tensor): (n,) image coordinates (input pixels).
        stride (int): Stride of the sampled map.
        map_size (int): Cells of the sampled map on this axis.

    Returns:
        Tensor: (n,) normalised coordinates.
    """
    return 2 * coords / (stride * map_size) - 1


def level_grid_points(featmap_sizes: Sequence[Tuple[int, int]],
                      strides: Sequence[int],
                      dtype: torch.dtype = torch.float32,
                      device: torch.device = None) -> List[Tensor]:
    """Image coordinates of every cell of each level, flattened row-major.

    The same points as mmdet's ``MlvlPointGenerator(strides,
    offset=0.5).grid_priors(featmap_sizes)`` (``s * j + s / 2``), written
    here because mmdet's builds them with ``torch.meshgrid`` without
    ``indexing``, which makes torch warn on every first call (a warning the
    demo would print to every user).

    Args:
        featmap_sizes (Sequence[tuple[int, int]]): (H_l, W_l) per level.
        strides (Sequence[int]): Stride of each level.
        dtype (torch.dtype): Dtype of the points. Defaults to float32.
        device (torch.device, optional): Device of the points.

    Returns:
        list[Tensor]: Per level (H_l * W_l, 2) (x, y), row ``i * W_l + j``
        for cell (i, j).
    """
    if len(featmap_sizes) != len(strides):
        raise ValueError(f'{len(featmap_sizes)} feature map sizes for '
                         f'{len(strides)} strides')
    points = []
    for (height, width), stride in zip(featmap_sizes, strides):
        xs = (torch.arange(width, device=device) * stride).to(dtype)
        ys = (torch.arange(height, device=device) * stride).to(dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        points.append(
            torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=-1) +
            stride * 0.5)
    return points
