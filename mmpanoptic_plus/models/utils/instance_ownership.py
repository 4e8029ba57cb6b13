# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Per-pixel instance ownership from instance masks: which instance covers a
pixel, read at given points (target assigners, mask losses) or as a full map
(target transforms)."""
import numpy as np
import torch
from torch import Tensor


def as_mask_tensor(masks) -> Tensor:
    """(N, H, W) tensor view of instance masks.

    Args:
        masks: mmdet ``BitmapMasks``, an (N, H, W) ndarray or an (N, H, W)
            Tensor, any dtype (non-zero = inside).

    Returns:
        Tensor: (N, H, W), the same dtype; ndarrays are shared, not copied,
        unless they are read-only or have negative strides (e.g. after
        ``np.flip``).
    """
    if hasattr(masks, 'masks') and not isinstance(masks, Tensor):
        masks = masks.masks  # mmdet BitmapMasks: (N, H, W) ndarray
    if isinstance(masks, np.ndarray):
        if not masks.flags.writeable or any(s < 0 for s in masks.strides):
            masks = masks.copy()
        masks = torch.from_numpy(masks)
    if not isinstance(masks, Tensor) or masks.dim() != 3:
        raise TypeError('masks must be BitmapMasks or an (N, H, W) '
                        f'array, got {type(masks)}')
    return masks


def masks_at_points(masks, xs: Tensor, ys: Tensor) -> Tensor:
    """Which masks cover each point: ``masks[:, y, x]``, a gather at the
    points (masks are never processed at full size).

    Args:
        masks: (N, H, W) masks, see :func:`as_mask_tensor` (they may live on
            another device than the points, e.g. CPU ndarrays).
        xs (Tensor): (P,) int64 pixel columns.
        ys (Tensor): (P,) int64 pixel rows.

    Returns:
        Tensor: (N, P) bool on the points' device, False for points outside
        the masks' extent (e.g. on padding).
    """
    masks = as_mask_tensor(masks)
    height, width = masks.shape[-2:]
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    mask_x = xs.clamp(0, width - 1).to(masks.device)
    mask_y = ys.clamp(0, height - 1).to(masks.device)
    values = masks[:, mask_y, mask_x].to(xs.device).bool()
    return values & inside[None]


def instance_index_map(masks) -> Tensor:
    """(H, W) int64 map: 1 + index of the instance covering each pixel, 0
    where none does.

    Panoptic masks do not overlap; where augmentation made them, the first
    instance wins. A loop over instances (not pixels), one masked fill each:
    measured ~7x faster than ``argmax`` over the (N, H, W) stack (40 masks
    of 1024x2048), whose reduction runs across the strided first axis.
    ndarray masks (data transforms) are filled with numpy: its boolean
    assignment took about 0.04 s on those masks against 0.1-0.2 s for
    torch's ``masked_fill_`` (CPU, one thread); the result is shared with
    the returned tensor, not copied.

    Args:
        masks: (N, H, W) masks, see :func:`as_mask_tensor`.

    Returns:
        Tensor: (H, W) int64 on the masks' device.
    """
    if hasattr(masks, 'masks') and not isinstance(masks, Tensor):
        masks = masks.masks  # mmdet BitmapMasks: (N, H, W) ndarray
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3:
            raise TypeError('masks must be BitmapMasks or an (N, H, W) '
                            f'array, got shape {masks.shape}')
        index = np.zeros(masks.shape[1:], dtype=np.int64)
        for k in range(masks.shape[0] - 1, -1, -1):  # reversed: first wins
            index[masks[k] != 0] = k + 1
        return torch.from_numpy(index)
    masks = as_mask_tensor(masks)
    index = torch.zeros(masks.shape[1:], dtype=torch.long,
                        device=masks.device)
    for k in range(masks.shape[0] - 1, -1, -1):  # reversed: first wins
        index.masked_fill_(masks[k] != 0, k + 1)
    return index
