# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Query-box selection of RealTimePanoptic (RTP): the detections that query
the dense box map (Hou et al., CVPR 2020, Sec. 3.3): FCOS-style scores
``class probability x centerness``, a per-level pre-NMS top-k, class-wise NMS,
at most 100 boxes."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import distance2bbox
from mmengine.structures import InstanceData
from torch import Tensor


def select_query_boxes(cls_probs: Sequence[Tensor],
                       centernesses: Sequence[Tensor],
                       bbox_preds: Sequence[Tensor],
                       strides: Sequence[int],
                       img_shapes: Optional[Sequence[Tuple[int, int]]] = None,
                       score_thr: float = 0.05,
                       nms_pre: int = 1000,
                       nms_cfg: Optional[dict] = None,
                       max_per_img: int = 100,
                       min_bbox_size: float = 0,
                       agnostic_iou_thr: Optional[float] = None
                       ) -> List[InstanceData]:
    """Query boxes of RTP from its dense per-level detections.

    As in FCOS and in the released RTP code, a candidate (location, class)
    passes when its class probability exceeds ``score_thr``; its score is
    ``class probability x sigmoid(centerness)`` (no square root: the released
    code has none, and a monotone map would not change the selection). Per
    level the ``nms_pre`` best scores are kept; boxes ``(x - l, y - t, x + r,
    y + b)`` at the location ``(s * j + s // 2, s * i + s // 2)`` (mmdet's
    ``MlvlPointGenerator(offset=0.5)``) are clipped to the image, boxes
    narrower than ``min_bbox_size`` dropped, class-wise NMS applied
    (``mmcv.ops.batched_nms``), and the ``max_per_img`` best kept. The
    released code adds a class-agnostic NMS at IoU 0.97 after the class-wise
    one: set ``agnostic_iou_thr=0.97`` to reproduce it (off by default, the
    paper does not mention it).

    Defaults follow the released code: score 0.05, top 1000 per level, NMS
    IoU 0.6, 100 boxes.

    Args:
        cls_probs (Sequence[Tensor]): Per level (B, T, H_l, W_l) class
            probabilities of the T thing classes (after sigmoid).
        centernesses (Sequence[Tensor]): Per level (B, 1, H_l, W_l)
            centerness logits.
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb
            distances in image pixels.
        strides (Sequence[int]): Stride of each level.
        img_shapes (Sequence[tuple[int, int]], optional): Per image (H, W)
            to clip boxes to; no clipping when None.
        score_thr (float): Class-probability threshold. Defaults to 0.05.
        nms_pre (int): Candidates kept per level before NMS. Defaults to
            1000.
        nms_cfg (dict, optional): ``batched_nms`` config. Defaults to
            ``dict(type='nms', iou_threshold=0.6)``.
        max_per_img (int): Boxes kept per image. Defaults to 100.
        min_bbox_size (float): Minimal width and height. Defaults to 0.
        agnostic_iou_thr (float, optional): IoU of a class-agnostic NMS run
            after the class-wise one. Defaults to None (skipped).

    Returns:
        list[InstanceData]: Per image ``bboxes`` (N, 4) x1y1x2y2, ``scores``
        (N,) and ``labels`` (N,) thing labels, sorted by decreasing score.
    """
    num_levels = len(strides)
    if not (len(cls_probs) == len(centernesses) == len(bbox_preds) ==
            num_levels):
        raise ValueError(
            f'expected {num_levels} levels of class probabilities, '
            f'centernesses and box regressions, got {len(cls_probs)}, '
            f'{len(centernesses)} and {len(bbox_preds)}')
    if nms_cfg is None:
        nms_cfg = dict(type='nms', iou_threshold=0.6)
    featmap_sizes = [tuple(cls_prob.shape[-2:]) for cls_prob in cls_probs]
    points = MlvlPointGenerator(
        strides, offset=0.5).grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
    batch_size = cls_probs[0].size(0)
    results = []
    for img_id in range(batch_size):
        level_boxes, level_scores, level_labels = [], [], []
        for cls_prob, centerness, bbox_pred, level_points in zip(
                cls_probs, centernesses, bbox_preds, points):
            num_things = cls_prob.size(1)
            probs = cls_prob[img_id].permute(1, 2, 0).reshape(-1, num_things)
            ctr = centerness[img_id].reshape(-1).sigmoid()
            ltrb = bbox_pred[img_id].permute(1, 2, 0).reshape(-1, 4)
            # threshold on the class probability, rank on the product
            scores = torch.where(probs > score_thr, probs * ctr[:, None],
                                 probs.new_zeros(()))
            scores, labels, _, kept = filter_scores_and_topk(
                scores, 0.0, nms_pre, dict(ltrb=ltrb, points=level_points))
            max_shape = None if img_shapes is None else img_shapes[img_id]
            level_boxes.append(
                distance2bbox(kept['points'], kept['ltrb'], max_shape))
            level_scores.append(scores)
            level_labels.append(labels)
        boxes = torch.cat(level_boxes)
        scores = torch.cat(level_scores)
        labels = torch.cat(level_labels)
        if min_bbox_size > 0:
            big = ((boxes[:, 2] - boxes[:, 0]) >= min_bbox_size) & (
                (boxes[:, 3] - boxes[:, 1]) >= min_bbox_size)
            boxes, scores, labels = boxes[big], scores[big], labels[big]
        if boxes.numel() > 0:
            dets, keep = batched_nms(boxes, scores, labels, nms_cfg)
            boxes, scores, labels = dets[:, :4], dets[:, 4], labels[keep]
            if agnostic_iou_thr is not None:
                dets, keep = batched_nms(
                    boxes, scores, labels,
                    dict(type='nms', iou_threshold=agnostic_iou_thr),
                    class_agnostic=True)
                boxes, scores, labels = dets[:, :4], dets[:, 4], labels[keep]
        instances = InstanceData()
        instances.bboxes = boxes[:max_per_img]
        instances.scores = scores[:max_per_img]
        instances.labels = labels[:max_per_img]
        results.append(instances)
    return results
