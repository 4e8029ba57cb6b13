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
from typing import Tuple, Union

import torch
from torch import Tensor

from ..utils.instance_centers import find_instance_centers
from ..utils.segment_embeddings import region_encodings

#: Guards the division by the largest vote distance of the ``'image'``
#: normaliser (the region sums are guarded by
#: :data:`~mmpanoptic_plus.models.utils.segment_embeddings.REGION_EPS`, of
#: the same value).
PISR_EPS = 1e-6

#: Default ``C`` of footnote 2: a fixed radius in pixels of the stride-4 map
#: (64 input pixels), see :func:`instance_heatmaps_from_offsets`.
HEATMAP_RADIUS = 16.0

#: The normalisers of :func:`instance_heatmaps_from_offsets` given by name
#: (any positive number is a fixed radius).
HEATMAP_NORMALIZERS = ('instance', 'image')

#: Smallest ``C_k`` of the ``'instance'`` normaliser, in map pixels: an
#: instance whose votes all land on its center (or a center without thing
#: pixels) still weighs the votes within one pixel of it.
INSTANCE_MIN_RADIUS = 1.0


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


def instance_heatmaps_from_offsets(
        center_heatmap: Tensor,
        offsets: Tensor,
        thing_prob: Tensor,
        num_instances: int,
        threshold: float = 0.1,
        nms_kernel: int = 7,
        normalizer: Union[float, str] = HEATMAP_RADIUS
) -> Tuple[Tensor, Tensor]:
    """Initial instance heatmaps of the top-K predicted centers (PISR Sec.
    3.2 and footnote 2, for a Panoptic-DeepLab style instance branch).

    1. Centers: max-pool NMS of ``center_heatmap`` (``nms_kernel``), scores
       above ``threshold``, the ``num_instances`` (K) best, sorted by score
       (Panoptic-DeepLab's center selection,
       :func:`~mmpanoptic_plus.models.postprocess.find_instance_centers`).
    2. Every pixel ``p`` votes for ``v(p) = p + offset(p)``; the heatmap of
       center ``c_k`` is ``1 - ||c_k - v(p)|| / C_k`` clamped to [0, 1]
       (footnote 2, ``C`` its "normalization constant"; ``1 / C`` here):
       a vote on the center gives 1, a vote ``C_k`` or more map pixels away
       gives 0. The paper does not give ``C``; ``normalizer`` chooses it:

       - a number (default :data:`HEATMAP_RADIUS`, 16 map pixels = 64
         input pixels at stride 4): ``C_k`` is that fixed radius, the same
         for every center, crop and image size (the footnote's constant).
         The pixels of an instance vote within a few map pixels of its
         center and keep weights near 1; a neighbour whose center is 8 map
         pixels away gets 0.5, one 16 or more away gets 0. Default because
         it keeps instances apart whatever their size and does not change
         between the training crops and the full test images.
       - ``'instance'``: ``C_k`` is the largest vote distance over the
         predicted thing pixels of that instance (``thing_prob > 0.5``,
         each joined to its nearest center as Panoptic-DeepLab groups
         them), at least 1 map pixel. Also size-independent and keeps
         neighbours at 0, but the instance's own farthest member gets 0 and
         its contrast follows the spread of its votes.
       - ``'image'``: ``C_k`` is the largest vote distance of that center
         over *all* pixels of the map, stuff included (this module's first
         reading, kept for comparison only): about the distance to the
         farthest corner, so a neighbour 30 map pixels away still gets 0.85
         on a 512x1024 crop and 0.93 on a full 1024x2048 image; every
         ``I_k`` is then close to the whole thing mask.
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
        normalizer (float or str): ``C`` of footnote 2: a radius in map
            pixels (> 0), ``'instance'`` or ``'image'`` (see step 2).
            Defaults to :data:`HEATMAP_RADIUS`.

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
    check_heatmap_normalizer(normalizer)
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
    scale = _heatmap_scale(distance, valid, thing_prob.detach().flatten(2),
                           normalizer)
    heatmaps = (1 - distance / scale).clamp(0, 1)
    heatmaps = heatmaps * valid[..., None].to(dtype)
    heatmaps = heatmaps.view(batch, -1, height, width) * thing_prob.to(dtype)
    return heatmaps, valid


def check_heatmap_normalizer(normalizer: Union[float, str]) -> None:
    """Raise ValueError unless ``normalizer`` is a positive radius or one of
    :data:`HEATMAP_NORMALIZERS` (see :func:`instance_heatmaps_from_offsets`).
    """
    if isinstance(normalizer, str):
        if normalizer not in HEATMAP_NORMALIZERS:
            raise ValueError(
                f'normalizer must be a radius in map pixels or one of '
                f'{HEATMAP_NORMALIZERS}, got {normalizer!r}')
    elif isinstance(normalizer, bool) or not isinstance(
            normalizer, (int, float)) or not normalizer > 0:
        raise ValueError('normalizer must be a positive radius in map '
                         f'pixels or one of {HEATMAP_NORMALIZERS}, got '
                         f'{normalizer!r}')


def _heatmap_scale(distance: Tensor, valid: Tensor, thing_prob: Tensor,
                   normalizer: Union[float, str]) -> Tensor:
    """``C_k`` of footnote 2 for every center.

    Args:
        distance (Tensor): (B, K, HW) vote distances to each center.
        valid (Tensor): (B, K) bool, real centers.
        thing_prob (Tensor): (B, 1, HW) thing map in [0, 1].
        normalizer (float or str): See
            :func:`instance_heatmaps_from_offsets`.

    Returns:
        Tensor: (B, K, 1) positive normalisers, or a scalar (fixed radius).
    """
    if normalizer == 'image':
        return distance.amax(dim=-1, keepdim=True).clamp_min(PISR_EPS)
    if normalizer == 'instance':
        num_slots = distance.size(1)
        # each pixel joins its nearest real center (Panoptic-DeepLab's
        # grouping); stuff pixels belong to no instance
        owner = distance.masked_fill(~valid[..., None],
                                     float('inf')).argmin(dim=1)  # (B, HW)
        slots = torch.arange(num_slots, device=distance.device)
        member = (owner[:, None] == slots[None, :, None]) & \
            (thing_prob > 0.5)  # (B, K, HW)
        return distance.masked_fill(~member, 0).amax(
            dim=-1, keepdim=True).clamp_min(INSTANCE_MIN_RADIUS)
    return distance.new_tensor(float(normalizer))
