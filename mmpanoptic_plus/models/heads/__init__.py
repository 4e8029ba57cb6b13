# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .rtp_head import RTPHead, resample_to_grid

__all__ = ['RTPHead', 'resample_to_grid']
# Panoptic-DeepLab
from .panoptic_deeplab_decoder import PanopticDeepLabDecoder  # noqa: F401,E402
from .panoptic_deeplab_instance_head import PanopticDeepLabInstanceHead  # noqa: F401,E402,E501
from .panoptic_deeplab_semantic_head import PanopticDeepLabSemanticHead  # noqa: F401,E402,E501
