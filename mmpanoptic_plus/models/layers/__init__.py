# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .paste_masks import paste_masks_in_grid, topk_instance_heatmaps
from .pisr_encoder import PISREncoder
from .pisr_encodings import (HEATMAP_NORMALIZERS, HEATMAP_RADIUS,
                             INSTANCE_MIN_RADIUS, PISR_EPS,
                             check_heatmap_normalizer, instance_encodings,
                             instance_heatmaps_from_offsets,
                             semantic_encodings)

__all__ = [
    'HEATMAP_NORMALIZERS', 'HEATMAP_RADIUS', 'INSTANCE_MIN_RADIUS',
    'PISREncoder', 'PISR_EPS', 'check_heatmap_normalizer',
    'instance_encodings',
    'instance_heatmaps_from_offsets', 'paste_masks_in_grid',
    'semantic_encodings', 'topk_instance_heatmaps'
]
