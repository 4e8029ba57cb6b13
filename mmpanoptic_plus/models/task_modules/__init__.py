# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .rtp_target_assigner import RTPTargetAssigner, RTPTargets

__all__ = ['RTPTargetAssigner', 'RTPTargets']
