# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Decoding of FCOS-style ltrb distances into boxes."""
from typing import Optional, Sequence

import torch
from mmdet.structures.bbox import distance2bbox
from torch import Tensor


def decode_ltrb_boxes(points: Tensor,
                      ltrb: Tensor,
                      max_shape: Optional[Sequence[int]] = None) -> Tensor:
    """Boxes ``(x - l, y - t, x + r, y + b)`` from locations and their ltrb
    distances (FCOS, Tian et al. 2019, Sec. 3.1), optionally clipped to
    ``[0, W] x [0, H]``.

    mmdet's ``distance2bbox`` does the arithmetic (the same float operations
    as before, so boxes are bit-identical to it and gradients flow through
    both points and distances). Only the clipping is written out while an
    ONNX export is tracing: mmdet 3's ``distance2bbox`` then imports the
    mmdet 2.x module ``mmdet.core.export``, which no longer exists. Clamping
    each coordinate gives the same values as its eager in-place clamp.

    Args:
        points (Tensor): (..., 2) locations (x, y) in image pixels.
        ltrb (Tensor): (..., 4) distances to the left, top, right and bottom
            sides.
        max_shape (Sequence[int], optional): (H, W) to clip to; no clipping
            when None.

    Returns:
        Tensor: (..., 4) x1y1x2y2 boxes.
    """
    if max_shape is None or not torch.onnx.is_in_onnx_export():
        return distance2bbox(points, ltrb, max_shape)
    x1, y1, x2, y2 = distance2bbox(points, ltrb).unbind(-1)
    height, width = max_shape[:2]
    return torch.stack((x1.clamp(0, width), y1.clamp(0, height),
                        x2.clamp(0, width), y2.clamp(0, height)), -1)
