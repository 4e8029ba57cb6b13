# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Query-box selection of RealTimePanoptic (RTP): the detections that query
the dense box map (Hou et al., CVPR 2020, Sec. 3.3): FCOS-style scores
``class probability x centerness``, a per-level pre-NMS top-k, class-wise NMS,
at most 100 boxes.

One implementation serves ``model.predict`` and the ONNX export:
:func:`select_query_slots` has outputs of a fixed size (``max_per_img``
zero-padded slots and a count) and no data-dependent shapes outside its NMS
call, which exports as ONNX ``NonMaxSuppression``
(:func:`.exportable_nms.onnx_nms`); :func:`select_query_boxes` trims the
padding for eager inference. It lives in ``models/utils`` because the
explicit mask loss of the head (Sec. 4.3: its queries are ``B_query``) runs the
same selection in training; ``models/postprocess`` and the ONNX wrapper
re-export / import it from here.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from .exportable_nms import onnx_nms
from .ltrb_boxes import decode_ltrb_boxes
from .stride_grid import level_grid_points


class RTPQuerySlots(NamedTuple):
    """Query boxes of a batch in ``N = max_per_img`` fixed slots per image;
    the first ``num_valid[b]`` slots of image ``b`` hold its queries by
    decreasing score, the others are padding.

    Attributes:
        bboxes (Tensor): (B, N, 4) x1y1x2y2 in input pixels, 0 in padding.
        scores (Tensor): (B, N) ``probability x sigmoid(centerness)``, 0 in
            padding.
        labels (Tensor): (B, N) int64 thing labels, -1 in padding.
        levels (Tensor): (B, N) int64 FPN level index (into ``strides``) of
            the location that predicted the query, -1 in padding.
        cells (Tensor): (B, N, 2) int64 ``(y, x)`` cell of that location on
            its level (at image ``(s x + s // 2, s y + s // 2)``), -1 in
            padding. A method that reads a per-location feature (e.g. CIAE's
            query embedding) reads ``feats[level][b, :, y, x]``.
        num_valid (Tensor): (B,) int64 number of queries per image.
    """
    bboxes: Tensor
    scores: Tensor
    labels: Tensor
    levels: Tensor
    cells: Tensor
    num_valid: Tensor


def nms_iou_threshold(nms_cfg: Optional[dict]) -> float:
    """The IoU threshold of an ``nms`` test_cfg entry, the only NMS setting
    the selection has (default 0.6, the released code's).

    Raises:
        ValueError: ``nms_cfg`` is not ``dict(type='nms', iou_threshold=x)``
            (soft-NMS rescores boxes, ``split_thr`` / ``max_num`` /
            ``class_agnostic`` are ``batched_nms`` options the fixed-slot
            selection has no counterpart for: ``max_per_img`` and
            ``agnostic_iou_thr`` are its settings).
    """
    if nms_cfg is None:
        return 0.6
    options = dict(nms_cfg)
    nms_type = options.pop('type', 'nms')
    iou_threshold = options.pop('iou_threshold', None)
    if nms_type != 'nms' or iou_threshold is None or options:
        raise ValueError('RTP query selection supports test_cfg.nms = '
                         'dict(type="nms", iou_threshold=...) only, got '
                         f'{dict(nms_cfg)}')
    return float(iou_threshold)


def _level_candidates(cls_prob: Tensor, centerness: Tensor, bbox_pred: Tensor,
                      points: Tensor, score_thr: float, nms_pre: int
                      ) -> Tuple[Tensor, ...]:
    """The ``nms_pre`` best (location, class) pairs of one level.

    Returns:
        tuple[Tensor, ...]: (B, k) scores (0 where the class probability is
        not above ``score_thr``), (B, k) labels, (B, k, 2) locations
        ``(x, y)`` in image pixels, (B, k, 4) their ltrb distances and
        (B, k, 2) their ``(y, x)`` cells.
    """
    batch_size, num_things = cls_prob.shape[:2]
    probs = cls_prob.permute(0, 2, 3, 1).reshape(batch_size, -1, num_things)
    ctr = centerness.reshape(batch_size, -1).sigmoid()
    ltrb = bbox_pred.permute(0, 2, 3, 1).reshape(batch_size, -1, 4)
    # threshold on the class probability, rank on the product (FCOS)
    scores = torch.where(probs > score_thr, probs * ctr[..., None],
                         probs.new_zeros(()))
    scores, flat_index = scores.reshape(batch_size, -1).topk(
        min(nms_pre, probs.size(1) * num_things), dim=1)
    location = torch.div(flat_index, num_things, rounding_mode='floor')
    labels = flat_index - location * num_things
    kept_ltrb = ltrb.gather(1, location[..., None].expand(-1, -1, 4))
    width = cls_prob.size(3)
    row = torch.div(location, width, rounding_mode='floor')
    cells = torch.stack((row, location - row * width), -1)
    return scores, labels, points[location], kept_ltrb, cells


def _image_nms(boxes: Tensor, scores: Tensor, labels: Tensor,
               iou_threshold: float, max_per_img: int,
               agnostic_iou_thr: Optional[float]) -> Tensor:
    """Kept candidate indices of one image, by decreasing score: class-wise
    NMS as mmcv's ``batched_nms`` does it (boxes shifted by ``label x (max
    coordinate + 1)``), then optionally a class-agnostic NMS."""
    # the maximum over the candidates only, as batched_nms sees them (the
    # zero-score candidates must not change it); boxes.min() keeps it finite
    # without candidates
    candidate = scores > 0
    max_coordinate = torch.where(candidate[:, None], boxes,
                                 boxes.min()).max()
    shifted = boxes + (labels.to(boxes) * (max_coordinate + 1))[:, None]
    keep = onnx_nms(
        shifted,
        scores,
        iou_threshold,
        max_output=max_per_img if agnostic_iou_thr is None else None)
    if agnostic_iou_thr is not None:
        keep = keep[onnx_nms(
            boxes[keep],
            scores[keep],
            agnostic_iou_thr,
            max_output=max_per_img)]
    return keep


def select_query_slots(cls_probs: Sequence[Tensor],
                       centernesses: Sequence[Tensor],
                       bbox_preds: Sequence[Tensor],
                       strides: Sequence[int],
                       img_shapes: Optional[Sequence[Tuple[int, int]]] = None,
                       score_thr: float = 0.05,
                       nms_pre: int = 1000,
                       iou_threshold: float = 0.6,
                       max_per_img: int = 100,
                       min_bbox_size: float = 0,
                       agnostic_iou_thr: Optional[float] = None
                       ) -> RTPQuerySlots:
    """Query boxes of RTP from its dense per-level detections, in fixed
    slots (traceable; exported as is by the ONNX wrapper).

    As in FCOS and in the released RTP code, a candidate (location, class)
    passes when its class probability exceeds ``score_thr``; its score is
    ``class probability x sigmoid(centerness)`` (no square root: the released
    code has none, and a monotone map would not change the selection). Per
    level the ``nms_pre`` best scores are kept; boxes ``(x - l, y - t, x + r,
    y + b)`` at the location ``(s * j + s // 2, s * i + s // 2)`` (mmdet's
    ``MlvlPointGenerator(offset=0.5)``) are clipped to the image, boxes
    narrower than ``min_bbox_size`` dropped, class-wise NMS applied (mmcv's
    ``batched_nms`` offset trick), and the ``max_per_img`` best kept. The
    released code adds a class-agnostic NMS at IoU 0.97 after the class-wise
    one: set ``agnostic_iou_thr=0.97`` to reproduce it (off by default, the
    paper does not mention it).

    Removed candidates get score 0 instead of leaving the tensors (fixed
    shapes), and the NMS takes only scores strictly above 0; the result
    equals mmdet's ``filter_scores_and_topk`` + mmcv's ``batched_nms``
    (tested against them), except that soft-NMS and ``batched_nms``'
    per-class split beyond 10000 candidates are not offered.

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
        iou_threshold (float): IoU of the class-wise NMS. Defaults to 0.6.
        max_per_img (int): Slots (queries kept) per image. Defaults to 100.
        min_bbox_size (float): Minimal width and height. Defaults to 0.
        agnostic_iou_thr (float, optional): IoU of a class-agnostic NMS run
            after the class-wise one. Defaults to None (skipped).

    Returns:
        RTPQuerySlots: (B, max_per_img) slots with boxes, scores, labels and
        the FPN level and cell of each query, and (B,) ``num_valid``.
    """
    num_levels = len(strides)
    if not (len(cls_probs) == len(centernesses) == len(bbox_preds) ==
            num_levels):
        raise ValueError(
            f'expected {num_levels} levels of class probabilities, '
            f'centernesses and box regressions, got {len(cls_probs)}, '
            f'{len(centernesses)} and {len(bbox_preds)}')
    batch_size = cls_probs[0].size(0)
    if img_shapes is not None and len(img_shapes) != batch_size:
        raise ValueError(f'{len(img_shapes)} image shapes for a batch of '
                         f'{batch_size}')
    featmap_sizes = [tuple(cls_prob.shape[-2:]) for cls_prob in cls_probs]
    device = bbox_preds[0].device
    points = level_grid_points(
        featmap_sizes, strides, dtype=bbox_preds[0].dtype, device=device)
    level_outputs = [
        _level_candidates(cls_prob, centerness, bbox_pred, level_points,
                          score_thr, nms_pre)
        for cls_prob, centerness, bbox_pred, level_points in zip(
            cls_probs, centernesses, bbox_preds, points)
    ]
    scores, labels, locations, ltrb, cells = (
        torch.cat(outputs, 1) for outputs in zip(*level_outputs))
    levels = torch.cat([
        torch.full_like(level_scores, level, dtype=torch.long)
        for level, (level_scores, *_) in enumerate(level_outputs)
    ], 1)
    # decoding (per image: each has its own clipping shape) and NMS run per
    # image (ONNX NonMaxSuppression is batched, mmcv's kernel is not); the
    # loop is over images, never over candidates
    slot_index = torch.arange(max_per_img, device=device)
    image_boxes, slots, counts = [], [], []
    for img_id in range(batch_size):
        boxes = decode_ltrb_boxes(
            locations[img_id], ltrb[img_id],
            None if img_shapes is None else img_shapes[img_id])
        image_scores = scores[img_id]
        if min_bbox_size > 0:
            big = ((boxes[:, 2] - boxes[:, 0]) >= min_bbox_size) & (
                (boxes[:, 3] - boxes[:, 1]) >= min_bbox_size)
            image_scores = torch.where(big, image_scores,
                                       image_scores.new_zeros(()))
        keep = _image_nms(boxes, image_scores, labels[img_id],
                          iou_threshold, max_per_img, agnostic_iou_thr)
        image_boxes.append(boxes)
        # fixed size: the kept indices, then index 0 as padding, cut at
        # max_per_img; the count stays a tensor so that it is computed in
        # the graph
        counts.append(torch.ones_like(keep).sum().clamp(max=max_per_img))
        slots.append(torch.cat((keep, keep.new_zeros(max_per_img)))
                     [:max_per_img])
    slots = torch.stack(slots)  # (B, N) candidate index per slot
    boxes = torch.stack(image_boxes)
    num_valid = torch.stack(counts)  # (B,)
    slot_valid = slot_index[None] < num_valid[:, None]

    def take(values: Tensor, padding: float) -> Tensor:
        """(B, K, ...) candidate values -> (B, N, ...) slot values."""
        index = slots.view(slots.shape + (1, ) * (values.dim() - 2))
        picked = values.gather(1, index.expand((-1, -1) + values.shape[2:]))
        valid = slot_valid.view(index.shape)
        return torch.where(valid, picked, picked.new_full((), padding))

    return RTPQuerySlots(
        bboxes=take(boxes, 0),
        scores=take(scores, 0),
        labels=take(labels, -1),
        levels=take(levels, -1),
        cells=take(cells, -1),
        num_valid=num_valid)


def trim_query_slots(slots: RTPQuerySlots) -> List[InstanceData]:
    """Per image, the valid slots of :func:`select_query_slots` as
    ``InstanceData`` with ``bboxes`` (N, 4), ``scores`` (N,), ``labels``
    (N,), ``levels`` (N,) and ``cells`` (N, 2) ``(y, x)``."""
    results = []
    for img_id, count in enumerate(slots.num_valid.tolist()):
        results.append(
            InstanceData(
                bboxes=slots.bboxes[img_id, :count],
                scores=slots.scores[img_id, :count],
                labels=slots.labels[img_id, :count],
                levels=slots.levels[img_id, :count],
                cells=slots.cells[img_id, :count]))
    return results


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
    """Query boxes of RTP per image, for eager inference:
    :func:`select_query_slots` without its padding.

    Args:
        nms_cfg (dict, optional): ``dict(type='nms', iou_threshold=x)``
            (:func:`nms_iou_threshold`). Defaults to IoU 0.6.
        Others: As in :func:`select_query_slots`.

    Returns:
        list[InstanceData]: Per image ``bboxes`` (N, 4) x1y1x2y2, ``scores``
        (N,), ``labels`` (N,) thing labels, sorted by decreasing score, and
        the location of each query: ``levels`` (N,) FPN level index and
        ``cells`` (N, 2) ``(y, x)`` on that level.
    """
    return trim_query_slots(
        select_query_slots(
            cls_probs,
            centernesses,
            bbox_preds,
            strides,
            img_shapes=img_shapes,
            score_thr=score_thr,
            nms_pre=nms_pre,
            iou_threshold=nms_iou_threshold(nms_cfg),
            max_per_img=max_per_img,
            min_bbox_size=min_bbox_size,
            agnostic_iou_thr=agnostic_iou_thr))
