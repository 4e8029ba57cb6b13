# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Necks of the methods (none yet: every method so far uses mmdet's FPN)."""

__all__ = []
