# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Geometry and embedding ops shared by training (heads, losses, assigners)
and inference (post-processing)."""

__all__ = []
