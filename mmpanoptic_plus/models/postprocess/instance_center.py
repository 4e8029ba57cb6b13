# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Instance centers and pixel grouping of Panoptic-DeepLab (Cheng et al.,
CVPR 2020), Sec. 3.2 (panoptic segmentation inference): keypoint-style
center selection by max-pool NMS, then each thing pixel joins the center
nearest to where its predicted offset points."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Default bound on the elements of one (pixels x centers) distance block in
#: :func:`group_pixels` (1M float32: 4 MiB per temporary).
GROUP_CHUNK_ELEMENTS = 1 << 20


def find_instance_centers(center_heatmap: Tensor,
                          threshold: float = 0.1,
                          nms_kernel: int = 7,
                          top_k: int = 200) -> Tuple[Tensor, Tensor, Tensor]:
    """Select instance centers from a predicted center heatmap.

    A pixel is a center candidate when it equals the maximum of its
    ``nms_kernel x nms_kernel`` neighbourhood (max-pool NMS) and its value
    exceeds ``threshold``; the ``top_k`` best candidates of each image are
    kept, sorted by decreasing score (Sec. 3.2). Plateaus (equal neighbours)
    keep every pixel of the plateau, as the reference does.

    Args:
        center_heatmap (Tensor): (B, 1, H, W) predicted center heatmap.
        threshold (float): Minimum score (exclusive). Defaults to 0.1.
        nms_kernel (int): Odd max-pool window. Defaults to 7 (Cityscapes;
            41 for COCO).
        top_k (int): Centers kept per image. Defaults to 200.

    Returns:
        tuple[Tensor, Tensor, Tensor]:

        - centers (Tensor): (B, top_k, 2) int64 (y, x) positions, 0 in
          padding slots.
        - scores (Tensor): (B, top_k) heatmap value at each center, 0 in
          padding slots.
        - valid (Tensor): (B, top_k) bool, True for real centers; the valid
          slots of an image come first.
    """
    if center_heatmap.dim() != 4 or center_heatmap.size(1) != 1:
        raise ValueError('center_heatmap must be (B, 1, H, W), got '
                         f'{tuple(center_heatmap.shape)}')
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(
            f'nms_kernel must be a positive odd number, got {nms_kernel}')
    if top_k < 1:
        raise ValueError(f'top_k must be positive, got {top_k}')
    batch, _, height, width = center_heatmap.shape
    heatmap = center_heatmap.detach()
    # the max over a k x k window is the max over k rows of the max over k
    # columns: two 1-D poolings give the same result as one square pooling,
    # measured 2x (k = 7) to 8x (k = 41, COCO) faster on CPU
    half = nms_kernel // 2
    pooled = F.max_pool2d(
        heatmap, kernel_size=(nms_kernel, 1), stride=1, padding=(half, 0))
    pooled = F.max_pool2d(
        pooled, kernel_size=(1, nms_kernel), stride=1, padding=(0, half))
    keep = (heatmap == pooled) & (heatmap > threshold)
    candidate_scores = heatmap.masked_fill(~keep, float('-inf')).flatten(1)

    num_kept = min(top_k, height * width)
    scores, flat_positions = candidate_scores.topk(num_kept, dim=1)
    valid = keep.flatten(1).gather(1, flat_positions)
    scores = scores.masked_fill(~valid, 0)
    centers = torch.stack(
        [flat_positions // width, flat_positions % width], dim=-1)
    centers = centers.masked_fill(~valid[..., None], 0)
    if num_kept < top_k:  # image smaller than top_k pixels: pad
        padding = top_k - num_kept
        centers = F.pad(centers, (0, 0, 0, padding))
        scores = F.pad(scores, (0, padding))
        valid = F.pad(valid, (0, padding))
    return centers, scores, valid


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
