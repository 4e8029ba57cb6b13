# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Data structures shared by datasets, models, evaluation, visualization,
apis and deployment."""
from .coco_panoptic import coco_panoptic_segments
from .cropped_masks import CroppedMasks
from .panoptic_encoding import INSTANCE_OFFSET, encode_panoptic, split_panoptic
from .panoptic_id_runs import (PanopticIdRuns, decode_png_id_runs,
                               id_map_to_runs, image_to_id_runs,
                               runs_to_id_map)
from .panoptic_png import (MAX_PANOPTIC_ID, ids_to_rgb, read_panoptic_ids,
                           read_panoptic_runs, rgb_to_ids, write_panoptic_ids)
from .segment_boxes import (areas_and_boxes_of_ids, segment_areas_and_boxes,
                            segment_ids_of_index)

__all__ = [
    'CroppedMasks', 'INSTANCE_OFFSET', 'encode_panoptic', 'split_panoptic',
    'MAX_PANOPTIC_ID', 'rgb_to_ids', 'ids_to_rgb', 'read_panoptic_ids',
    'write_panoptic_ids', 'PanopticIdRuns', 'decode_png_id_runs',
    'id_map_to_runs', 'image_to_id_runs', 'runs_to_id_map',
    'read_panoptic_runs',
    'segment_areas_and_boxes', 'segment_ids_of_index',
    'areas_and_boxes_of_ids', 'coco_panoptic_segments'
]
