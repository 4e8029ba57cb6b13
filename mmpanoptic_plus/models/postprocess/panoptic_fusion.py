# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic fusion: every way this package turns segments into a panoptic
map, as stateless functions.

- :func:`heuristic_panoptic_fusion`: the heuristic of Kirillov et al.,
  "Panoptic Segmentation", CVPR 2019, Sec. 7 (score order, overlap ratio,
  stuff area limit); RealTimePanoptic merges its instance masks with the
  semantic map with it.
- :func:`merge_semantic_and_instance` (with :func:`vote_instance_classes`):
  the majority-vote merge of Panoptic-DeepLab (Cheng et al., CVPR 2020,
  Sec. 3.2) of a semantic map and class-agnostic instances.
- :func:`segments_to_panoptic`: a per-pixel segment index (or per-segment
  scores) and per-segment classes, as CIAE, Unified and PSS end with.

All three write mmdet's encoding ``label + instance_id * INSTANCE_OFFSET``
(stuff with instance id 0, void ``num_classes`` unless told otherwise) and
drop small stuff regions with the one helper :func:`large_stuff_mask`.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmpanoptic_plus.structures import INSTANCE_OFFSET, CroppedMasks


def large_stuff_mask(labels: Tensor, stuff_mask: Tensor, num_classes: int,
                     stuff_area_limit: int) -> Tensor:
    """Stuff pixels whose class covers at least ``stuff_area_limit`` of the
    stuff pixels of their image (the stuff area rule of Kirillov et al.,
    CVPR 2019, Sec. 7, shared by every fusion here).

    One ``bincount`` over ``(image, class)`` pairs; all stuff pixels of a
    class in an image form one segment, whatever produced them.

    Args:
        labels (Tensor): (B, ...) integer class of each pixel; only its
            values under ``stuff_mask`` matter, and they must lie in
            ``[0, num_classes)``.
        stuff_mask (Tensor): (B, ...) bool, the stuff pixels.
        num_classes (int): Number of classes (> every label under the mask).
        stuff_area_limit (int): Minimal pixel count of a stuff segment.

    Returns:
        Tensor: (B, ...) bool, ``stuff_mask`` without the pixels of the
        segments below the limit.
    """
    if labels.shape != stuff_mask.shape or labels.dim() < 1:
        raise ValueError(f'labels {tuple(labels.shape)} and stuff_mask '
                         f'{tuple(stuff_mask.shape)} must be one (B, ...) '
                         'shape')
    batch = labels.size(0)
    image = torch.arange(batch, device=labels.device).view(
        -1, *([1] * (labels.dim() - 1)))
    # labels outside the mask may be anything (void, -1): clamp for the
    # index only, the mask removes them again
    slot = image * num_classes + labels.long().clamp(0, max(num_classes - 1,
                                                            0))
    area = torch.bincount(slot[stuff_mask], minlength=batch * num_classes)
    return stuff_mask & (area[slot] >= stuff_area_limit)


def heuristic_panoptic_fusion(masks: Union[Tensor, CroppedMasks],
                              labels: Tensor,
                              scores: Tensor,
                              sem_seg: Tensor,
                              num_things: int,
                              num_stuff: int,
                              overlap_thr: float = 0.5,
                              stuff_area_limit: int = 4096,
                              score_thr: float = 0.0) -> Tensor:
    """Panoptic fusion heuristic of Kirillov et al. (CVPR 2019, Sec. 7).

    Instances scoring below ``score_thr`` are removed; the others, in order
    of decreasing score, each take the pixels of their mask not yet taken,
    unless fewer than ``overlap_thr`` of their mask is still free (then they
    are dropped, as are empty masks). The rule is sequential (an instance's
    fate depends on the kept ones before it), so it loops over the at most
    ``N`` instances, each step being tensor work on the instance's mask crop
    only. Pixels left get the semantic label when it is a stuff class; each
    stuff class covering fewer than ``stuff_area_limit`` such pixels goes to
    void, as do thing-class pixels no instance took.

    Encoding (mmdet's): ``label + instance_id * INSTANCE_OFFSET`` with
    instance ids 1..K in order of decreasing score, stuff with instance id 0,
    void = ``num_things + num_stuff``.

    Args:
        masks (Tensor | CroppedMasks): (N, H, W) bool instance masks, or
            their crops (as :func:`rtp_instance_masks` returns them).
        labels (Tensor): (N,) thing labels in [0, num_things).
        scores (Tensor): (N,) instance scores.
        sem_seg (Tensor): (H, W) semantic argmax in [0, num_things +
            num_stuff), things first.
        num_things (int): Number of thing classes.
        num_stuff (int): Number of stuff classes.
        overlap_thr (float): Minimal free fraction of a mask. Defaults to
            0.5.
        stuff_area_limit (int): Minimal pixel count of a stuff segment.
            Defaults to 4096 (64 x 64, as mmdet's Panoptic FPN).
        score_thr (float): Minimal instance score. Defaults to 0 (the query
            selection already thresholds).

    Returns:
        Tensor: (H, W) int64 panoptic map.
    """
    num_classes = num_things + num_stuff
    if sem_seg.dim() != 2:
        raise ValueError(f'sem_seg must be (H, W), got {tuple(sem_seg.shape)}')
    height, width = sem_seg.shape
    if isinstance(masks, Tensor):
        if masks.dim() != 3:
            raise ValueError(f'masks must be (N, H, W), got '
                             f'{tuple(masks.shape)}')
        masks = CroppedMasks.from_dense(masks)
    if tuple(masks.shape) != (height, width):
        raise ValueError(f'masks are {tuple(masks.shape)} but sem_seg '
                         f'{(height, width)}')
    if not len(masks) == len(labels) == len(scores):
        raise ValueError(f'got {len(masks)} masks, {len(labels)} labels and '
                         f'{len(scores)} scores')
    if labels.numel() and (int(labels.min()) < 0
                           or int(labels.max()) >= num_things):
        raise ValueError(f'instance labels must lie in [0, {num_things}), '
                         f'got {labels.tolist()}')
    if sem_seg.numel() and (int(sem_seg.min()) < 0
                            or int(sem_seg.max()) >= num_classes):
        raise ValueError(f'sem_seg labels must lie in [0, {num_classes})')
    sem_seg = sem_seg.long()
    pan = torch.full((height, width),
                     num_classes,
                     dtype=torch.long,
                     device=sem_seg.device)
    taken = torch.zeros((height, width),
                        dtype=torch.bool,
                        device=sem_seg.device)

    order = torch.argsort(scores, descending=True, stable=True)
    order = order[scores[order] >= score_thr].tolist()
    boxes = masks.boxes.tolist()
    labels_list = labels.tolist()
    instance_id = 0
    for k in order:
        left, top, right, bottom = boxes[k]
        mask = masks.crops[k].to(sem_seg.device)
        taken_box = taken[top:bottom, left:right]
        free = mask & ~taken_box
        area, num_free = torch.stack((mask.sum(), free.sum())).tolist()
        if area == 0 or num_free < overlap_thr * area:
            continue
        instance_id += 1
        taken_box |= free
        pan[top:bottom, left:right][free] = (
            labels_list[k] + instance_id * INSTANCE_OFFSET)

    stuff = large_stuff_mask(sem_seg[None],
                             (~taken & (sem_seg >= num_things))[None],
                             num_classes, stuff_area_limit)[0]
    pan[stuff] = sem_seg[stuff]
    return pan


def vote_instance_classes(sem_labels: Tensor, instance_ids: Tensor,
                          voter_mask: Tensor, num_things: int,
                          num_instances: int) -> Tuple[Tensor, Tensor]:
    """Majority class of each instance among its voting pixels
    (Panoptic-DeepLab, Sec. 3.2: "majority vote" of the semantic labels).

    One ``bincount`` over ``(image, instance, class)`` triples; ties go to
    the lowest class.

    Args:
        sem_labels (Tensor): (B, H, W) int64 semantic labels.
        instance_ids (Tensor): (B, H, W) int64, 0 = no instance,
            ``1..num_instances`` otherwise.
        voter_mask (Tensor): (B, H, W) bool, pixels allowed to vote; their
            label must lie in ``[0, num_things)``.
        num_things (int): Number of thing classes.
        num_instances (int): Largest instance id.

    Returns:
        tuple[Tensor, Tensor]: (B, num_instances + 1) int64 winning class
        and (B, num_instances + 1) bool "has at least one vote" (slot 0 is
        the background and never has votes).
    """
    batch = sem_labels.size(0)
    slots = num_instances + 1
    image = torch.arange(batch, device=sem_labels.device)[:, None, None]
    key = ((image * slots + instance_ids) * num_things + sem_labels)
    votes = torch.bincount(
        key[voter_mask], minlength=batch * slots * num_things).view(
            batch, slots, num_things)
    return votes.argmax(dim=-1), votes.amax(dim=-1) > 0


def merge_semantic_and_instance(sem_labels: Tensor,
                                instance_ids: Tensor,
                                thing_mask: Optional[Tensor],
                                num_things: int,
                                num_classes: int,
                                stuff_area_limit: int = 2048,
                                void_label: Optional[int] = None,
                                instance_offset: int = INSTANCE_OFFSET
                                ) -> Tensor:
    """Merge a semantic map and class-agnostic instances into a panoptic
    map in mmdet's encoding: the majority-vote fusion of Panoptic-DeepLab
    (Cheng et al., CVPR 2020, Sec. 3.2).

    - Thing pixels (``thing_mask``) inside an instance take that instance's
      class, the majority vote of the thing-class semantic labels of its
      thing pixels, and the value ``class + id * instance_offset`` where
      ``id`` is the instance id of ``instance_ids`` (so segment ``k`` of the
      center list is ``id = k + 1``: ids are unique in an image but not
      contiguous per class). An instance with no thing-class vote becomes
      void: unlike the reference, an instance never takes a stuff class, so
      stuff always has instance id 0.
    - Thing pixels outside every instance become void.
    - The other pixels with a stuff label form one segment per stuff class
      (``class``, instance id 0), removed to void when its area is below
      ``stuff_area_limit``; pixels with a thing label that ``thing_mask``
      excludes, or a label outside ``[0, num_classes)``, become void.

    Args:
        sem_labels (Tensor): (B, H, W) integer semantic prediction, things
            first then stuff.
        instance_ids (Tensor): (B, H, W) integer instance ids (0 = none),
            e.g. from :func:`group_pixels`.
        thing_mask (Tensor, optional): (B, H, W) bool foreground mask. None:
            ``sem_labels < num_things`` (the paper's choice).
        num_things (int): Number of thing classes (labels
            ``0..num_things - 1``).
        num_classes (int): Number of classes, things plus stuff.
        stuff_area_limit (int): Stuff segments with fewer pixels become
            void. Defaults to 2048 (Cityscapes; 4096 for COCO).
        void_label (int, optional): Value of void pixels. Defaults to
            ``num_classes`` (mmdet's convention).
        instance_offset (int): Multiplier of the instance id. Defaults to
            1000 (mmdet's ``INSTANCE_OFFSET``).

    Returns:
        Tensor: (B, H, W) int64 panoptic map.
    """
    if sem_labels.dim() != 3 or instance_ids.shape != sem_labels.shape:
        raise ValueError('sem_labels and instance_ids must both be (B, H, W),'
                         f' got {tuple(sem_labels.shape)} and '
                         f'{tuple(instance_ids.shape)}')
    if not 0 <= num_things <= num_classes:
        raise ValueError(f'need 0 <= num_things ({num_things}) <= '
                         f'num_classes ({num_classes})')
    if void_label is None:
        void_label = num_classes
    if max(num_classes, void_label) >= instance_offset:
        raise ValueError(f'labels up to {max(num_classes, void_label)} do '
                         f'not fit below instance_offset={instance_offset}')
    sem_labels = sem_labels.long()
    instance_ids = instance_ids.long()
    batch = sem_labels.size(0)
    image = torch.arange(batch, device=sem_labels.device)[:, None, None]
    known = (sem_labels >= 0) & (sem_labels < num_classes)
    is_thing_label = known & (sem_labels < num_things)
    if thing_mask is None:
        thing_mask = is_thing_label
    elif thing_mask.shape != sem_labels.shape:
        raise ValueError(f'thing_mask must be {tuple(sem_labels.shape)}, got '
                         f'{tuple(thing_mask.shape)}')
    thing_mask = thing_mask.to(torch.bool)
    in_instance = thing_mask & (instance_ids > 0)
    panoptic = torch.full_like(sem_labels, void_label)

    num_instances = int(instance_ids.max()) if instance_ids.numel() else 0
    if num_instances > 0 and num_things > 0:
        classes, has_votes = vote_instance_classes(
            sem_labels, instance_ids, in_instance & is_thing_label,
            num_things, num_instances)
        slot = image * (num_instances + 1) + instance_ids.clamp(min=0)
        pixel_class = classes.flatten()[slot]
        keep_thing = in_instance & has_votes.flatten()[slot]
        panoptic = torch.where(keep_thing,
                               pixel_class + instance_ids * instance_offset,
                               panoptic)

    keep_stuff = large_stuff_mask(
        sem_labels, known & (sem_labels >= num_things) & ~in_instance,
        num_classes, stuff_area_limit)
    return torch.where(keep_stuff, sem_labels, panoptic)


def _pad_segment_labels(segment_labels: Union[Tensor, Sequence[Tensor]],
                        batch: int, num_segments: Optional[int],
                        device: torch.device) -> Tensor:
    """(B, S) int64 labels from a tensor or a list of (S_b,) tensors; the
    list is padded with -1 (void) to the longest one, or to
    ``num_segments`` when given."""
    if isinstance(segment_labels, Tensor):
        if segment_labels.dim() != 2 or segment_labels.size(0) != batch:
            raise ValueError(f'segment_labels must be ({batch}, S), got '
                             f'{tuple(segment_labels.shape)}')
        return segment_labels.to(device=device, dtype=torch.long)
    if len(segment_labels) != batch:
        raise ValueError(f'{len(segment_labels)} label tensors for '
                         f'{batch} images')
    lengths = [len(labels) for labels in segment_labels]
    width = max(lengths, default=0) if num_segments is None else num_segments
    padded = torch.full((batch, width), -1, dtype=torch.long, device=device)
    for index, labels in enumerate(segment_labels):  # per image, not segment
        if labels.dim() != 1 or len(labels) > width:
            raise ValueError(f'labels of image {index} must be (S_b,) with '
                             f'S_b <= {width}, got {tuple(labels.shape)}')
        padded[index, :len(labels)] = labels.to(device)
    return padded


def segments_to_panoptic(segments: Tensor,
                         segment_labels: Union[Tensor, Sequence[Tensor]],
                         num_things: int,
                         num_classes: int,
                         stuff_area_limit: int = 4096,
                         void_label: Optional[int] = None,
                         instance_offset: int = INSTANCE_OFFSET) -> Tensor:
    """Panoptic maps from per-pixel segments and per-segment classes.

    The last step of the methods that predict a set of segments and assign
    each pixel to one of them: CIAE (pixel-to-segment similarity argmax, Sec.
    3.3), Unified (dense instance affinity), PSS (segment sorting). Fully
    vectorised (one gather, one ``bincount`` per rule, one ``cumsum``):

    - a pixel takes the class of its segment; segment index -1 (or any
      index outside ``[0, S)``) or a class outside ``[0, num_classes)``
      makes it void;
    - thing segments (class < ``num_things``) that cover at least one pixel
      are numbered 1, 2, ... per image in order of segment index and
      written ``class + number * instance_offset``;
    - stuff pixels form one segment per class and image (``class``,
      instance id 0), however many segments carry the class; one with
      fewer than ``stuff_area_limit`` pixels becomes void
      (:func:`large_stuff_mask`).

    Args:
        segments (Tensor): (B, H, W) integer segment index of each pixel
            (-1: none), or (B, S, H, W) per-segment scores, argmaxed over S
            (ties to the lowest index).
        segment_labels (Tensor | Sequence[Tensor]): (B, S) integer class of
            each segment (-1: invalid), things first, or B tensors (S_b,)
            padded with -1 to the widest (to S for scores).
        num_things (int): Number of thing classes (labels ``0 ..
            num_things - 1``).
        num_classes (int): Number of classes, things plus stuff.
        stuff_area_limit (int): Stuff segments with fewer pixels become
            void. Defaults to 4096 (64 x 64, as mmdet's Panoptic FPN).
        void_label (int, optional): Value of void pixels. Defaults to
            ``num_classes`` (mmdet's convention).
        instance_offset (int): Multiplier of the instance id. Defaults to
            1000 (mmdet's ``INSTANCE_OFFSET``).

    Returns:
        Tensor: (B, H, W) int64 panoptic map.
    """
    if segments.dim() == 4:
        num_segments = segments.size(1)
        if num_segments == 0:
            segments = segments.new_full(
                (segments.size(0), *segments.shape[2:]), -1, dtype=torch.long)
        else:
            segments = segments.argmax(dim=1)
    elif segments.dim() == 3:
        num_segments = None
    else:
        raise ValueError('segments must be (B, H, W) indices or (B, S, H, W) '
                         f'scores, got {tuple(segments.shape)}')
    if segments.is_floating_point():
        raise ValueError('a (B, H, W) segment map must hold integer indices')
    if not 0 <= num_things <= num_classes:
        raise ValueError(f'need 0 <= num_things ({num_things}) <= '
                         f'num_classes ({num_classes})')
    if void_label is None:
        void_label = num_classes
    if max(num_classes, void_label) >= instance_offset:
        raise ValueError(f'labels up to {max(num_classes, void_label)} do '
                         f'not fit below instance_offset={instance_offset}')
    batch = segments.size(0)
    labels = _pad_segment_labels(segment_labels, batch, num_segments,
                                 segments.device)
    if num_segments is not None and labels.size(1) != num_segments:
        raise ValueError(f'{num_segments} segment scores but '
                         f'{labels.size(1)} segment labels')
    num_segments = labels.size(1)
    segments = segments.long()
    panoptic = torch.full_like(segments, void_label)
    if num_segments == 0:
        return panoptic

    image = torch.arange(batch, device=segments.device)[:, None, None]
    in_range = (segments >= 0) & (segments < num_segments)
    slot = image * num_segments + segments.clamp(0, num_segments - 1)
    pixel_labels = labels.flatten()[slot]
    valid = in_range & (pixel_labels >= 0) & (pixel_labels < num_classes)
    is_thing = valid & (pixel_labels < num_things)

    # instance numbers 1..K of the thing segments present, in index order
    present = torch.bincount(
        slot[is_thing], minlength=batch * num_segments) > 0
    numbers = present.view(batch, num_segments).cumsum(dim=1).flatten()
    panoptic = torch.where(is_thing,
                           pixel_labels + numbers[slot] * instance_offset,
                           panoptic)
    keep_stuff = large_stuff_mask(pixel_labels, valid & ~is_thing,
                                  num_classes, stuff_area_limit)
    return torch.where(keep_stuff, pixel_labels, panoptic)
