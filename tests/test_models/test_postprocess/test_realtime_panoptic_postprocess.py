# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTP mask construction, query selection and panoptic fusion: values
against hand-computed cases and naive per-query / per-pixel references."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.postprocess import rtp_dense_box_masks
from mmpanoptic_plus.models.postprocess.panoptic_fusion import \
    heuristic_panoptic_fusion as rtp_panoptic_fusion
from mmpanoptic_plus.models.postprocess.realtime_panoptic import (
    CroppedMasks, box_iou_map, build_dense_boxes, resample_to_output,
    rtp_instance_masks, rtp_mask_probabilities, rtp_panoptic_predict,
    sample_level_regressions, select_query_boxes, semantic_labels_to_output,
    threshold_upsampled_masks)


# --------------------------------------------------------------------------
# naive references (Python loops over queries and pixels)
# --------------------------------------------------------------------------
def naive_bilinear(level_map: np.ndarray, stride: int, x: float, y: float):
    """Border-clamped bilinear sample of a (C, H, W) map whose cell (i, j)
    sits at image (stride * j + stride / 2, stride * i + stride / 2)."""
    _, height, width = level_map.shape
    u = min(max(x / stride - 0.5, 0.0), width - 1)
    v = min(max(y / stride - 0.5, 0.0), height - 1)
    u0, v0 = int(math.floor(u)), int(math.floor(v))
    u1, v1 = min(u0 + 1, width - 1), min(v0 + 1, height - 1)
    fu, fv = u - u0, v - v0
    return ((1 - fu) * (1 - fv) * level_map[:, v0, u0] +
            fu * (1 - fv) * level_map[:, v0, u1] +
            (1 - fu) * fv * level_map[:, v1, u0] +
            fu * fv * level_map[:, v1, u1])


def naive_iou(a, b, iou_type):
    inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * max(
        0., min(a[3], b[3]) - max(a[1], b[1]))
    area_a = max(0., a[2] - a[0]) * max(0., a[3] - a[1])
    area_b = max(0., b[2] - b[0]) * max(0., b[3] - b[1])
    union = area_a + area_b - inter
    if iou_type == 'iou':
        return inter / max(union, 1e-6)
    enclose = (max(a[2], b[2]) - min(a[0], b[0])) * (
        max(a[3], b[3]) - min(a[1], b[1]))
    return (inter + 1) / (union + 1) - (enclose - union) / (enclose + 1e-6)


def naive_soft_masks(query_bboxes, query_labels, bbox_preds, strides,
                     levelness, sem_probs, iou_type, use_levelness):
    """(n, h, w) mask probabilities of one image, one pixel at a time."""
    levels = [p[0].double().numpy() for p in bbox_preds]
    levelness = levelness[0].numpy()
    sem = sem_probs.double().numpy()
    _, h, w = sem.shape
    out = np.zeros((len(query_bboxes), h, w))
    for j, (query, label) in enumerate(
            zip(query_bboxes.tolist(), query_labels.tolist())):
        for y in range(h):
            for x in range(w):
                px, py = 4 * x + 2, 4 * y + 2
                boxes = []
                for level_map, stride in zip(levels, strides):
                    left, top, right, bottom = naive_bilinear(
                        level_map, stride, px, py)
                    boxes.append(
                        (px - left, py - top, px + right, py + bottom))
                if use_levelness:
                    choice = int(np.argmax(levelness[:, y, x]))
                    loc = 0.0 if choice == 0 else naive_iou(
                        boxes[choice - 1], query, iou_type)
                else:
                    loc = max(naive_iou(b, query, iou_type) for b in boxes)
                out[j, y, x] = loc * sem[label, y, x]
    return out


def naive_resample(maps: np.ndarray, img_shape, out_shape, stride=4):
    """Bilinear resample of (C, h, w) stride maps to out_shape, pixel by
    pixel: output pixel centre -> input coordinate -> cell coordinate."""
    num, h, w = maps.shape
    out = np.zeros((num, *out_shape))
    for i in range(out_shape[0]):
        for j in range(out_shape[1]):
            y_in = (i + 0.5) * img_shape[0] / out_shape[0]
            x_in = (j + 0.5) * img_shape[1] / out_shape[1]
            out[:, i, j] = naive_bilinear(maps, stride, x_in, y_in)
    return out


def cell_interval_profile(first, last, out_size, img_size, map_size):
    """Bilinear resampling (as the output axis samples a stride-4 map) of
    the indicator of cells ``first..last`` along one axis. Bilinear
    interpolation is separable, so a rectangle of cells resamples to the
    outer product of two such profiles."""
    u = (np.arange(out_size) + 0.5) * img_size / out_size / 4 - 0.5
    u = np.clip(u, 0, map_size - 1)
    low = np.floor(u).astype(int)
    high = np.minimum(low + 1, map_size - 1)
    frac = u - low

    def inside(cell):
        return ((cell >= first) & (cell <= last)).astype(float)

    return (1 - frac) * inside(low) + frac * inside(high)


def random_case(seed, use_levelness=True):
    """Small random RTP outputs: input 32x48, levels at strides 8 and 16."""
    gen = torch.Generator().manual_seed(seed)
    strides = (8, 16)
    bbox_preds = [
        torch.rand(1, 4, 32 // s, 48 // s, generator=gen) * s + 2
        for s in strides
    ]
    levelness = torch.randn(1, 3, 8, 12, generator=gen)
    sem_probs = (torch.randn(4, 8, 12, generator=gen) * 3).softmax(0)
    xy = torch.rand(5, 2, generator=gen) * torch.tensor([40., 26.])
    wh = torch.rand(5, 2, generator=gen) * 16 + 6
    query_bboxes = torch.cat([xy, xy + wh], 1)
    query_labels = torch.tensor([0, 1, 1, 0, 1])
    return strides, bbox_preds, levelness, sem_probs, query_bboxes, \
        query_labels


# --------------------------------------------------------------------------
# dense box map
# --------------------------------------------------------------------------
def test_sample_level_regressions_equals_interpolate_when_aligned():
    gen = torch.Generator().manual_seed(0)
    preds = [torch.rand(2, 4, 64 // s, 96 // s, generator=gen) for s in (8,
                                                                         16)]
    sampled = sample_level_regressions(preds, (8, 16), (16, 24))
    assert sampled.shape == (2, 2, 4, 16, 24)
    for level, (pred, stride) in enumerate(zip(preds, (8, 16))):
        expected = F.interpolate(
            pred,
            scale_factor=stride // 4,
            mode='bilinear',
            align_corners=False)
        torch.testing.assert_close(sampled[:, level], expected)


def test_dense_boxes_hand_built():
    # level 0 (stride 8) predicts ltrb (1, 2, 3, 4) everywhere, level 1
    # (stride 16) (10, 20, 30, 40): bilinear sampling of constants is exact
    preds = [
        torch.tensor([1., 2., 3., 4.]).view(1, 4, 1, 1).expand(1, 4, 2, 2),
        torch.tensor([10., 20., 30., 40.]).view(1, 4, 1, 1).expand(
            1, 4, 1, 1)
    ]
    levelness = torch.zeros(1, 3, 4, 4)
    levelness[0, 0] = 1.0  # background everywhere ...
    levelness[0, 1, 0, 1] = 5.0  # ... except (y=0, x=1): level 0
    levelness[0, 2, 2, 3] = 5.0  # ... and (y=2, x=3): level 1
    boxes, valid = build_dense_boxes(preds, (8, 16), levelness)
    assert boxes.shape == (1, 1, 4, 4, 4)
    expected_valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected_valid[0, 0, 1] = expected_valid[0, 2, 3] = True
    assert torch.equal(valid, expected_valid)
    # pixel (y=0, x=1) sits at image (6, 2)
    assert boxes[0, 0, :, 0, 1].tolist() == [6 - 1, 2 - 2, 6 + 3, 2 + 4]
    # pixel (y=2, x=3) sits at image (14, 10)
    assert boxes[0, 0, :, 2, 3].tolist() == [14 - 10, 10 - 20, 14 + 30,
                                             10 + 40]
    # appendix B: every level's box, all pixels valid
    all_boxes, all_valid = build_dense_boxes(
        preds, (8, 16), levelness, use_levelness=False)
    assert all_boxes.shape == (1, 2, 4, 4, 4) and bool(all_valid.all())
    assert all_boxes[0, 1, :, 0, 1].tolist() == [6 - 10, 2 - 20, 6 + 30,
                                                 2 + 40]
    with pytest.raises(ValueError, match='levelness logits must be'):
        build_dense_boxes(preds, (8, 16), levelness[:, :2])


def test_box_iou_map_hand_computed_and_against_mmdet():
    query = torch.tensor([[0., 0., 4., 4.]])
    dense = torch.tensor([[2., 2., 6., 6.], [10., 0., 12., 4.],
                          [0., 0., 4., 4.]]).T
    iou = box_iou_map(query, dense, 'iou')
    torch.testing.assert_close(iou, torch.tensor([[4 / 28, 0., 1.]]))
    giou = box_iou_map(query, dense, 'giou')
    expected = [5 / 29 - 8 / 36, 1 / 25 - 24 / 48, 1.0]
    torch.testing.assert_close(giou, torch.tensor([expected]))
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(7, 2, generator=gen) * 50
    b = torch.rand(11, 2, generator=gen) * 50
    boxes_a = torch.cat([a, a + torch.rand(7, 2, generator=gen) * 30], 1)
    boxes_b = torch.cat([b, b + torch.rand(11, 2, generator=gen) * 30], 1)
    torch.testing.assert_close(
        box_iou_map(boxes_a, boxes_b.T, 'iou'),
        bbox_overlaps(boxes_a, boxes_b, mode='iou'))
    with pytest.raises(ValueError, match='iou_type'):
        box_iou_map(query, dense, 'diou')


# --------------------------------------------------------------------------
# mask construction vs naive reference
# --------------------------------------------------------------------------
@pytest.mark.parametrize('iou_type', ['iou', 'giou'])
@pytest.mark.parametrize('use_levelness', [True, False])
def test_mask_probabilities_match_naive_reference(iou_type, use_levelness):
    strides, preds, levelness, sem_probs, queries, labels = random_case(3)
    boxes, valid = build_dense_boxes(
        preds, strides, levelness, use_levelness=use_levelness)
    soft = rtp_mask_probabilities(queries, labels, boxes[0], sem_probs,
                                  valid[0], iou_type)
    expected = naive_soft_masks(queries, labels, preds, strides, levelness,
                                sem_probs, iou_type, use_levelness)
    assert soft.shape == (5, 8, 12)
    np.testing.assert_allclose(soft.numpy(), expected, atol=1e-5)
    # the case is not degenerate: some pixels pass the threshold, some not
    assert 0 < (soft >= 0.1).sum() < soft.numel()


@pytest.mark.parametrize('iou_type,mask_thr', [('iou', 0.3), ('giou', 0.4),
                                               ('iou', 0.05)])
def test_instance_masks_equal_full_resample_any_chunking(iou_type, mask_thr):
    strides, preds, levelness, sem_probs, queries, labels = random_case(4)
    boxes, valid = build_dense_boxes(preds, strides, levelness)
    # padded input 32x48 of which 30x45 is image, output at 61x89
    img_shape, out_shape = (30, 45), (61, 89)
    soft = rtp_mask_probabilities(queries, labels, boxes[0], sem_probs,
                                  valid[0], iou_type)
    full = resample_to_output(soft, img_shape, out_shape) >= mask_thr
    assert 0 < full.sum() < full.numel()
    for chunk_size in (1, 2, 5, 100):
        masks = rtp_instance_masks(
            queries,
            labels,
            boxes[0],
            sem_probs,
            valid[0],
            img_shape=img_shape,
            out_shape=out_shape,
            iou_type=iou_type,
            mask_thr=mask_thr,
            chunk_size=chunk_size)
        assert isinstance(masks, CroppedMasks) and len(masks) == 5
        assert torch.equal(masks.to_dense(), full), chunk_size
        torch.testing.assert_close(masks.areas(), full.sum((1, 2)))


def test_resample_to_output_matches_naive_and_interpolate():
    gen = torch.Generator().manual_seed(5)
    maps = torch.rand(2, 8, 12, generator=gen, dtype=torch.float64)
    out = resample_to_output(maps, (30, 45), (61, 89))
    np.testing.assert_allclose(
        out.numpy(), naive_resample(maps.numpy(), (30, 45), (61, 89)),
        atol=1e-9)
    # no padding, no rescale: plain x4 bilinear upsampling
    torch.testing.assert_close(
        resample_to_output(maps, (32, 48), (32, 48)),
        F.interpolate(
            maps[None], scale_factor=4, mode='bilinear',
            align_corners=False)[0])


def test_threshold_upsampled_masks_bounds_batches(monkeypatch):
    gen = torch.Generator().manual_seed(6)
    soft = torch.zeros(7, 16, 16)
    # masks of very different extents
    soft[0] = 1.0
    soft[1, 2:4, 3:5] = 0.9
    soft[2, 10:16, 0:3] = 0.8
    soft[3] = torch.rand(16, 16, generator=gen)
    soft[4, 5, 5] = 0.5
    # a hit next to a cell just under the threshold: the output stays above
    # it almost up to that cell's centre (the crops must reach that far)
    soft[5, 4:9, 4:9] = 0.29
    soft[5, 5:8, 5:8] = 1.0
    sizes, batch_sizes = [], []
    real_grid_sample = F.grid_sample

    def recording_grid_sample(inputs, grid, **kwargs):
        sizes.append(grid.shape[0] * grid.shape[1] * grid.shape[2])
        batch_sizes.append(grid.shape[0])
        return real_grid_sample(inputs, grid, **kwargs)

    monkeypatch.setattr(rtp_dense_box_masks.F, 'grid_sample',
                        recording_grid_sample)
    budget = 2 * 16 * 16
    masks = threshold_upsampled_masks(
        soft, 0.3, (64, 64), (64, 64), max_elements=budget)
    monkeypatch.undo()
    # one full-size crop (64 x 64) goes alone, the others share batches
    assert max(sizes) <= max(budget, 64 * 64)
    assert all(size <= budget
               for size, num in zip(sizes, batch_sizes) if num > 1)
    assert max(batch_sizes) > 1 and sum(batch_sizes) == 6
    expected = resample_to_output(soft, (64, 64), (64, 64)) >= 0.3
    assert torch.equal(masks.to_dense(), expected)
    assert masks.areas()[6] == 0 and masks.crops[6].numel() == 0
    # on row 26, mask 5 spans cells 4.014 .. 7.986 (where .29 (1 - f) + f
    # >= .3): pixels 18 (cell 4.125) to 33 (cell 7.875)
    row = masks.to_dense()[5, 26].nonzero()[:, 0]
    assert row.min() == 18 and row.max() == 33


def test_instance_masks_hand_built_scene():
    """Two objects on the stride-4 grid whose dense boxes are exact: each
    query's soft mask is p = .9 on its object's cells and 0 elsewhere, so its
    mask is the bilinear resampling of a rectangle indicator, thresholded."""
    h, w = 8, 12  # stride-4 map of a 32x48 input
    box_a = (4., 4., 16., 12.)  # cells x 1..3, y 1..2
    box_b = (28., 16., 44., 32.)  # cells x 7..10, y 4..7
    dense = torch.zeros(1, 4, h, w)
    valid = torch.zeros(h, w, dtype=torch.bool)
    dense[0, :, 1:3, 1:4] = torch.tensor(box_a).view(4, 1, 1)
    dense[0, :, 4:8, 7:11] = torch.tensor(box_b).view(4, 1, 1)
    valid[1:3, 1:4] = valid[4:8, 7:11] = True
    sem_probs = torch.full((3, h, w), 0.05)
    sem_probs[2] = 0.9  # stuff elsewhere
    sem_probs[:, valid] = torch.tensor([0.9, 0.05, 0.05])[:, None]
    queries = torch.tensor([box_a, box_b, box_a])
    labels = torch.tensor([0, 0, 1])  # the last asks for the wrong class
    # x4 upsampling of cells 1..3: pixel i samples cell (i + .5) / 4 - .5
    profile_x = cell_interval_profile(1, 3, 48, 48, 12)
    np.testing.assert_allclose(
        profile_x[:18], [0, 0, .125, .375, .625, .875] + [1] * 8 +
        [.875, .625, .375, .125])
    profile_y = cell_interval_profile(1, 2, 32, 32, 8)
    soft_a = 0.9 * np.outer(profile_y, profile_x)
    soft_b = 0.9 * np.outer(
        cell_interval_profile(4, 7, 32, 32, 8),
        cell_interval_profile(7, 10, 48, 48, 12))
    for mask_thr in (0.5, 0.3):
        masks = rtp_instance_masks(
            queries, labels, dense, sem_probs, valid,
            mask_thr=mask_thr).to_dense()
        assert torch.equal(masks[0], torch.from_numpy(soft_a >= mask_thr))
        assert torch.equal(masks[1], torch.from_numpy(soft_b >= mask_thr))
        assert not masks[2].any()
    # at .5 the rows and columns of the box are exactly recovered away from
    # the corners, which bilinear interpolation rounds off
    masks = rtp_instance_masks(
        queries, labels, dense, sem_probs, valid, mask_thr=0.5).to_dense()
    assert masks[0, 4:12, 6:14].all() and masks[0, 6:10, 4:16].all()
    assert masks[0].sum() == 8 * 12 - 4 * 3  # 3 pixels off each corner
    assert not masks[0, :, :4].any() and not masks[0, 12:].any()
    with pytest.raises(ValueError, match='query labels'):
        rtp_instance_masks(queries, torch.tensor([0, 0, 3]), dense,
                           sem_probs, valid)


def test_semantic_labels_match_full_resample():
    gen = torch.Generator().manual_seed(7)
    # smooth logits (large regions) and noisy ones (boundaries everywhere)
    smooth = F.interpolate(
        torch.randn(1, 5, 3, 4, generator=gen) * 4,
        size=(8, 12),
        mode='bilinear',
        align_corners=False)[0]
    noisy = torch.randn(5, 8, 12, generator=gen)
    for logits in (smooth, noisy):
        for img_shape, out_shape in (((32, 48), (32, 48)),
                                     ((30, 45), (61, 89))):
            expected = resample_to_output(logits, img_shape,
                                          out_shape).argmax(0)
            # boundary pixels only, or everything when they are too many
            for fraction in (1.0, 0.0):
                labels = semantic_labels_to_output(
                    logits, img_shape, out_shape, chunk_pixels=100,
                    max_boundary_fraction=fraction)
                assert torch.equal(labels, expected)


# --------------------------------------------------------------------------
# query selection
# --------------------------------------------------------------------------
def test_select_query_boxes_hand_built():
    strides = (8, 16)
    cls_probs = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)]
    centerness = [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    preds = [torch.full((1, 4, 4, 4), 4.), torch.full((1, 4, 2, 2), 4.)]
    # level 0 cell (1, 1) at (12, 12): class 0, p .9, centerness sigmoid(0)
    cls_probs[0][0, 0, 1, 1] = 0.9
    # its neighbour (1, 2) at (20, 12) predicts (9, 8, 20, 16): IoU 56 / 96
    # > .5 with the first, same class, lower score -> suppressed
    cls_probs[0][0, 0, 1, 2] = 0.8
    preds[0][0, :, 1, 2] = torch.tensor([11., 4., 0., 4.])
    # same place, class 1: class-wise NMS keeps it
    cls_probs[0][0, 1, 1, 1] = 0.7
    centerness[0][0, 0, 1, 1] = 0.0
    # below the probability threshold although its centerness is high
    cls_probs[0][0, 0, 3, 3] = 0.04
    centerness[0][0, 0, 3, 3] = 10.0
    # above it, with a product below it: kept (the threshold is on the class
    # probability, as in FCOS and the released code); box (24, 0, 32, 8)
    cls_probs[0][0, 1, 0, 3] = 0.08
    centerness[0][0, 0, 0, 3] = -3.0
    # level 1 cell (1, 1) at (24, 24), box (14, 14, 34, 34), class 1
    cls_probs[1][0, 1, 1, 1] = 0.6
    centerness[1][0, 0, 1, 1] = math.log(4)  # sigmoid = .8
    preds[1][0, :, 1, 1] = 10.
    results = select_query_boxes(
        cls_probs,
        centerness,
        preds,
        strides,
        nms_cfg=dict(type='nms', iou_threshold=0.5))
    assert len(results) == 1
    res = results[0]
    low = 0.08 / (1 + math.exp(3))
    torch.testing.assert_close(
        res.scores, torch.tensor([0.6 * 0.8, 0.9 * 0.5, 0.7 * 0.5, low]))
    assert res.labels.tolist() == [1, 0, 1, 1]
    torch.testing.assert_close(
        res.bboxes,
        torch.tensor([[14., 14., 34., 34.], [8., 8., 16., 16.],
                      [8., 8., 16., 16.], [24., 0., 32., 8.]]))
    # max_per_img and clipping to the image
    capped = select_query_boxes(
        cls_probs, centerness, preds, strides, img_shapes=[(30, 30)],
        max_per_img=1)[0]
    assert capped.bboxes.tolist() == [[14., 14., 30., 30.]]
    # class-agnostic NMS afterwards (released code: 0.97) merges the two
    # identical boxes of different classes
    merged = select_query_boxes(
        cls_probs,
        centerness,
        preds,
        strides,
        nms_cfg=dict(type='nms', iou_threshold=0.5),
        agnostic_iou_thr=0.97)[0]
    assert merged.labels.tolist() == [1, 0, 1]
    assert merged.bboxes[2].tolist() == [24., 0., 32., 8.]


def test_select_query_boxes_nms_pre_and_empty():
    gen = torch.Generator().manual_seed(8)
    cls_probs = [torch.rand(2, 3, 4, 4, generator=gen)]
    centerness = [torch.randn(2, 1, 4, 4, generator=gen)]
    # boxes far apart so that NMS removes nothing
    preds = [torch.full((2, 4, 4, 4), 1.0)]
    results = select_query_boxes(
        cls_probs, centerness, preds, (8, ), score_thr=0.0, nms_pre=5,
        max_per_img=100)
    for img, res in enumerate(results):
        scores = (cls_probs[0][img].permute(1, 2, 0).reshape(-1, 3) *
                  centerness[0][img].reshape(-1, 1).sigmoid()).flatten()
        torch.testing.assert_close(res.scores, scores.sort(
            descending=True).values[:5])
    empty = select_query_boxes(cls_probs, centerness, preds, (8, ),
                               score_thr=1.0)
    assert [len(r) for r in empty] == [0, 0]


# --------------------------------------------------------------------------
# panoptic fusion
# --------------------------------------------------------------------------
def _box_mask(top, bottom, left, right, shape=(20, 20)):
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[top:bottom, left:right] = True
    return mask


def test_fusion_score_order_overlap_drop_stuff_and_void():
    num_things, num_stuff = 2, 2
    void = num_things + num_stuff
    # A (score .9): rows 0-4 x cols 0-10 (50 px)
    # B (score .8): rows 0-5 x cols 0-10: 40 of its 50 px taken by A
    #    -> 20% free < 50% -> dropped
    # C (score .7): rows 2-7 x cols 12-16 (20 px), overlaps nothing
    # D (score .6): rows 4-9 x cols 0-4 (20 px), A took row 4 (4 px)
    #    -> 80% free -> keeps rows 5-9
    masks = torch.stack([
        _box_mask(0, 5, 0, 10),
        _box_mask(1, 6, 0, 10),
        _box_mask(2, 7, 12, 16),
        _box_mask(4, 9, 0, 4),
    ])
    labels = torch.tensor([0, 0, 1, 0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    sem_seg = torch.full((20, 20), 2)  # stuff class 2 ...
    sem_seg[15:20, 15:20] = 3  # ... stuff class 3 on 25 px (small) ...
    sem_seg[10:12, 0:20] = 1  # ... thing class 1 not covered by instances
    pan = rtp_panoptic_fusion(
        masks, labels, scores, sem_seg, num_things, num_stuff,
        stuff_area_limit=30)
    expected = torch.full((20, 20), 2)
    expected[15:20, 15:20] = void  # stuff segment below the area limit
    expected[10:12, :] = void  # uncovered thing-class pixels
    expected[0:5, 0:10] = 0 + 1 * INSTANCE_OFFSET  # A
    expected[2:7, 12:16] = 1 + 2 * INSTANCE_OFFSET  # C
    expected[5:9, 0:4] = 0 + 3 * INSTANCE_OFFSET  # D minus A's pixels
    assert torch.equal(pan, expected)

    # the input order does not matter, only the scores
    perm = torch.tensor([3, 1, 0, 2])
    assert torch.equal(
        rtp_panoptic_fusion(masks[perm], labels[perm], scores[perm], sem_seg,
                            num_things, num_stuff, stuff_area_limit=30),
        expected)
    # cropped masks give the same result as dense ones
    assert torch.equal(
        rtp_panoptic_fusion(
            CroppedMasks.from_dense(masks), labels, scores, sem_seg,
            num_things, num_stuff, stuff_area_limit=30), expected)
    # a stricter overlap rule drops D too (80% free < 90%) ...
    strict = rtp_panoptic_fusion(
        masks, labels, scores, sem_seg, num_things, num_stuff,
        overlap_thr=0.9, stuff_area_limit=30)
    assert set(strict.unique().tolist()) == {
        2, void, 0 + INSTANCE_OFFSET, 1 + 2 * INSTANCE_OFFSET}
    assert strict[6, 1] == 2  # D's pixels fell back to stuff
    # ... and a score threshold removes C and D
    high = rtp_panoptic_fusion(
        masks, labels, scores, sem_seg, num_things, num_stuff,
        stuff_area_limit=30, score_thr=0.75)
    assert set(high.unique().tolist()) == {2, void, INSTANCE_OFFSET}


def test_fusion_without_instances_and_bad_input():
    sem_seg = torch.tensor([[0, 1, 1], [2, 2, 2]])
    no_masks = torch.zeros(0, 2, 3, dtype=torch.bool)
    pan = rtp_panoptic_fusion(no_masks, torch.zeros(0, dtype=torch.long),
                              torch.zeros(0), sem_seg, 1, 2,
                              stuff_area_limit=3)
    assert pan.tolist() == [[3, 3, 3], [2, 2, 2]]
    with pytest.raises(ValueError, match='instance labels'):
        rtp_panoptic_fusion(
            torch.ones(1, 2, 3, dtype=torch.bool), torch.tensor([1]),
            torch.ones(1), sem_seg, 1, 2)
    with pytest.raises(ValueError, match='sem_seg labels'):
        rtp_panoptic_fusion(no_masks, torch.zeros(0, dtype=torch.long),
                            torch.zeros(0), sem_seg + 1, 1, 2)
    with pytest.raises(ValueError, match='masks are'):
        rtp_panoptic_fusion(
            torch.ones(1, 3, 3, dtype=torch.bool), torch.tensor([0]),
            torch.ones(1), sem_seg, 1, 2)


def test_cropped_masks_indexing_round_trip():
    masks = torch.stack([
        _box_mask(0, 5, 0, 10), torch.zeros(20, 20, dtype=torch.bool),
        _box_mask(2, 7, 12, 16)
    ])
    cropped = CroppedMasks.from_dense(masks)
    assert cropped.boxes.tolist() == [[0, 0, 10, 5], [0, 0, 0, 0],
                                      [12, 2, 16, 7]]
    assert torch.equal(cropped.to_dense(), masks)
    assert cropped.areas().tolist() == [50, 0, 20]
    assert torch.equal(cropped[torch.tensor([True, False, True])].to_dense(),
                       masks[[0, 2]])
    assert torch.equal(cropped[2].to_dense(), masks[2:])
    # it rides in an InstanceData, which indexes with slices and ``cat``
    instances = InstanceData(scores=torch.tensor([.3, .2, .1]),
                             masks=cropped)
    kept = instances[instances.scores > 0.15]
    assert torch.equal(kept.masks.to_dense(), masks[:2])
    assert torch.equal(instances[torch.tensor([2, 0])].masks.to_dense(),
                       masks[[2, 0]])


# --------------------------------------------------------------------------
# end to end: outputs of a perfect network -> exact panoptic map
# --------------------------------------------------------------------------
def _linear_ltrb_field(box, height, width, stride):
    """(1, 4, H, W) ltrb of ``box`` at every cell of a stride map: a linear
    field, which bilinear sampling reproduces exactly."""
    xs = torch.arange(width) * stride + stride // 2
    ys = torch.arange(height) * stride + stride // 2
    field = torch.stack([
        (xs[None, :] - box[0]).expand(height, width),
        (ys[:, None] - box[1]).expand(height, width),
        (box[2] - xs[None, :]).expand(height, width),
        (box[3] - ys[:, None]).expand(height, width)
    ]).float()
    return field[None]


@pytest.mark.parametrize('iou_type', ['iou', 'giou'])
def test_predict_perfect_network_gives_exact_panoptic_map(iou_type):
    """Outputs of a network that is right everywhere: each level regresses
    the linear ltrb field of its object (exact under bilinear sampling),
    levelness and semantics are one-hot on stride-4 cells. The panoptic map
    at the original size is then known pixel by pixel."""
    num_things, num_stuff = 2, 2
    strides = (8, 16)
    mask_thr = 0.3
    # padded input 64x64, image 60x64, original image twice as large
    box_a = (8, 8, 24, 24)  # small object: level 0, class 1, cells 2..5
    # larger: level 1, class 0, cells x 7..13, y 3..13; its stride-4 pixels
    # stay within level 1's cell centres (8..56), where sampling is exact
    box_b = (28, 12, 56, 56)
    bbox_preds = [
        _linear_ltrb_field(box_a, 8, 8, 8),
        _linear_ltrb_field(box_b, 4, 4, 16)
    ]
    cls_probs = [torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 4, 4)]
    cls_probs[0][0, 1, 2, 1] = 0.9  # (12, 20) inside A
    cls_probs[1][0, 0, 2, 2] = 0.8  # (40, 40) inside B
    centerness = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    levelness = torch.zeros(1, 3, 16, 16)
    levelness[0, 0] = 1.0
    levelness[0, 1, 2:6, 2:6] = 5.0  # A's cells
    levelness[0, 2, 3:14, 7:14] = 5.0  # B's cells
    cell_labels = torch.full((16, 16), 2)  # stuff 2 on top ...
    cell_labels[8:] = 3  # ... stuff 3 from input row 32
    cell_labels[2:6, 2:6] = 1
    cell_labels[3:14, 7:14] = 0
    sem_logits = 9.0 * F.one_hot(cell_labels, 4).permute(2, 0, 1)[None]
    meta = dict(img_shape=(60, 64), ori_shape=(120, 128),
                scale_factor=(0.5, 0.5))
    cfg = dict(iou_type=iou_type, mask_thr=mask_thr, stuff_area_limit=10)
    results = rtp_panoptic_predict(cls_probs, centerness, bbox_preds,
                                   levelness, sem_logits.float(), [meta],
                                   strides, num_things, num_stuff, cfg)
    pan = results[0]['pan_results'].sem_seg[0]
    assert pan.shape == (120, 128)
    # the thing probability on an object's cells is e^9 / (e^9 + 3)
    prob = math.exp(9) / (math.exp(9) + 3)
    mask_a = prob * np.outer(
        cell_interval_profile(2, 5, 120, 60, 16),
        cell_interval_profile(2, 5, 128, 64, 16)) >= mask_thr
    mask_b = prob * np.outer(
        cell_interval_profile(3, 13, 120, 60, 16),
        cell_interval_profile(7, 13, 128, 64, 16)) >= mask_thr
    assert not (mask_a & mask_b).any()
    expected = torch.full((120, 128), 2)
    expected[64:] = 3  # input row 32 = original row 64
    expected[torch.from_numpy(mask_a)] = 1 + 1 * INSTANCE_OFFSET  # .45
    expected[torch.from_numpy(mask_b)] = 0 + 2 * INSTANCE_OFFSET  # .40
    assert torch.equal(pan, expected)
    # the instance masks hug the boxes (x2 in the original image), 2 px
    # wider at sigma = .3 (weights .4375 and .3125 of the edge cell)
    assert mask_a[16:48, 16:48].all() and mask_a[14, 20]
    assert not mask_a[:14].any() and not mask_a[:, 50:].any()
    assert mask_b[24:112, 56:112].all() and not mask_b[:, :54].any()
    ins = results[0]['ins_results']
    assert ins.labels.tolist() == [1, 0]
    torch.testing.assert_close(ins.scores, torch.tensor([0.45, 0.4]))
    torch.testing.assert_close(
        ins.bboxes, torch.tensor([box_a, box_b]).float() * 2)
    assert ins.masks.shape == (120, 128)
    assert torch.equal(ins.masks.to_dense(),
                       torch.from_numpy(np.stack([mask_a, mask_b])))

    # appendix B (no levelness) reaches the same map here: each level's box
    # is its object's everywhere, the semantic term does the rest
    no_levelness = rtp_panoptic_predict(
        cls_probs, centerness, bbox_preds, None, sem_logits.float(), [meta],
        strides, num_things, num_stuff, dict(cfg, use_levelness=False))
    assert torch.equal(no_levelness[0]['pan_results'].sem_seg[0], expected)
    with pytest.raises(KeyError, match='unknown RTP test_cfg'):
        rtp_panoptic_predict(cls_probs, centerness, bbox_preds, levelness,
                             sem_logits.float(), [meta], strides,
                             num_things, num_stuff,
                             dict(mask_threshold=0.3))


def test_merge_rtp_test_cfg_applies_overrides_in_order():
    from mmpanoptic_plus.models.postprocess import (RTP_TEST_CFG,
                                                    merge_rtp_test_cfg)
    assert merge_rtp_test_cfg() == RTP_TEST_CFG
    assert merge_rtp_test_cfg(None, {}) == RTP_TEST_CFG
    cfg = merge_rtp_test_cfg(dict(mask_thr=0.4, score_thr=0.1),
                             dict(mask_thr=0.2))
    assert (cfg['mask_thr'], cfg['score_thr']) == (0.2, 0.1)
    assert RTP_TEST_CFG['mask_thr'] == 0.3  # the defaults are not touched
    with pytest.raises(KeyError, match='unknown RTP test_cfg keys'):
        merge_rtp_test_cfg(dict(mask_thr=0.2), dict(mask_threshold=0.2))
