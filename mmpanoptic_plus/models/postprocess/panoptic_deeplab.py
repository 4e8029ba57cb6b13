# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic-DeepLab inference (Cheng et al., CVPR 2020), Sec. 3.2, as one
pure batched function of the three head outputs."""
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from mmpanoptic_plus.structures import INSTANCE_OFFSET
from .instance_center import find_instance_centers, group_pixels
from .panoptic_fusion import merge_semantic_and_instance

#: A Panoptic-DeepLab fusion: ``(sem_labels, instance_ids, thing_mask)``,
#: each (B, H, W), -> (B, H, W) int64 panoptic map (see
#: :func:`merge_semantic_and_instance`).
PanopticDeepLabFusion = Callable[[Tensor, Tensor, Tensor], Tensor]


class PanopticDeepLabResult(NamedTuple):
    """Output of :func:`panoptic_deeplab_postprocess` (B images, K =
    ``top_k`` center slots).

    Attributes:
        panoptic_seg (Tensor): (B, H, W) int64, ``label + id *
            instance_offset``; thing segment ``id = k + 1`` comes from
            center slot ``k``; stuff ``id = 0``; void ``void_label``.
        sem_labels (Tensor): (B, H, W) int64 argmax of the semantic logits.
        instance_scores (Tensor): (B, K) score of the segment of slot ``k``:
            mean semantic probability of its class over its pixels times the
            center score; 0 where the slot has no segment in the map.
        instance_labels (Tensor): (B, K) int64 class of the segment of slot
            ``k``, -1 where it has none.
        centers (Tensor): (B, K, 2) int64 (y, x) of the centers.
        center_scores (Tensor): (B, K) heatmap value at the centers.
        center_valid (Tensor): (B, K) bool, True for real centers.
    """
    panoptic_seg: Tensor
    sem_labels: Tensor
    instance_scores: Tensor
    instance_labels: Tensor
    centers: Tensor
    center_scores: Tensor
    center_valid: Tensor


def panoptic_deeplab_postprocess(
        sem_logits: Tensor,
        center_heatmap: Tensor,
        offsets: Tensor,
        num_things: int,
        threshold: float = 0.1,
        nms_kernel: int = 7,
        top_k: int = 200,
        stuff_area_limit: int = 2048,
        void_label: Optional[int] = None,
        instance_offset: int = INSTANCE_OFFSET,
        fusion: Optional[PanopticDeepLabFusion] = None
) -> PanopticDeepLabResult:
    """Panoptic maps and instance scores from Panoptic-DeepLab's outputs.

    Chains :func:`find_instance_centers` (threshold, max-pool NMS, top-k),
    :func:`group_pixels` on the predicted thing pixels (semantic argmax is a
    thing class) and :func:`merge_semantic_and_instance` (majority vote,
    stuff area limit), all batched. Defaults are the Cityscapes ones of the
    paper; COCO uses ``nms_kernel=41, stuff_area_limit=4096``.

    The instance score is the mean softmax probability of the instance's
    class over its pixels times its center's heatmap score (the detectron2
    reference reads the heatmap at the mask's mass center instead; the
    detected center's score is what NMS selected it by, and costs nothing).

    Args:
        sem_logits (Tensor): (B, C, H, W) semantic logits, things first.
        center_heatmap (Tensor): (B, 1, H, W) center heatmap.
        offsets (Tensor): (B, 2, H, W) (dy, dx) center offsets.
        num_things (int): Number of thing classes.
        threshold (float): Center score threshold. Defaults to 0.1.
        nms_kernel (int): Max-pool NMS window. Defaults to 7.
        top_k (int): Centers kept per image. Defaults to 200.
        stuff_area_limit (int): Smaller stuff segments become void.
            Defaults to 2048.
        void_label (int, optional): Void value. Defaults to C.
        instance_offset (int): Defaults to 1000 (mmdet's).
        fusion (callable, optional): Replaces the majority-vote merge:
            called as ``fusion(sem_labels, instance_ids, thing_mask)``
            (e.g. a ``MajorityVoteFusionHead``); it must encode with
            ``instance_offset`` and keep the instance id of
            ``instance_ids`` (the scores are gathered by it), and
            ``stuff_area_limit`` and ``void_label`` are then its business.
            Defaults to None: :func:`merge_semantic_and_instance` with the
            arguments above.

    Returns:
        PanopticDeepLabResult: Panoptic maps, semantic labels, instance
        scores/labels and the centers.
    """
    if sem_logits.dim() != 4:
        raise ValueError('sem_logits must be (B, C, H, W), got '
                         f'{tuple(sem_logits.shape)}')
    batch, num_classes, height, width = sem_logits.shape
    for name, tensor, channels in (('center_heatmap', center_heatmap, 1),
                                   ('offsets', offsets, 2)):
        if tuple(tensor.shape) != (batch, channels, height, width):
            raise ValueError(
                f'{name} must be {(batch, channels, height, width)} like the '
                f'semantic logits, got {tuple(tensor.shape)}')
    if not 0 <= num_things <= num_classes:
        raise ValueError(f'num_things={num_things} but the semantic logits '
                         f'have {num_classes} classes')
    sem_logits = sem_logits.detach()
    # max() returns the first maximum like argmax() but measured ~2.5x
    # faster on CPU for a (1, 19, 1024, 2048) input
    sem_labels = sem_logits.max(dim=1)[1]
    thing_mask = sem_labels < num_things

    centers, center_scores, center_valid = find_instance_centers(
        center_heatmap, threshold, nms_kernel, top_k)
    instance_ids = group_pixels(
        centers, center_valid, offsets.detach(), pixel_mask=thing_mask)
    if fusion is None:
        panoptic = merge_semantic_and_instance(
            sem_labels,
            instance_ids,
            thing_mask,
            num_things,
            num_classes,
            stuff_area_limit=stuff_area_limit,
            void_label=void_label,
            instance_offset=instance_offset)
    else:
        panoptic = fusion(sem_labels, instance_ids, thing_mask)

    # scores of the segments that made it into the map, slot = id
    segment_ids = panoptic.div(instance_offset, rounding_mode='floor')
    segment_pixels = (segment_ids > 0).flatten().nonzero().squeeze(1)
    segment_ids = segment_ids.flatten()[segment_pixels]
    labels = panoptic.flatten()[segment_pixels] - segment_ids * instance_offset
    num_slots = top_k + 1
    slot = segment_pixels // (height * width) * num_slots + segment_ids
    # softmax probability of the segment's class on its pixels only:
    # p = 1 / sum_c exp(logit_c - logit_label) (an overflow gives p = 0,
    # correct to float precision); a view when B = 1
    pixel_logits = sem_logits.transpose(0, 1).reshape(num_classes, -1)
    pixel_logits = pixel_logits.index_select(1, segment_pixels).float()
    label_logits = pixel_logits.gather(0, labels[None])
    probs = (pixel_logits - label_logits).exp_().sum(dim=0).reciprocal_()
    total_slots = batch * num_slots
    prob_sums = torch.bincount(slot, weights=probs, minlength=total_slots)
    areas = torch.bincount(slot, minlength=total_slots)
    mean_probs = (prob_sums / areas.clamp(min=1)).view(batch, num_slots)[:, 1:]
    present = (areas > 0).view(batch, num_slots)[:, 1:]
    instance_scores = torch.where(
        present, mean_probs * center_scores.float(),
        torch.zeros_like(mean_probs))
    instance_labels = torch.full((batch * num_slots, ),
                                 -1,
                                 dtype=torch.long,
                                 device=panoptic.device)
    # every pixel of a slot carries the same label: order does not matter
    instance_labels[slot] = labels
    instance_labels = instance_labels.view(batch, num_slots)[:, 1:]
    return PanopticDeepLabResult(panoptic, sem_labels, instance_scores,
                                 instance_labels, centers, center_scores,
                                 center_valid)
