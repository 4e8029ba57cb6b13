# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .fcos_mask_target_assigner import FCOSMaskTargetAssigner
from .fcos_mask_targets import FCOSMaskTargets
from .rtp_target_assigner import RTPTargetAssigner, RTPTargets

__all__ = [
    'FCOSMaskTargetAssigner', 'FCOSMaskTargets', 'RTPTargetAssigner',
    'RTPTargets'
]
