# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Pure post-processing functions: head outputs -> panoptic maps."""
from .instance_center import find_instance_centers, group_pixels
from .panoptic_deeplab import (PanopticDeepLabResult,
                               panoptic_deeplab_postprocess)
from .panoptic_fusion import (heuristic_panoptic_fusion, large_stuff_mask,
                              merge_semantic_and_instance,
                              segments_to_panoptic, vote_instance_classes)
from .realtime_panoptic import (RTP_TEST_CFG, CroppedMasks, build_dense_boxes,
                                merge_rtp_test_cfg, rtp_instance_masks, rtp_mask_probabilities,
                                rtp_panoptic_predict,
                                select_query_boxes,
                                semantic_labels_to_output)

__all__ = [
    'find_instance_centers', 'group_pixels', 'merge_semantic_and_instance',
    'vote_instance_classes', 'panoptic_deeplab_postprocess',
    'PanopticDeepLabResult', 'heuristic_panoptic_fusion', 'large_stuff_mask',
    'segments_to_panoptic', 'RTP_TEST_CFG',
    'CroppedMasks', 'build_dense_boxes', 'merge_rtp_test_cfg',
    'rtp_instance_masks',
    'rtp_mask_probabilities', 'rtp_panoptic_predict',
    'select_query_boxes', 'semantic_labels_to_output'
]
