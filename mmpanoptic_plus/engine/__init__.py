# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .hooks import PanopticVisualizationHook

__all__ = ['PanopticVisualizationHook']
