# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""IoU between query boxes and a dense map of boxes: RTP's localization
probability ``P_loc`` (Hou et al., CVPR 2020, Sec. 3.3), used by its
inference mask construction and by its explicit mask loss (Sec. 4.3)."""
import torch
from torch import Tensor

#: IoU variants of :func:`box_iou_map`: the paper's plain IoU and the
#: released code's Laplace-smoothed GIoU.
IOU_TYPES = ('iou', 'giou')


def box_iou_map(query_bboxes: Tensor,
                dense_bboxes: Tensor,
                iou_type: str = 'iou',
                eps: float = 1e-6) -> Tensor:
    """Pairwise IoU between query boxes and a dense set of boxes.

    ``'iou'`` is the plain IoU (paper); ``'giou'`` is the released code's
    GIoU with a Laplace-smoothed IoU term, ``(I + 1) / (U + 1) - (C - U) /
    C``, in (-1, 1]. mmdet's ``bbox_overlaps`` is deliberately not used: it
    has no smoothing term, and it lays its output out as (n, P, ...)
    intermediates where this reads the dense boxes as (4, P) rows.

    Args:
        query_bboxes (Tensor): (n, 4) x1y1x2y2.
        dense_bboxes (Tensor): (4, P) x1y1x2y2 as rows.
        iou_type (str): ``'iou'`` or ``'giou'``.
        eps (float): Guards empty unions / enclosing boxes.

    Returns:
        Tensor: (n, P).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type must be one of {IOU_TYPES}, got '
                         f'{iou_type!r}')
    qx1, qy1, qx2, qy2 = (c[:, None] for c in query_bboxes.unbind(1))
    dx1, dy1, dx2, dy2 = (c[None, :] for c in dense_bboxes.unbind(0))
    inter = (torch.minimum(qx2, dx2) - torch.maximum(qx1, dx1)).clamp_(min=0)
    inter = inter * (torch.minimum(qy2, dy2) -
                     torch.maximum(qy1, dy1)).clamp_(min=0)
    query_area = (qx2 - qx1).clamp(min=0) * (qy2 - qy1).clamp(min=0)
    dense_area = (dx2 - dx1).clamp(min=0) * (dy2 - dy1).clamp(min=0)
    union = query_area + dense_area - inter
    if iou_type == 'iou':
        return inter / union.clamp(min=eps)
    enclose = (torch.maximum(qx2, dx2) - torch.minimum(qx1, dx1)).clamp_(
        min=0)
    enclose = enclose * (torch.maximum(qy2, dy2) -
                         torch.minimum(qy1, dy1)).clamp_(min=0)
    return (inter + 1) / (union + 1) - (enclose - union) / (enclose + eps)
