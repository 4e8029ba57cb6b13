# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Pure post-processing functions: head outputs -> panoptic maps."""
from .ciae import (CIAE_TEST_CFG, assign_pixels, ciae_panoptic_predict,
                   merge_ciae_test_cfg, query_embeddings_at_locations)
from .exportable_nms import onnx_nms
from .instance_center import find_instance_centers, group_pixels
from .panoptic_deeplab import (PanopticDeepLabResult,
                               panoptic_deeplab_postprocess)
from .panoptic_fusion import (heuristic_panoptic_fusion, large_stuff_mask,
                              merge_semantic_and_instance,
                              segments_to_panoptic, vote_instance_classes)
from .pss import (PSS_TEST_CFG, find_seeds, pss_panoptic_predict,
                  pss_segments, seed_segment_mask)
from .pss_dynamic_partition import (compact_labels, dynamic_partition,
                                    segment_concentration)
from .pss_merging import merge_segments
from .realtime_panoptic import (RTP_TEST_CFG, CroppedMasks, build_dense_boxes,
                                merge_rtp_test_cfg, rtp_instance_masks, rtp_mask_probabilities,
                                rtp_panoptic_predict,
                                rtp_queries_to_panoptic,
                                select_query_boxes,
                                semantic_labels_to_output)
from .unified import unified_argmax_at_image_resolution
from .rtp_query_selection import (RTPQuerySlots, nms_iou_threshold,
                                  select_query_slots, trim_query_slots)

__all__ = [
    'CIAE_TEST_CFG', 'assign_pixels', 'ciae_panoptic_predict',
    'merge_ciae_test_cfg', 'query_embeddings_at_locations',
    'find_instance_centers', 'group_pixels', 'merge_semantic_and_instance',
    'vote_instance_classes', 'panoptic_deeplab_postprocess',
    'PanopticDeepLabResult', 'heuristic_panoptic_fusion', 'large_stuff_mask',
    'segments_to_panoptic', 'RTP_TEST_CFG', 'PSS_TEST_CFG', 'find_seeds',
    'pss_panoptic_predict', 'pss_segments', 'seed_segment_mask',
    'compact_labels', 'dynamic_partition', 'segment_concentration',
    'merge_segments',
    'CroppedMasks', 'build_dense_boxes', 'merge_rtp_test_cfg',
    'rtp_instance_masks',
    'rtp_mask_probabilities', 'rtp_panoptic_predict',
    'select_query_boxes', 'semantic_labels_to_output', 'onnx_nms',
    'rtp_queries_to_panoptic',
    'unified_argmax_at_image_resolution', 'RTPQuerySlots', 'nms_iou_threshold',
    'select_query_slots', 'trim_query_slots'
]
