# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Necks of the methods (mmdet's FPN serves most; UPerNet's fusion is
here)."""
from .upernet_fusion_neck import UPerNetFusionNeck

__all__ = ['UPerNetFusionNeck']
