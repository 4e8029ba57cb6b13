# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .formatting import PackPanopticInputs
from .loading import LoadPanopticAnnotations

__all__ = ['LoadPanopticAnnotations', 'PackPanopticInputs']
