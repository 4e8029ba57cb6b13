# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Instance centers and pixel grouping of Panoptic-DeepLab (Cheng et al.,
CVPR 2020), Sec. 3.2 (panoptic segmentation inference): keypoint-style
center selection by max-pool NMS, then each thing pixel joins the center
nearest to where its predicted offset points."""
from typing import Optional

import torch
from torch import Tensor

from ..utils.instance_centers import find_instance_centers

__all__ = ['find_instance_centers', 'group_pixels']

#: Default bound on the elements of one (pixels x centers) distance block in
#: :func:`group_pixels` (1M float32: 4 MiB per temporary).
GROUP_CHUNK_ELEMENTS = 1 << 20


def group_pixels(centers: Tensor,
                 valid: Tensor,
                 offsets: Tensor,
                 pixel_mask: Optional[Tensor] = None,
                 chunk_elements: int = GROUP_CHUNK_ELEMENTS) -> Tensor:
    """Assign pixels to the nearest center of ``coordinate + offset``.

    Each pixel ``p`` votes for the position ``p + offset(p)``, and joins the
    valid center closest to its vote in Euclidean distance (Sec. 3.2; ties
    go to the lower center index). Memory is bounded: the
    (pixels x centers) distances of an image are computed in blocks of at
    most ``chunk_elements`` entries, over its valid centers only, so 200
    centers on a 1024x2048 image never build a 200 x 2M array. Giving the
    thing pixels as ``pixel_mask`` saves the work on the others.

    Args:
        centers (Tensor): (B, K, 2) center (y, x) positions, any numeric
            dtype.
        valid (Tensor): (B, K) bool, False for padding slots (ignored).
        offsets (Tensor): (B, 2, H, W) predicted (dy, dx) from each pixel to
            its instance center.
        pixel_mask (Tensor, optional): (B, H, W) bool, pixels to group (e.g.
            the thing pixels); the others get 0. Defaults to all pixels.
        chunk_elements (int): Bound on the entries of one distance block.

    Returns:
        Tensor: (B, H, W) int64 instance index, ``k + 1`` for center slot
        ``k``, 0 for ungrouped pixels and images without valid centers.
    """
    if offsets.dim() != 4 or offsets.size(1) != 2:
        raise ValueError(
            f'offsets must be (B, 2, H, W), got {tuple(offsets.shape)}')
    batch, _, height, width = offsets.shape
    if centers.dim() != 3 or centers.size(0) != batch or centers.size(2) != 2:
        raise ValueError(f'centers must be (B={batch}, K, 2), got '
                         f'{tuple(centers.shape)}')
    if valid.shape != centers.shape[:2]:
        raise ValueError(f'valid must be {tuple(centers.shape[:2])}, got '
                         f'{tuple(valid.shape)}')
    device = offsets.device
    if pixel_mask is not None and pixel_mask.shape != (batch, height, width):
        raise ValueError(f'pixel_mask must be {(batch, height, width)}, got '
                         f'{tuple(pixel_mask.shape)}')
    instance_index = torch.zeros(
        batch, height * width, dtype=torch.long, device=device)
    valid = valid.to(device=device, dtype=torch.bool)
    dtype = torch.promote_types(offsets.dtype, torch.float32)
    # A loop over images, each step vectorized: gathering every pixel's
    # image's centers instead ((pixels, K, 2) per block) measured ~5x slower
    # on CPU than broadcasting one image's (K, 2) centers.
    for image in range(batch):
        slots = valid[image].nonzero().squeeze(1)
        if slots.numel() == 0:
            continue  # no center: nothing to group
        image_centers = centers[image, slots].to(device=device, dtype=dtype)
        if pixel_mask is None:
            positions = torch.arange(height * width, device=device)
        else:
            positions = pixel_mask[image].flatten().nonzero().squeeze(1)
        image_offsets = offsets[image].to(dtype).flatten(1)  # (2, H*W)
        vote_y = (positions // width).to(dtype) + image_offsets[0, positions]
        vote_x = (positions % width).to(dtype) + image_offsets[1, positions]
        nearest = torch.empty_like(positions)
        chunk = max(1, chunk_elements // slots.numel())
        for start in range(0, positions.numel(), chunk):
            block = slice(start, start + chunk)
            distance = (image_centers[None, :, 0] -
                        vote_y[block, None]).square_()
            distance += (image_centers[None, :, 1] -
                         vote_x[block, None]).square_()
            nearest[block] = distance.argmin(dim=1)
        instance_index[image, positions] = slots[nearest] + 1
    return instance_index.view(batch, height, width)
