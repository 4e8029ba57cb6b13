# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic encodings of PISR (Borse et al., "Panoptic, Instance and Semantic
Relations: A Relational Context Encoder to Enhance Panoptic Segmentation",
CVPR 2022), Sec. 3.1-3.2, as pure functions of tensors.

An *encoding* summarises the feature map ``F`` (C x HW) under one soft region
``R`` (HW): ``e = R F^T``. Stacking the regions of the N semantic classes
gives ``E_sem = S F^T`` (N x C), stacking the initial heatmaps of the K
predicted instances gives ``E_ins = I F^T`` (K x C).

Normalisation (a choice the paper leaves implicit): every region is divided
by its sum over the pixels before the product, so an encoding is the
region-weighted *mean* feature. Without it an encoding grows with the image
size and the region's area (a 1024x2048 test image would give encodings
~4x those of the 512x1024 training crops), which the reweighting network
and the attention, trained on crops, would then see out of range. A region
that is zero everywhere (an invalid instance slot, an image without things)
gives a zero encoding. The product itself is the shared soft-mask segment
mean :func:`~mmpanoptic_plus.models.utils.region_encodings`.
"""
from typing import Tuple

import torch
from torch import Tensor

from ..postprocess.instance_center import find_instance_centers
from ..utils.segment_embeddings import region_encodings

#: Guards the division by the largest vote distance (the region sums are
#: guarded by :data:`~mmpanoptic_plus.models.utils.segment_embeddings.
#: REGION_EPS`, of the same value).
PISR_EPS = 1e-6


def semantic_encodings(sem_probs: Tensor,
                       feats: Tensor,
                       normalize: bool = True) -> Tensor:
    """Semantic encodings ``E_sem = S F^T`` (PISR Sec. 3.1).

    Each row is the feature map averaged under one class's soft mask (the
    class probabilities, normalised over the pixels, see the module
    docstring).

    Args:
        sem_probs (Tensor): (B, N, H, W) soft semantic map ``S`` (softmax of
            the initial semantic logits over the N classes).
        feats (Tensor): (B, C, H, W) feature map ``F``.
        normalize (bool): Normalise each class map over the pixels. Defaults
            to True.

    Returns:
        Tensor: (B, N, C) ``E_sem``.
    """
    return region_encodings(sem_probs, feats, normalize)


def instance_encodings(inst_heatmaps: Tensor,
                       feats: Tensor,
                       normalize: bool = True) -> Tensor:
    """Instance encodings ``E_ins = I F^T`` (PISR Sec. 3.2).

    Args:
        inst_heatmaps (Tensor): (B, K, H, W) initial instance heatmaps ``I``
            (see :func:`instance_heatmaps_from_offsets`); all-zero slots give
            zero encodings.
        feats (Tensor): (B, C, H, W) feature map ``F``.
        normalize (bool): Normalise each heatmap over the pixels. Defaults to
            True.

    Returns:
        Tensor: (B, K, C) ``E_ins``.
    """
    return region_encodings(inst_heatmaps, feats, normalize)


def instance_heatmaps_from_offsets(center_heatmap: Tensor,
                                   offsets: Tensor,
                                   thing_prob: Tensor,
                                   num_instances: int,
                                   threshold: float = 0.1,
                                   nms_kernel: int = 7
                                   ) -> Tuple[Tensor, Tensor]:
    """Initial instance heatmaps of the top-K predicted centers (PISR Sec.
    3.2 and footnote 2, for a Panoptic-DeepLab style instance branch).

    1. Centers: max-pool NMS of ``center_heatmap`` (``nms_kernel``), scores
       above ``threshold``, the ``num_instances`` (K) best, sorted by score
       (Panoptic-DeepLab's center selection,
       :func:`~mmpanoptic_plus.models.postprocess.find_instance_centers`).
    2. Every pixel ``p`` votes for ``v(p) = p + offset(p)``; the heatmap of
       center ``c_k`` is ``1 - ||c_k - v(p)|| / max_q ||c_k - v(q)||``:
       one minus the distance normalised to [0, 1] (footnote 2). The
       normaliser, which the paper does not spell out, is the largest vote
       distance of that center in that image (the farthest vote gets 0, a
       vote on the center 1); the result is clamped to [0, 1].
    3. The heatmap is multiplied by ``thing_prob`` to suppress stuff pixels
       (the paper multiplies by the thing/stuff binary map from ``S``).

    Slots without a center (fewer than K above the threshold, or none) are
    all-zero and ``valid`` is False there.

    Gradients: the center selection is discrete and the vote distances are
    computed from detached offsets (the gradient of a distance is undefined
    where a vote lands exactly on its center, and the offsets have their own
    loss); the product with ``thing_prob`` keeps its gradient.

    Args:
        center_heatmap (Tensor): (B, 1, H, W) predicted center heatmap.
        offsets (Tensor): (B, 2, H, W) predicted (dy, dx) offsets, in pixels
            of this map (divide input-pixel offsets by the stride).
        thing_prob (Tensor): (B, 1, H, W) thing map in [0, 1]: the binary
            "argmax of S is a thing" map of the paper, or the summed thing
            probabilities.
        num_instances (int): K, the number of heatmap slots.
        threshold (float): Minimum center score (exclusive). Defaults to
            0.1.
        nms_kernel (int): Odd max-pool window of the center NMS. Defaults
            to 7.

    Returns:
        tuple[Tensor, Tensor]:

        - heatmaps (Tensor): (B, K, H, W) initial instance heatmaps ``I``.
        - valid (Tensor): (B, K) bool, True for slots holding a center
          (valid slots come first).
    """
    if center_heatmap.dim() != 4 or center_heatmap.size(1) != 1:
        raise ValueError('center_heatmap must be (B, 1, H, W), got '
                         f'{tuple(center_heatmap.shape)}')
    batch, _, height, width = center_heatmap.shape
    if offsets.shape != (batch, 2, height, width):
        raise ValueError(f'offsets must be {(batch, 2, height, width)}, got '
                         f'{tuple(offsets.shape)}')
    if thing_prob.shape != (batch, 1, height, width):
        raise ValueError(f'thing_prob must be {(batch, 1, height, width)}, '
                         f'got {tuple(thing_prob.shape)}')
    if num_instances < 1:
        raise ValueError(
            f'num_instances must be positive, got {num_instances}')
    centers, _, valid = find_instance_centers(
        center_heatmap, threshold, nms_kernel, top_k=num_instances)
    dtype = torch.promote_types(offsets.dtype, torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=offsets.device, dtype=dtype),
        torch.arange(width, device=offsets.device, dtype=dtype),
        indexing='ij')
    votes = torch.stack([ys, xs]) + offsets.detach().to(dtype)  # (B,2,H,W)
    votes = votes.flatten(2)  # (B, 2, HW)
    centers = centers.to(dtype)  # (B, K, 2)
    # (B, K, HW) distances, K x HW entries per image: K is small (the
    # paper's tens of instances) and the maps are at stride 4
    distance = torch.sqrt(
        (centers[..., 0, None] - votes[:, None, 0]).square() +
        (centers[..., 1, None] - votes[:, None, 1]).square())
    largest = distance.amax(dim=-1, keepdim=True).clamp_min(PISR_EPS)
    heatmaps = (1 - distance / largest).clamp(0, 1)
    heatmaps = heatmaps * valid[..., None].to(dtype)
    heatmaps = heatmaps.view(batch, -1, height, width) * thing_prob.to(dtype)
    return heatmaps, valid
