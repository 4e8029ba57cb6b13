# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTP query selection (models/postprocess/rtp_query_selection.py): the
fixed-slot selection against the variable-shape one made of mmdet's
``filter_scores_and_topk``, ``distance2bbox`` and mmcv's ``batched_nms``
(what ``select_query_boxes`` was before it became a trim of the slots), the
query locations against the regressions they come from, and the trimming."""
import math

import pytest
import torch
from mmcv.ops import batched_nms
from mmdet.models.utils import filter_scores_and_topk
from mmdet.structures.bbox import distance2bbox
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.postprocess.rtp_query_selection import (
    RTPQuerySlots, nms_iou_threshold, select_query_boxes, select_query_slots,
    trim_query_slots)


def reference_select_query_boxes(cls_probs, centernesses, bbox_preds,
                                 strides, img_shapes=None, score_thr=0.05,
                                 nms_pre=1000, nms_cfg=None, max_per_img=100,
                                 min_bbox_size=0, agnostic_iou_thr=None):
    """mmdet's FCOS-style selection, image by image and level by level with
    variable shapes: candidates above ``score_thr``, the ``nms_pre`` best
    per level, ``distance2bbox`` at cell centres ``s * j + s / 2``, mmcv's
    class-wise ``batched_nms``, optionally a class-agnostic one, the
    ``max_per_img`` best. Also returns each query's level and (y, x) cell."""
    if nms_cfg is None:
        nms_cfg = dict(type='nms', iou_threshold=0.6)
    results = []
    for img_id in range(cls_probs[0].size(0)):
        rows = []  # per level: boxes, scores, labels, levels, cells
        for level, (cls_prob, centerness, bbox_pred, stride) in enumerate(
                zip(cls_probs, centernesses, bbox_preds, strides)):
            num_things, height, width = cls_prob.shape[1:]
            ys, xs = torch.meshgrid(
                torch.arange(height), torch.arange(width), indexing='ij')
            cells = torch.stack((ys.reshape(-1), xs.reshape(-1)), 1)
            points = (cells.flip(1) * stride + stride // 2).float()
            probs = cls_prob[img_id].permute(1, 2, 0).reshape(-1, num_things)
            ctr = centerness[img_id].reshape(-1).sigmoid()
            ltrb = bbox_pred[img_id].permute(1, 2, 0).reshape(-1, 4)
            scores = torch.where(probs > score_thr, probs * ctr[:, None],
                                 probs.new_zeros(()))
            scores, labels, _, kept = filter_scores_and_topk(
                scores, 0.0, nms_pre,
                dict(ltrb=ltrb, points=points, cells=cells))
            max_shape = None if img_shapes is None else img_shapes[img_id]
            rows.append((distance2bbox(kept['points'], kept['ltrb'],
                                       max_shape), scores, labels,
                         torch.full_like(labels, level), kept['cells']))
        boxes, scores, labels, levels, cells = (
            torch.cat(column) for column in zip(*rows))
        if min_bbox_size > 0:
            big = ((boxes[:, 2] - boxes[:, 0]) >= min_bbox_size) & (
                (boxes[:, 3] - boxes[:, 1]) >= min_bbox_size)
            boxes, scores, labels = boxes[big], scores[big], labels[big]
            levels, cells = levels[big], cells[big]
        if boxes.numel() > 0:
            dets, keep = batched_nms(boxes, scores, labels, nms_cfg)
            boxes, scores = dets[:, :4], dets[:, 4]
            labels, levels, cells = labels[keep], levels[keep], cells[keep]
            if agnostic_iou_thr is not None:
                dets, keep = batched_nms(
                    boxes, scores, labels,
                    dict(type='nms', iou_threshold=agnostic_iou_thr),
                    class_agnostic=True)
                boxes, scores = dets[:, :4], dets[:, 4]
                labels, levels = labels[keep], levels[keep]
                cells = cells[keep]
        results.append(
            InstanceData(
                bboxes=boxes[:max_per_img],
                scores=scores[:max_per_img],
                labels=labels[:max_per_img],
                levels=levels[:max_per_img],
                cells=cells[:max_per_img]))
    return results


def _head_outputs(seed, sizes=((8, 10), (4, 5), (2, 3)), num_things=3,
                  prob_scale=1.0, batch_size=1):
    """Random per-level probabilities, centerness logits and ltrb (pixels)
    for strides 8, 16, 32 of an 64 x 80 input."""
    gen = torch.Generator().manual_seed(seed)
    probs, ctrs, ltrbs = [], [], []
    for stride, (h, w) in zip((8, 16, 32), sizes):
        probs.append(prob_scale * torch.rand(
            batch_size, num_things, h, w, generator=gen))
        ctrs.append(torch.randn(batch_size, 1, h, w, generator=gen))
        ltrbs.append(
            torch.rand(batch_size, 4, h, w, generator=gen) * 3 * stride)
    return probs, ctrs, ltrbs


@pytest.mark.parametrize(
    'options',
    [
        dict(),
        dict(max_per_img=200),  # fewer queries than slots
        dict(min_bbox_size=12.0, agnostic_iou_thr=0.5),
        dict(nms_pre=7, score_thr=0.3),
        dict(prob_scale=0.04),  # no candidate above score_thr
    ])
def test_fixed_query_slots_equal_reference_selection(options):
    options = dict(options)
    prob_scale = options.pop('prob_scale', 1.0)
    probs, ctrs, ltrbs = _head_outputs(0, prob_scale=prob_scale)
    cfg = dict(
        score_thr=0.05,
        nms_pre=1000,
        max_per_img=20,
        min_bbox_size=0,
        agnostic_iou_thr=None)
    cfg.update(options)
    expected = reference_select_query_boxes(
        probs,
        ctrs,
        ltrbs, (8, 16, 32),
        img_shapes=[(60, 75)],
        nms_cfg=dict(type='nms', iou_threshold=0.6),
        **cfg)[0]
    slots = select_query_slots(
        probs, ctrs, ltrbs, (8, 16, 32), [(60, 75)], iou_threshold=0.6,
        **cfg)
    boxes, scores, labels = slots.bboxes[0], slots.scores[0], slots.labels[0]
    count = int(slots.num_valid[0])
    assert count == len(expected.scores)
    if prob_scale < 0.05:
        assert count == 0
    else:
        assert count > 0
    assert boxes.shape == (cfg['max_per_img'], 4)
    assert torch.equal(boxes[:count], expected.bboxes)
    assert torch.equal(scores[:count], expected.scores)
    assert torch.equal(labels[:count], expected.labels)
    assert torch.equal(slots.levels[0, :count], expected.levels)
    assert torch.equal(slots.cells[0, :count], expected.cells)
    assert (labels[count:] == -1).all() and (scores[count:] == 0).all()
    assert (slots.levels[0, count:] == -1).all()
    assert (slots.cells[0, count:] == -1).all()
    assert (boxes[count:] == 0).all()
    # the eager API is the same selection without the padding
    trimmed = select_query_boxes(
        probs, ctrs, ltrbs, (8, 16, 32), [(60, 75)],
        nms_cfg=dict(type='nms', iou_threshold=0.6), **cfg)[0]
    for key in ('bboxes', 'scores', 'labels', 'levels', 'cells'):
        assert torch.equal(trimmed.get(key), expected.get(key)), key


def test_batch_with_own_clipping_shapes_equals_reference():
    """Two images with different valid shapes, and no clipping at all: each
    image's slots are its own selection."""
    probs, ctrs, ltrbs = _head_outputs(5, batch_size=2)
    for img_shapes in ([(60, 75), (40, 80)], None):
        expected = reference_select_query_boxes(
            probs, ctrs, ltrbs, (8, 16, 32), img_shapes, max_per_img=15)
        slots = select_query_slots(
            probs, ctrs, ltrbs, (8, 16, 32), img_shapes, max_per_img=15)
        assert slots.bboxes.shape == (2, 15, 4)
        assert slots.cells.shape == (2, 15, 2)
        for img_id, (reference, trimmed) in enumerate(
                zip(expected, trim_query_slots(slots))):
            assert int(slots.num_valid[img_id]) == len(reference) > 0
            for key in ('bboxes', 'scores', 'labels', 'levels', 'cells'):
                assert torch.equal(trimmed.get(key), reference.get(key)), key
    # the clipping shapes differ, so do the boxes of the two images' slots
    clipped = select_query_slots(probs, ctrs, ltrbs, (8, 16, 32),
                                 [(60, 75), (40, 80)])
    assert clipped.bboxes[1, :, 3].max() <= 40
    assert clipped.bboxes[0, :, 3].max() > 40


def test_query_location_decodes_to_the_query_box():
    """The box decoded from the regression at a query's (level, cell), at
    the cell's image location, is the query box; its score is that cell's
    probability of the query's class times its sigmoid(centerness)."""
    strides = (8, 16, 32)
    probs, ctrs, ltrbs = _head_outputs(3, batch_size=2)
    img_shapes = [(60, 75), (64, 80)]
    slots = select_query_slots(probs, ctrs, ltrbs, strides, img_shapes,
                               max_per_img=30)
    checked_levels = set()
    for img_id, queries in enumerate(trim_query_slots(slots)):
        height, width = img_shapes[img_id]
        assert len(queries) > 0
        for box, score, label, level, (y, x) in zip(
                queries.bboxes.tolist(), queries.scores.tolist(),
                queries.labels.tolist(), queries.levels.tolist(),
                queries.cells.tolist()):
            stride = strides[level]
            level_h, level_w = probs[level].shape[-2:]
            assert 0 <= y < level_h and 0 <= x < level_w
            cx, cy = stride * x + stride // 2, stride * y + stride // 2
            left, top, right, bottom = ltrbs[level][img_id, :, y, x].tolist()
            expected = [
                min(max(cx - left, 0), width),
                min(max(cy - top, 0), height),
                min(max(cx + right, 0), width),
                min(max(cy + bottom, 0), height)
            ]
            assert box == pytest.approx(expected, abs=1e-4)
            prob = float(probs[level][img_id, label, y, x])
            ctr = 1 / (1 + math.exp(-float(ctrs[level][img_id, 0, y, x])))
            assert prob > 0.05
            assert score == pytest.approx(prob * ctr, rel=1e-6)
            checked_levels.add(level)
    assert checked_levels == {0, 1, 2}


def test_hand_built_locations():
    """Two hand-placed detections: level 1 cell (1, 0) and level 0 cell
    (2, 3)."""
    cls_probs = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)]
    centerness = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    preds = [torch.full((1, 4, 4, 4), 2.), torch.full((1, 4, 2, 2), 2.)]
    cls_probs[1][0, 1, 1, 0] = 0.9  # at (8, 24), box (6, 22, 10, 26)
    cls_probs[0][0, 0, 2, 3] = 0.5  # at (28, 20), box (26, 18, 30, 22)
    slots = select_query_slots(cls_probs, centerness, preds, (8, 16),
                               max_per_img=3)
    assert isinstance(slots, RTPQuerySlots)
    assert slots.num_valid.tolist() == [2]
    assert slots.labels.tolist() == [[1, 0, -1]]
    assert slots.levels.tolist() == [[1, 0, -1]]
    assert slots.cells.tolist() == [[[1, 0], [2, 3], [-1, -1]]]
    assert slots.bboxes[0, :2].tolist() == [[6., 22., 10., 26.],
                                            [26., 18., 30., 22.]]
    torch.testing.assert_close(slots.scores[0],
                               torch.tensor([0.45, 0.25, 0.0]))


def test_nms_iou_threshold():
    assert nms_iou_threshold(None) == 0.6
    assert nms_iou_threshold(dict(type='nms', iou_threshold=0.5)) == 0.5
    assert nms_iou_threshold(dict(iou_threshold=0.7)) == 0.7
    for cfg in (dict(type='soft_nms', iou_threshold=0.5),
                dict(type='nms'),
                dict(type='nms', iou_threshold=0.5, split_thr=100)):
        with pytest.raises(ValueError, match='iou_threshold'):
            nms_iou_threshold(cfg)
    probs, ctrs, ltrbs = _head_outputs(0)
    with pytest.raises(ValueError, match='iou_threshold'):
        select_query_boxes(probs, ctrs, ltrbs, (8, 16, 32),
                           nms_cfg=dict(type='soft_nms', iou_threshold=0.5))
    with pytest.raises(ValueError, match='levels'):
        select_query_slots(probs[:2], ctrs, ltrbs, (8, 16, 32))
    with pytest.raises(ValueError, match='image shapes'):
        select_query_slots(probs, ctrs, ltrbs, (8, 16, 32),
                           [(64, 80), (64, 80)])
