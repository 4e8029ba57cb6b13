# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .realtime_panoptic import RealTimePanoptic

__all__ = ['RealTimePanoptic']
# Panoptic-DeepLab
from .panoptic_deeplab import PanopticDeepLab  # noqa: F401,E402
# Panoptic FPN + PISR
from .panoptic_fpn_pisr import PanopticFPNPISR  # noqa: F401,E402
# Panoptic-DeepLab + PISR
from .panoptic_deeplab_pisr import PanopticDeepLabPISR  # noqa: F401,E402
