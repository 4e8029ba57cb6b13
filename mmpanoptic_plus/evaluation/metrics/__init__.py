# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .context_error_metric import ContextErrorMetric
from .panoptic_quality_metric import PanopticQualityMetric, semantic_iou

__all__ = ['ContextErrorMetric', 'PanopticQualityMetric', 'semantic_iou']
