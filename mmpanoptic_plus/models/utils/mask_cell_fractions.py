# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Instance masks read as area fractions of the cells of a strided grid."""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor

from .instance_ownership import as_mask_tensor


def mask_cell_fractions(masks, stride: int, size: Tuple[int, int],
                        device=None) -> Tensor:
    """Fraction of each cell of a stride-``stride`` grid that each mask
    covers.

    Cell ``(i, j)`` covers the input pixels ``[s i, s i + s) x [s j, s j +
    s)`` (centre ``(s j + s // 2, s i + s // 2)``, the convention of
    :func:`stride_grid_coordinates`). Unlike reading the mask at the cell
    centres, the fractions sum to the mask's pixel count divided by
    ``stride ** 2`` (for a mask inside the grid), so a thin mask that no
    cell centre hits still has its area (RTP's mask loss normalises by it).
    Mask pixels beyond ``size * stride`` are outside the grid and dropped;
    the grid beyond the masks' extent reads 0.

    Args:
        masks: (N, H, W) masks (BitmapMasks, ndarray or Tensor, non-zero =
            inside), see :func:`as_mask_tensor`.
        stride (int): Cell size in input pixels.
        size (tuple[int, int]): (h, w) cells of the grid.
        device (torch.device, optional): Device of the result; defaults to
            the masks'.

    Returns:
        Tensor: (N, h, w) float32 in [0, 1].
    """
    masks = as_mask_tensor(masks)
    if device is not None:
        masks = masks.to(device)
    masks = masks.float()
    height, width = size[0] * stride, size[1] * stride
    masks = masks[:, :height, :width]
    masks = F.pad(masks, (0, width - masks.size(2), 0,
                          height - masks.size(1)))
    return F.avg_pool2d(masks[:, None], stride)[:, 0]
