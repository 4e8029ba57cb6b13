# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .panoptic_visualization_hook import PanopticVisualizationHook

__all__ = ['PanopticVisualizationHook']
