# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Explicit mask loss of RealTimePanoptic (Hou et al., CVPR 2020, Sec. 3.4,
Eq. 15-19)."""
import torch.nn as nn
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from mmpanoptic_plus.models.utils import box_iou_map
from mmpanoptic_plus.registry import MODELS


def rtp_query_mask_losses(query_bboxes: Tensor,
                          target_bboxes: Tensor,
                          target_masks: Tensor,
                          dense_bboxes: Tensor,
                          class_probs: Tensor,
                          iou_type: str = 'iou',
                          eps: float = 1e-6) -> Tensor:
    """Per-query explicit mask loss.

    For query ``j`` (a positive location's *predicted* box ``B_j``, matched to
    the target instance the location is assigned to, with box ``T_j`` and
    mask ``G_j``), the differentiable mask of the paper's mask construction is
    ``M_j(p) = P_loc_j(p) * P_sem(c_j)(p)`` with ``P_loc_j(p) = IoU(dense
    box at p, B_j)`` (Sec. 3.3). The loss (Sec. 3.4) sums soft false
    positives ``FP_j = sum_p M_j(p) (1 - G_j(p))`` and false negatives ``FN_j
    = sum_p (1 - M_j(p)) G_j(p)``, normalised by the target's pixel count
    ``|G_j|`` and weighted by ``IoU(B_j, T_j)``::

        L_j = IoU(B_j, T_j) * (FP_j + FN_j) / |G_j|

    The IoU weight is detached: as a weight it says how much to trust the
    query, and letting gradients through it would reward making the box
    *worse* to shrink the loss.

    Args:
        query_bboxes (Tensor): (K, 4) predicted x1y1x2y2 boxes.
        target_bboxes (Tensor): (K, 4) matched ground-truth boxes.
        target_masks (Tensor): (K, P) {0, 1} matched masks at the P pixels
            of the dense map.
        dense_bboxes (Tensor): (4, P) x1y1x2y2 dense box of each pixel (rows).
        class_probs (Tensor): (K, P) semantic probability of the query's
            class at each pixel.
        iou_type (str): ``'iou'`` (paper) or ``'giou'`` (released inference
            code) for ``P_loc``. Defaults to 'iou'.
        eps (float): Guards empty targets.

    Returns:
        Tensor: (K,) losses.
    """
    if query_bboxes.numel() == 0:
        return query_bboxes.new_zeros((0, ))
    p_loc = box_iou_map(query_bboxes, dense_bboxes, iou_type=iou_type)
    if iou_type == 'giou':
        p_loc = p_loc.clamp(min=0)  # a probability, as in inference
    mask_probs = p_loc * class_probs
    target_masks = target_masks.to(mask_probs.dtype)
    false_pos = (mask_probs * (1 - target_masks)).sum(dim=1)
    false_neg = ((1 - mask_probs) * target_masks).sum(dim=1)
    box_iou = bbox_overlaps(
        query_bboxes.detach(), target_bboxes, is_aligned=True)
    return box_iou * (false_pos + false_neg) / target_masks.sum(dim=1).clamp(
        min=eps)


@MODELS.register_module()
class RTPMaskLoss(nn.Module):
    """Mean of :func:`rtp_query_mask_losses` over the sampled queries of a
    batch (paper Eq. 19 averages over the queries).

    Args:
        max_queries_per_img (int): Positive locations sampled per image
            (uniformly without replacement) so that the (K, h, w) maps stay
            small at 1024x2048. Defaults to 32.
        iou_type (str): ``P_loc`` variant. Defaults to 'iou'.
        loss_weight (float): Weight. Defaults to 1.0.
    """

    def __init__(self,
                 max_queries_per_img: int = 32,
                 iou_type: str = 'iou',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if max_queries_per_img < 1:
            raise ValueError('max_queries_per_img must be >= 1')
        self.max_queries_per_img = max_queries_per_img
        self.iou_type = iou_type
        self.loss_weight = loss_weight

    def forward(self, query_bboxes: Tensor, target_bboxes: Tensor,
                target_masks: Tensor, dense_bboxes: Tensor,
                class_probs: Tensor) -> Tensor:
        """Same arguments as :func:`rtp_query_mask_losses`; returns the
        weighted mean (0 for no query)."""
        losses = rtp_query_mask_losses(query_bboxes, target_bboxes,
                                       target_masks, dense_bboxes,
                                       class_probs, self.iou_type)
        if losses.numel() == 0:
            return class_probs.sum() * 0 + query_bboxes.sum() * 0
        return self.loss_weight * losses.mean()


__all__ = ['rtp_query_mask_losses', 'RTPMaskLoss']
