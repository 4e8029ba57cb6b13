# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Targets of the PSS seeding branch (Sec. 3.4, Appendix A.7): a Gaussian
centre heatmap of radius 16 px and offsets to the centre for the cells
within that radius."""
from typing import Tuple

import torch
from torch import Tensor

from mmpanoptic_plus.models.utils import stride_grid_coordinates


def seed_targets(centers: Tensor,
                 map_size: Tuple[int, int],
                 stride: int = 4,
                 radius: float = 16.) -> Tuple[Tensor, Tensor, Tensor]:
    """Seed heatmap and offset targets of one image, all instances at once.

    For cell ``p`` (at image coordinates of :func:`stride_grid_coordinates`)
    and instance centre ``c`` (input pixels), ``d = ||p - c||``: the heatmap
    is ``max_c exp(-d^2 / (2 sigma^2))`` over the centres with ``d <=
    radius`` (0 elsewhere), ``sigma = (2 radius + 1) / 6`` as mmdet's
    ``gaussian2D`` for a diameter of ``2 radius + 1``; cells within the
    radius of a centre regress the offset ``(c - p) / stride`` (map cells,
    ``(dy, dx)``) to the nearest one.

    Args:
        centers (Tensor): (n, 2) instance centres ``(x, y)``, input pixels
            (box centres: the seeds of Sec. 3.4 are box centres).
        map_size (tuple[int, int]): (h, w) of the stride-``stride`` map.
        stride (int): Map stride. Defaults to 4.
        radius (float): Radius in input pixels. Defaults to 16.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``heatmap`` (1, h, w), ``offsets``
        (2, h, w) and ``within`` (1, h, w) bool (cells that regress an
        offset).
    """
    height, width = map_size
    xs, ys = stride_grid_coordinates(height, width, stride, centers.device,
                                     torch.float32)
    if centers.numel() == 0:
        zeros = xs.new_zeros((1, height, width))
        return zeros, xs.new_zeros((2, height, width)), zeros.bool()
    centers = centers.float()
    dx = centers[:, 0, None, None] - xs[None, None, :]  # (n, 1, w)
    dy = centers[:, 1, None, None] - ys[None, :, None]  # (n, h, 1)
    dist2 = dx**2 + dy**2  # (n, h, w)
    nearest_dist2, nearest = dist2.min(dim=0)
    within = nearest_dist2 <= radius**2
    sigma = (2 * radius + 1) / 6
    heatmap = torch.exp(-nearest_dist2 / (2 * sigma**2)) * within
    offset_y = dy.expand_as(dist2).gather(0, nearest[None])[0]
    offset_x = dx.expand_as(dist2).gather(0, nearest[None])[0]
    offsets = torch.stack([offset_y, offset_x]) / stride * within
    return heatmap[None], offsets, within[None]
