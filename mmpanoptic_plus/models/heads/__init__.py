# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .panoptic_deeplab_decoder import PanopticDeepLabDecoder
from .panoptic_deeplab_instance_head import PanopticDeepLabInstanceHead
from .panoptic_deeplab_semantic_head import PanopticDeepLabSemanticHead
from .rtp_head import RTPHead
from .rtp_head_loss_mixin import RTPHeadLossMixin

__all__ = [
    'PanopticDeepLabDecoder', 'PanopticDeepLabInstanceHead',
    'PanopticDeepLabSemanticHead', 'RTPHead', 'RTPHeadLossMixin'
]
