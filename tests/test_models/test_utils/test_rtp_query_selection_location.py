# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The RTP query selection lives in models/utils (the head's mask loss uses
it; heads never import models/postprocess); postprocess re-exports the very
same objects, which its own tests (test_postprocess/test_rtp_query_selection
.py, test_exportable_nms.py) exercise."""
import mmpanoptic_plus.models.postprocess as postprocess
import mmpanoptic_plus.models.postprocess.exportable_nms as post_nms
import mmpanoptic_plus.models.postprocess.rtp_query_selection as post_sel
import mmpanoptic_plus.models.utils as utils


def test_postprocess_reexports_the_utils_objects():
    for name in ('RTPQuerySlots', 'nms_iou_threshold', 'select_query_boxes',
                 'select_query_slots', 'trim_query_slots'):
        assert getattr(post_sel, name) is getattr(utils, name)
        assert getattr(postprocess, name) is getattr(utils, name)
    assert post_nms.onnx_nms is utils.onnx_nms is postprocess.onnx_nms
    assert utils.select_query_slots.__module__ == \
        'mmpanoptic_plus.models.utils.rtp_query_selection'
