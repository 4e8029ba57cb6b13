# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Explicit mask loss of RealTimePanoptic (Hou et al., CVPR 2020, Sec. 4.3,
Eq. 16-18)."""
from typing import Optional

import torch
import torch.nn as nn
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from mmpanoptic_plus.models.utils import box_iou_map
from mmpanoptic_plus.registry import MODELS


def rtp_query_mask_losses(query_bboxes: Tensor,
                          target_bboxes: Tensor,
                          target_fractions: Tensor,
                          dense_bboxes: Tensor,
                          dense_valid: Optional[Tensor] = None,
                          class_probs: Optional[Tensor] = None,
                          iou_type: str = 'iou') -> Tensor:
    """Per-query explicit mask loss (paper Eq. 16-18).

    For query ``j`` (a box ``b_j`` of ``B_query`` matched to the target
    instance with box ``b_j^t`` and mask ``M_j^t``), with ``P_loc_j(p) =
    IoU(B(p), b_j)`` (Eq. 6) over the pixels ``p`` of the dense box map::

        E_FP_j = sum_p P_loc_j(p) (1 - G_j(p))             (Eq. 17)
        E_FN_j = sum_p (1 - P_loc_j(p)) G_j(p)             (Eq. 18)
        L_j = beta_j (E_FP_j + E_FN_j) / N_j               (Eq. 16 summand)

    with ``beta_j = IoU(b_j, b_j^t)`` (detached: a weight saying how much to
    trust the query; a gradient through it would reward a worse box).

    ``G_j(p)`` is the indicator ``1[p in M_j^t]`` read as the fraction of
    the cell ``p`` that the mask covers (:func:`mask_cell_fractions`), and
    ``N_j = sum_p G_j(p)``: the mask's full-resolution pixel count divided
    by ``stride ** 2``, i.e. the paper's N_j on the grid E_FP and E_FN are
    summed on. Reading the mask at the cell centres instead gave ``N_j = 0``
    for a positive location of a mask that no centre hits (3 px across),
    and a division by ~0. With fractions ``E_FN_j / N_j <= 1`` always. A
    query whose target has ``N_j = 0`` (no pixel inside the grid) gets 0.

    Args:
        query_bboxes (Tensor): (K, 4) x1y1x2y2 query boxes ``b_j``.
        target_bboxes (Tensor): (K, 4) matched ground-truth boxes.
        target_fractions (Tensor): (K, P) in [0, 1], ``G_j`` at the P pixels
            of the dense map.
        dense_bboxes (Tensor): (4, P) x1y1x2y2 dense box ``B(p)`` of each
            pixel (rows).
        dense_valid (Tensor, optional): (P,) bool, False where the pixel has
            no box (levelness argmax = background, Eq. 14): ``P_loc = 0``
            there, as at inference. None: every pixel has a box.
        class_probs (Tensor, optional): (K, P) ``P_sem(p, c_j)``. None
            (default, Eq. 17-18): ``P_loc`` alone. Given: ``P_loc * P_sem``,
            the inference's soft mask (Eq. 5), a declared departure that
            sends gradient into the semantic branch.
        iou_type (str): ``'iou'`` (paper) or ``'giou'`` (released inference
            code, clamped at 0) for ``P_loc``. Defaults to 'iou'.

    Returns:
        Tensor: (K,) losses.
    """
    if query_bboxes.numel() == 0:
        return query_bboxes.new_zeros((0, ))
    p_loc = box_iou_map(query_bboxes, dense_bboxes, iou_type=iou_type)
    if iou_type == 'giou':
        p_loc = p_loc.clamp(min=0)  # a probability, as in inference
    if dense_valid is not None:
        p_loc = p_loc * dense_valid.to(p_loc.dtype)[None]
    if class_probs is not None:
        p_loc = p_loc * class_probs
    fractions = target_fractions.to(p_loc.dtype)
    false_pos = (p_loc * (1 - fractions)).sum(dim=1)
    false_neg = ((1 - p_loc) * fractions).sum(dim=1)
    num_pixels = fractions.sum(dim=1)
    beta = bbox_overlaps(
        query_bboxes.detach(), target_bboxes.to(query_bboxes),
        is_aligned=True)
    losses = beta * (false_pos + false_neg) / num_pixels.clamp(min=1e-12)
    return torch.where(num_pixels > 0, losses, losses.new_zeros(()))


@MODELS.register_module()
class RTPMaskLoss(nn.Module):
    """Eq. 16: the mean of :func:`rtp_query_mask_losses` over the queries
    ``B_query`` of a batch.

    The head chooses the queries (:class:`RTPHeadLossMixin`): the boxes the
    inference's selection keeps (score x centerness, NMS), each matched to
    the instance its location is assigned to.

    Args:
        max_queries_per_img (int, optional): Cap on the queries of an image
            (the best-scoring ones), for memory: the loss holds (K, h * w)
            maps. None (default): the inference's ``max_per_img`` (100),
            about 0.5 GB of maps at 1024x2048 per image.
        iou_type (str): ``P_loc`` variant. Defaults to 'iou'.
        use_semantic_prob (bool): Multiply ``P_sem`` of the query's class
            into ``P_loc`` (the inference's soft mask) instead of Eq. 17-18's
            ``P_loc`` alone. Defaults to False.
        loss_weight (float): Weight. Defaults to 1.0.
    """

    def __init__(self,
                 max_queries_per_img: Optional[int] = None,
                 iou_type: str = 'iou',
                 use_semantic_prob: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if max_queries_per_img is not None and max_queries_per_img < 1:
            raise ValueError('max_queries_per_img must be >= 1 or None')
        self.max_queries_per_img = max_queries_per_img
        self.iou_type = iou_type
        self.use_semantic_prob = use_semantic_prob
        self.loss_weight = loss_weight

    def forward(self,
                query_bboxes: Tensor,
                target_bboxes: Tensor,
                target_fractions: Tensor,
                dense_bboxes: Tensor,
                dense_valid: Optional[Tensor] = None,
                class_probs: Optional[Tensor] = None) -> Tensor:
        """Same arguments as :func:`rtp_query_mask_losses` (``class_probs``
        is used only with ``use_semantic_prob``); returns the weighted mean
        (0, attached to the graph, for no query)."""
        if not self.use_semantic_prob:
            class_probs = None
        losses = rtp_query_mask_losses(query_bboxes, target_bboxes,
                                       target_fractions, dense_bboxes,
                                       dense_valid, class_probs,
                                       self.iou_type)
        if losses.numel() == 0:
            zero = query_bboxes.sum() * 0 + dense_bboxes.sum() * 0
            if class_probs is not None:
                zero = zero + class_probs.sum() * 0
            return zero
        return self.loss_weight * losses.mean()


__all__ = ['rtp_query_mask_losses', 'RTPMaskLoss']
