# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Targets of :class:`FCOSMaskTargetAssigner` for a batch."""
from typing import List, NamedTuple, Optional

from torch import Tensor


class FCOSMaskTargets(NamedTuple):
    """Targets of a batch, per FPN level laid out like the predictions.

    Attributes:
        labels (list[Tensor]): Per level (B, H_l, W_l) int64 thing labels,
            ``num_things`` for background.
        bbox_targets (list[Tensor]): Per level (B, 4, H_l, W_l) ltrb distances
            (image pixels) from the location to its instance's box; 0 on
            background.
        centerness_targets (list[Tensor]): Per level (B, H_l, W_l)
            centerness (FCOS; RTP Eq. 10); 0 on background.
        fg_masks (list[Tensor]): Per level (B, H_l, W_l) bool foreground.
        ignore_masks (list[Tensor]): Per level (B, H_l, W_l) bool, background
            locations inside a crowd region (to leave out of the losses).
        assigned_gt_inds (list[Tensor]): Per level (B, H_l, W_l) int64 index
            of the assigned instance in its image's ``gt_instances``, -1 on
            background (e.g. to match query boxes to target masks for a mask
            loss, or to read an instance's embedding).
        levelness_targets (Tensor, optional): (B, h, w) int64 at the
            levelness stride: 0 background, else 1 + the level assigned to
            the pixel's instance. None without levelness.
        levelness_ignore (Tensor, optional): (B, h, w) bool, background
            pixels inside a crowd region. None without levelness.
    """
    labels: List[Tensor]
    bbox_targets: List[Tensor]
    centerness_targets: List[Tensor]
    fg_masks: List[Tensor]
    ignore_masks: List[Tensor]
    assigned_gt_inds: List[Tensor]
    levelness_targets: Optional[Tensor] = None
    levelness_ignore: Optional[Tensor] = None
