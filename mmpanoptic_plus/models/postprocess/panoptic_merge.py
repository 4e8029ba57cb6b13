# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Semantic + class-agnostic instance merge of Panoptic-DeepLab (Cheng et
al., CVPR 2020), Sec. 3.2 (panoptic segmentation): majority vote of
the semantic prediction per instance, stuff segments by class."""
from typing import Optional, Tuple

import torch
from torch import Tensor

#: mmdet's panoptic encoding: ``label + instance_id * INSTANCE_OFFSET``
#: (``mmdet.evaluation.functional.INSTANCE_OFFSET``; repeated here so that
#: this pure-torch module does not import mmdet).
INSTANCE_OFFSET = 1000


def vote_instance_classes(sem_labels: Tensor, instance_ids: Tensor,
                          voter_mask: Tensor, num_things: int,
                          num_instances: int) -> Tuple[Tensor, Tensor]:
    """Majority class of each instance among its voting pixels.

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
    map in mmdet's encoding.

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

    stuff_pixels = known & (sem_labels >= num_things) & ~in_instance
    safe_labels = sem_labels.clamp(0, max(num_classes - 1, 0))
    class_slot = image * num_classes + safe_labels
    stuff_area = torch.bincount(
        class_slot[stuff_pixels], minlength=batch * num_classes)
    keep_stuff = stuff_pixels & (stuff_area[class_slot] >= stuff_area_limit)
    return torch.where(keep_stuff, sem_labels, panoptic)
