# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .cityscapes_panoptic import CityscapesPanopticDataset
from .coco_panoptic_format import CocoPanopticFormatDataset
from .synthetic import generate_synthetic_panoptic
from .synthetic_panoptic import SyntheticPanopticDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'CocoPanopticFormatDataset', 'CityscapesPanopticDataset',
    'SyntheticPanopticDataset', 'generate_synthetic_panoptic'
]
