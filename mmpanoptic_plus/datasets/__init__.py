# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from . import transforms
from .ade20k_panoptic import ADE20KPanopticDataset
from .cityscapes_panoptic import CityscapesPanopticDataset
from .coco_panoptic_format import CocoPanopticFormatDataset
from .panoptic_conversion import write_coco_panoptic_split
from .synthetic import generate_synthetic_panoptic
from .synthetic_panoptic import SyntheticPanopticDataset
from .transforms import *  # noqa: F401,F403
from .voc_panoptic import VOCPanopticDataset

# the transforms' names follow their own __all__
__all__ = [
    'CocoPanopticFormatDataset', 'CityscapesPanopticDataset',
    'ADE20KPanopticDataset', 'SyntheticPanopticDataset',
    'generate_synthetic_panoptic', 'VOCPanopticDataset',
    'write_coco_panoptic_split'
] + transforms.__all__
