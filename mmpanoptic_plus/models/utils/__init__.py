# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Geometry and embedding ops shared by training (heads, losses, assigners)
and inference (post-processing)."""
from .box_iou_map import IOU_TYPES, box_iou_map
from .box_regions import expand_boxes, pixels_in_boxes, segment_boxes
from .dense_box_map import anchor_ltrb_on_grid, build_dense_boxes
from .exportable_nms import onnx_nms
from .instance_centers import find_instance_centers
from .instance_ownership import (as_mask_tensor, instance_index_map,
                                 masks_at_points)
from .level_resampling import (output_sample_coordinates, resample_to_grid,
                               resample_to_output, sample_level_regressions,
                               sample_on_stride_grid)
from .ltrb_boxes import decode_ltrb_boxes
from .mask_cell_fractions import mask_cell_fractions
from .rtp_query_selection import (RTPQuerySlots, nms_iou_threshold,
                                  select_query_boxes, select_query_slots,
                                  trim_query_slots)
from .segment_embeddings import (assign_pixels_to_segments, region_encodings,
                                 segment_means, segment_similarity,
                                 segment_sums)
from .spherical_kmeans import (grid_cluster_labels, grid_shape,
                               spherical_kmeans)
from .segment_targets import stack_segment_targets
from .stride_grid import (grid_sample_coordinates, level_grid_points,
                          stride_grid_coordinates)

__all__ = [
    'IOU_TYPES', 'box_iou_map', 'expand_boxes', 'pixels_in_boxes',
    'segment_boxes', 'anchor_ltrb_on_grid', 'build_dense_boxes',
    'find_instance_centers', 'as_mask_tensor', 'instance_index_map',
    'masks_at_points',
    'output_sample_coordinates', 'resample_to_grid', 'resample_to_output',
    'sample_level_regressions', 'sample_on_stride_grid', 'decode_ltrb_boxes',
    'stack_segment_targets', 'grid_sample_coordinates', 'level_grid_points', 'stride_grid_coordinates',
    'assign_pixels_to_segments', 'region_encodings', 'segment_means',
    'segment_similarity', 'segment_sums', 'onnx_nms', 'RTPQuerySlots',
    'nms_iou_threshold', 'select_query_boxes', 'select_query_slots',
    'trim_query_slots', 'mask_cell_fractions', 'grid_cluster_labels',
    'grid_shape', 'spherical_kmeans'
]
