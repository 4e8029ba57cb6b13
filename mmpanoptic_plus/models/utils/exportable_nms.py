# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Class-agnostic NMS that runs mmcv's kernel in PyTorch and exports as the
ONNX ``NonMaxSuppression`` operator.

mmcv 2.1's ``nms`` has no ONNX symbolic (its export path went with mmcv-full
1.x), and torchvision, whose ``nms`` exports, is not a dependency; hence this
thin autograd function. Both sides suppress a box when its IoU with a kept,
higher-scoring box is strictly above the threshold, and keep only scores
strictly above ``score_threshold``.
"""
from typing import Optional

import torch
from mmcv.ops import nms
from torch import Tensor


class _NonMaxSuppression(torch.autograd.Function):
    """Single-class NMS with the interface of ONNX ``NonMaxSuppression``:
    eager runs use mmcv's NMS kernel, export emits the ONNX operator."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_output: int,
                iou_threshold: float, score_threshold: float) -> Tensor:
        """(1, n, 4) boxes and (1, 1, n) scores -> (k, 3) int64 rows
        ``(batch 0, class 0, box index)`` by decreasing score."""
        flat_boxes, flat_scores = boxes[0], scores[0, 0]
        candidates = (flat_scores > score_threshold).nonzero().squeeze(1)
        if candidates.numel():
            _, keep = nms(flat_boxes[candidates], flat_scores[candidates],
                          iou_threshold)
            keep = candidates[keep][:max_output]
        else:
            keep = candidates
        zeros = torch.zeros_like(keep)
        return torch.stack((zeros, zeros, keep), 1)

    @staticmethod
    def symbolic(g, boxes, scores, max_output: int, iou_threshold: float,
                 score_threshold: float):
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant',
                 value_t=torch.tensor([max_output], dtype=torch.long)),
            g.op('Constant',
                 value_t=torch.tensor([iou_threshold], dtype=torch.float)),
            g.op('Constant',
                 value_t=torch.tensor([score_threshold], dtype=torch.float)))


def onnx_nms(boxes: Tensor,
             scores: Tensor,
             iou_threshold: float,
             score_threshold: float = 0.0,
             max_output: Optional[int] = None) -> Tensor:
    """Class-agnostic NMS that exports as ONNX ``NonMaxSuppression``.

    Args:
        boxes (Tensor): (n, 4) x1y1x2y2.
        scores (Tensor): (n,) scores.
        iou_threshold (float): A box goes when its IoU with a kept box is
            above this.
        score_threshold (float): Only boxes scoring above it are candidates.
            Defaults to 0.
        max_output (int, optional): At most this many indices. Defaults to
            ``n``.

    Returns:
        Tensor: (k,) int64 indices of the kept boxes, by decreasing score
        (``k`` depends on the data).
    """
    if max_output is None:
        max_output = boxes.size(0)
    selected = _NonMaxSuppression.apply(boxes[None], scores[None, None],
                                        int(max_output), float(iou_threshold),
                                        float(score_threshold))
    return selected[:, 2]
