# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic matching loss of Unified (Li et al., "Unifying Training and
Inference for Panoptic Segmentation", CVPR 2020, Sec. 3.5, Eq. 5)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_overlaps
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from mmpanoptic_plus.registry import MODELS


def match_segments_to_detections(
        segment_boxes: Tensor, segment_labels: Tensor, segment_is_thing: Tensor,
        det_boxes: Tensor, det_labels: Tensor, num_things_classes: int,
        num_stuff_classes: int, iou_thr: float = 0.5) -> Tuple[Tensor, Tensor]:
    """Eq. 5: match ground-truth segments to the ``D + N_st`` channels of
    ``P`` (the ``D`` detections, then one stuff box per stuff class).

    - Thing segments: the one-to-one assignment that maximises the total
      box IoU between segment boxes and detection boxes (the argmax over
      permutations of Eq. 5, solved by the Hungarian algorithm as mmdet's
      ``HungarianAssigner`` does), the IoU of a pair of different classes
      being 0 and pairs below ``iou_thr`` (t = 0.5) invalid.
    - Stuff segments: the whole-image box of their class (Sec. 3.3).
    - Unmatched segments get channel -1 (their pixels are ignored).
    - A detection left unassigned but with IoU >= t to a segment (a
      duplicate of the segment's top match) is removed: ``keep`` False
      (it takes no part in the loss's softmax, so it gets no gradient).
      Detections below t for every segment stay: the loss pushes them down.

    Args:
        segment_boxes (Tensor): (S, 4) tight boxes of the segments.
        segment_labels (Tensor): (S, ) classes (things first).
        segment_is_thing (Tensor): (S, ) bool.
        det_boxes (Tensor): (D, 4) detection boxes, same units.
        det_labels (Tensor): (D, ) thing classes.
        num_things_classes (int): N_th.
        num_stuff_classes (int): N_st.
        iou_thr (float): t. Defaults to 0.5.

    Returns:
        tuple[Tensor, Tensor]: (S, ) channel of each segment (-1: ignore)
        and (D + N_st, ) bool ``keep`` of the channels.
    """
    num_segments = segment_boxes.shape[0]
    num_dets = det_boxes.shape[0]
    device = segment_boxes.device
    is_thing = segment_is_thing.bool()
    channel = torch.full((num_segments, ), -1, dtype=torch.long,
                         device=device)
    # stuff: the stuff box of the segment's class
    channel[~is_thing] = num_dets + (segment_labels[~is_thing].long() -
                                     num_things_classes)
    keep = torch.ones(
        num_dets + num_stuff_classes, dtype=torch.bool, device=device)
    iou = bbox_overlaps(segment_boxes.float(), det_boxes.float())  # (S, D)
    same_class = segment_labels[:, None].long() == det_labels[None].long()
    iou = iou * (same_class & is_thing[:, None])
    valid = iou >= iou_thr
    if num_dets and bool(valid.any()):
        rows, cols = linear_sum_assignment(
            (-iou * valid).detach().cpu().numpy())
        rows = torch.as_tensor(rows, device=device, dtype=torch.long)
        cols = torch.as_tensor(cols, device=device, dtype=torch.long)
        ok = valid[rows, cols]
        rows, cols = rows[ok], cols[ok]
        channel[rows] = cols
        assigned = torch.zeros(num_dets, dtype=torch.bool, device=device)
        assigned[cols] = True
        keep[:num_dets] = assigned | ~valid.any(dim=0)
    return channel, keep


@MODELS.register_module()
class UnifiedPanopticMatchingLoss(nn.Module):
    """Cross entropy of ``P`` against the matched ground truth ``T*``
    (Sec. 3.5): each pixel's target is the channel matched to its segment
    (:func:`match_segments_to_detections`); pixels of unmatched segments
    and of no segment are ignored; removed duplicate channels are left out
    of the softmax. ``P`` is read as logits over its ``D + N_st`` channels
    (the paper calls it probabilities but Eq. 4 does not normalise it).
    The mean is over the labelled pixels of the batch.

    ``logit_scale`` (ours, not in the paper; default 1, the paper's loss):
    with the normalised affinity activations ``P`` stays within Psi's range
    (about [0, 2]), so the softmax over ``K`` channels cannot approach a
    one-hot distribution and the loss has a floor of about ``-log(e^2 /
    (e^2 + K - 1))`` (1.4 for K = 22) that keeps pushing on V, the scores
    and the affinity. The loss is taken on ``logit_scale * P`` instead; a
    positive scale leaves the argmax inference unchanged.
    ``learnable_scale`` learns it (through its log, from ``logit_scale``).

    Args:
        loss_weight (float): 1.0 on Cityscapes, 0.1 on COCO (Sec. 4).
        logit_scale (float): Scale of ``P`` in the loss. Defaults to 1.0.
        learnable_scale (bool): Learn the scale. Defaults to False.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 logit_scale: float = 1.0,
                 learnable_scale: bool = False) -> None:
        super().__init__()
        if logit_scale <= 0:
            raise ValueError(f'logit_scale must be > 0, got {logit_scale}')
        self.loss_weight = loss_weight
        log_scale = torch.tensor(float(logit_scale)).log()
        if learnable_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer('log_scale', log_scale, persistent=False)

    def forward(self, logits: Tensor, keep: Tensor, segment_ids: Tensor,
                segment_channels: Tensor) -> Tuple[Tensor, Tensor]:
        """Summed cross entropy of one image and its pixel count.

        Args:
            logits (Tensor): (K, h, w) ``P``.
            keep (Tensor): (K, ) bool, False for removed duplicates.
            segment_ids (Tensor): (h, w) segment of each cell (< 0: none).
            segment_channels (Tensor): (S, ) matched channel (-1: none).

        Returns:
            tuple[Tensor, Tensor]: The weighted sum over labelled cells and
            their number (divide the batch's sums by the batch's counts).
        """
        ids = segment_ids.long()
        labelled = (ids >= 0) & (ids < segment_channels.numel())
        target = torch.full_like(ids, -1)
        target[labelled] = segment_channels[ids[labelled]]
        target = torch.where(target >= 0, target, -100)  # CE's ignore
        logits = logits * self.log_scale.exp()
        logits = logits.masked_fill(~keep[:, None, None], float('-inf'))
        count = (target != -100).sum()
        if int(count) == 0:
            # keeps the graph (and DDP) intact on an image without labels
            return logits.masked_fill(~keep[:, None, None], 0).sum() * 0, count
        loss = F.cross_entropy(
            logits[None], target[None], ignore_index=-100, reduction='sum')
        return loss * self.loss_weight, count
