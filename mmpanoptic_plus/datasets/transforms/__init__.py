# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .formatting import PackPanopticInputs
from .loading import LoadPanopticAnnotations
from .panoptic_deeplab_targets import GeneratePanopticDeepLabTargets
from .panoptic_segment_ids import GeneratePanopticSegmentIds

__all__ = [
    'LoadPanopticAnnotations', 'PackPanopticInputs',
    'GeneratePanopticDeepLabTargets', 'GeneratePanopticSegmentIds'
]
