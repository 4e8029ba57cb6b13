# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .panoptic_quality_metric import PanopticQualityMetric, semantic_iou

__all__ = ['PanopticQualityMetric', 'semantic_iou']
