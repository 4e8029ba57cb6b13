# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Parameter-free panoptic fusion heads: configurable wrappers of the
functions of :mod:`mmpanoptic_plus.models.postprocess.panoptic_fusion`."""
from .base_stateless_fusion_head import BaseStatelessFusionHead
from .heuristic_panoptic_fusion_head import HeuristicPanopticFusionHead
from .majority_vote_fusion_head import MajorityVoteFusionHead
from .segment_fusion_head import SegmentFusionHead

__all__ = [
    'BaseStatelessFusionHead', 'HeuristicPanopticFusionHead',
    'MajorityVoteFusionHead', 'SegmentFusionHead'
]
