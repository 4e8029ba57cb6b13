# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .realtime_panoptic import RealTimePanoptic

__all__ = ['RealTimePanoptic']
# Panoptic-DeepLab
from .panoptic_deeplab import PanopticDeepLab  # noqa: F401,E402
