# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .inference import (build_inference_pipeline, inference_panoptic,
                        init_panoptic_model, load_image)
from .panoptic_export import panoptic_to_coco_segments

__all__ = [
    'init_panoptic_model', 'inference_panoptic', 'build_inference_pipeline',
    'load_image', 'panoptic_to_coco_segments'
]
