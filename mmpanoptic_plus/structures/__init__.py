# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Data structures shared by datasets, models, evaluation, visualization,
apis and deployment."""
from .cropped_masks import CroppedMasks
from .panoptic_encoding import INSTANCE_OFFSET

__all__ = ['CroppedMasks', 'INSTANCE_OFFSET']
