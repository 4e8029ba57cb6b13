# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTP's query-box selection, re-exported: it lives in
:mod:`mmpanoptic_plus.models.utils.rtp_query_selection`, where the head's
explicit mask loss (whose queries are the inference's ``B_query``) can use it
without importing ``models/postprocess``."""
from mmpanoptic_plus.models.utils.rtp_query_selection import (
    RTPQuerySlots, nms_iou_threshold, select_query_boxes, select_query_slots,
    trim_query_slots)

__all__ = [
    'RTPQuerySlots', 'nms_iou_threshold', 'select_query_boxes',
    'select_query_slots', 'trim_query_slots'
]
