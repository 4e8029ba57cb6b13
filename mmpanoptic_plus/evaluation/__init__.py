# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from . import functional, metrics  # noqa: F401  (registers the metrics)
from .functional import pq_compute
from .metrics import ContextErrorMetric, PanopticQualityMetric

__all__ = [
    'functional', 'metrics', 'pq_compute', 'PanopticQualityMetric',
    'ContextErrorMetric'
]
