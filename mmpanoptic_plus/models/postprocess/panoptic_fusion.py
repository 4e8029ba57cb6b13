# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic fusion: every way this package turns segments into a panoptic map.

- :func:`rtp_panoptic_fusion`: the heuristic of Kirillov et al., "Panoptic
  Segmentation", CVPR 2019, Sec. 7 (score order, overlap ratio, stuff area
  limit), which RealTimePanoptic uses to merge its instance masks with the
  semantic map.
"""
from typing import Union

import torch
from torch import Tensor

from mmpanoptic_plus.structures import INSTANCE_OFFSET, CroppedMasks


def rtp_panoptic_fusion(masks: Union[Tensor, CroppedMasks],
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

    stuff = ~taken & (sem_seg >= num_things)
    stuff_area = torch.bincount(
        sem_seg[stuff] - num_things, minlength=num_stuff)
    stuff_kept = torch.zeros(
        num_classes, dtype=torch.bool, device=sem_seg.device)
    stuff_kept[num_things:] = stuff_area >= stuff_area_limit
    stuff &= stuff_kept[sem_seg]
    pan[stuff] = sem_seg[stuff]
    return pan
