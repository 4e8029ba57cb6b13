# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Paste RoI mask probabilities onto a dense (strided) grid, batched.

PISR needs the instance heatmaps ``I`` (B, K, H, W) of the top-K
detections on the grid of its feature map ``F`` (stride 4 in Panoptic FPN),
not binary masks at the image size, so mmdet's
``FCNMaskHead._predict_by_feat_single`` (which thresholds, pastes at the
original size and works chunk by chunk) does not fit. ``_do_paste_mask`` of
mmdet is close, but deliberately not reused: it maps a zero-width box to the
whole row (it replaces the resulting ``inf`` coordinates by 0) and it has no
notion of a grid stride. Both are handled here with one ``grid_sample`` call
for every detection of the batch.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Smallest box side (in image pixels) used as a divisor, so that a
#: degenerate box pastes (almost) nothing instead of NaN/inf coordinates.
_MIN_BOX_SIDE = 1e-3


def paste_masks_in_grid(masks: Tensor,
                        boxes: Tensor,
                        grid_shape: Tuple[int, int],
                        stride: float = 1.0) -> Tensor:
    """Paste RoI masks at their boxes on a dense grid.

    Grid cell ``(i, j)`` covers image pixels ``[j * stride, (j + 1) *
    stride) x [i * stride, (i + 1) * stride)``; its value is the mask
    sampled bilinearly at the cell center ``((j + 0.5) * stride, (i + 0.5) *
    stride)``, the (h, w) mask spanning the box exactly (texel ``(u, v)``
    covers ``x1 + [u, u + 1) * (x2 - x1) / w``) and being zero outside it
    (``grid_sample`` with zero padding, ``align_corners=False``: the
    convention of Mask R-CNN / mmdet's mask pasting).

    Args:
        masks (Tensor): (N, h, w) mask values (e.g. probabilities).
        boxes (Tensor): (N, 4) boxes ``(x1, y1, x2, y2)`` in image pixels.
        grid_shape (tuple[int, int]): Output (H, W).
        stride (float): Image pixels per grid cell. Defaults to 1.

    Returns:
        Tensor: (N, H, W) pasted masks, in the dtype of ``masks`` (float).
    """
    if masks.dim() != 3 or boxes.shape != (masks.shape[0], 4):
        raise ValueError(
            f'expected masks (N, h, w) and boxes (N, 4), got '
            f'{tuple(masks.shape)} and {tuple(boxes.shape)}')
    height, width = grid_shape
    num = masks.shape[0]
    masks = masks.float()
    if num == 0:
        return masks.new_zeros((0, height, width))
    boxes = boxes.to(masks)
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    box_w = (x2 - x1).clamp(min=_MIN_BOX_SIDE)
    box_h = (y2 - y1).clamp(min=_MIN_BOX_SIDE)
    centers_x = (torch.arange(width, device=masks.device) + 0.5) * stride
    centers_y = (torch.arange(height, device=masks.device) + 0.5) * stride
    # normalised coordinates in [-1, 1] over each box: (N, W) and (N, H)
    grid_x = (centers_x[None] - x1[:, None]) / box_w[:, None] * 2 - 1
    grid_y = (centers_y[None] - y1[:, None]) / box_h[:, None] * 2 - 1
    grid = torch.stack(
        (grid_x[:, None, :].expand(num, height, width),
         grid_y[:, :, None].expand(num, height, width)),
        dim=3)
    pasted = F.grid_sample(
        masks[:, None],
        grid,
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)
    return pasted[:, 0]


def topk_instance_heatmaps(mask_probs: Sequence[Tensor],
                           boxes: Sequence[Tensor],
                           scores: Sequence[Tensor],
                           num_instances: int,
                           grid_shape: Tuple[int, int],
                           stride: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Instance heatmaps of each image's top-K detections, padded to K.

    Per image the detections are ordered by decreasing score (ties keep
    their order) and the first ``num_instances`` are pasted with
    :func:`paste_masks_in_grid`, all images in one call. Slot ``k`` of image
    ``b`` holds its k-th best detection; images with fewer than K detections
    get all-zero slots with ``valid=False``.

    Args:
        mask_probs (Sequence[Tensor]): Per image (n_b, h, w) mask
            probabilities (any n_b, also 0).
        boxes (Sequence[Tensor]): Per image (n_b, 4) boxes in image pixels.
        scores (Sequence[Tensor]): Per image (n_b, ) detection scores.
        num_instances (int): K.
        grid_shape (tuple[int, int]): Output (H, W).
        stride (float): Image pixels per grid cell.

    Returns:
        tuple[Tensor, Tensor]: ``heatmaps`` (B, K, H, W) float and ``valid``
        (B, K) bool.
    """
    if not len(mask_probs) == len(boxes) == len(scores):
        raise ValueError('mask_probs, boxes and scores must have one entry '
                         'per image')
    if num_instances < 1:
        raise ValueError(f'num_instances must be >= 1, got {num_instances}')
    num_imgs = len(mask_probs)
    height, width = grid_shape
    device = mask_probs[0].device if num_imgs else torch.device('cpu')
    kept_masks, kept_boxes, slots = [], [], []
    for img_id in range(num_imgs):
        order = torch.sort(
            scores[img_id], descending=True, stable=True).indices
        order = order[:num_instances]
        kept_masks.append(mask_probs[img_id][order].float())
        kept_boxes.append(boxes[img_id][order])
        slots.append(img_id * num_instances +
                     torch.arange(len(order), device=device))
    flat = torch.zeros((num_imgs * num_instances, height, width),
                       device=device)
    valid = torch.zeros(
        num_imgs * num_instances, dtype=torch.bool, device=device)
    if num_imgs:
        slots = torch.cat(slots)
        if len(slots):
            pasted = paste_masks_in_grid(
                torch.cat(kept_masks), torch.cat(kept_boxes), grid_shape,
                stride)
            # index_put keeps the autograd link to the mask probabilities
            flat = flat.index_put((slots, ), pasted)
            valid[slots] = True
    return (flat.view(num_imgs, num_instances, height, width),
            valid.view(num_imgs, num_instances))
