# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .comparison_grid import comparison_grid
from .panoptic_drawing import (panoptic_boundaries, panoptic_to_rgb,
                               resolve_palette, segment_ids_to_panoptic,
                               segment_label_points)
from .panoptic_local_visualizer import PanopticLocalVisualizer
from .retrieval_drawing import (context_box, context_crop,
                                plot_prototype_tsne)

__all__ = [
    'PanopticLocalVisualizer', 'panoptic_to_rgb', 'panoptic_boundaries',
    'segment_label_points', 'segment_ids_to_panoptic', 'resolve_palette',
    'comparison_grid', 'context_box', 'context_crop', 'plot_prototype_tsne'
]
