# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .ciae import CIAE
from .maskformer_pisr import MaskFormerPISR
from .panoptic_deeplab import PanopticDeepLab
from .panoptic_deeplab_pisr import PanopticDeepLabPISR
from .panoptic_fpn_pisr import PanopticFPNPISR
from .pss import PSS
from .realtime_panoptic import RealTimePanoptic
from .two_stage_panoptic_base import TwoStagePanopticBase
from .unified import UnifiedPanoptic
from .upernet_pisr import UPerNetPISR

__all__ = [
    'CIAE', 'MaskFormerPISR', 'PanopticDeepLab', 'PanopticDeepLabPISR',
    'PanopticFPNPISR', 'PSS', 'RealTimePanoptic', 'TwoStagePanopticBase',
    'UnifiedPanoptic', 'UPerNetPISR'
]
