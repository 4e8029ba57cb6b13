# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTPTargetAssigner: hand-computed targets on a hand-built scene and a naive
per-location reference."""
import math

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.task_modules import RTPTargetAssigner, RTPTargets
from mmpanoptic_plus.registry import TASK_UTILS

STRIDES = (8, 16, 32, 64, 128)
RANGES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, math.inf))
NUM_THINGS = 2
SIZE = 128
FEATMAP_SIZES = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
LEVELNESS_SIZE = (32, 32)


def tight_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def hand_built_scene():
    """A, B: two touching instances of class 0 (B has a notch: part of its
    box is not its mask); C: a tiny class-1 instance; D: a large class-1
    instance (level 1); a crowd region."""
    masks = np.zeros((4, SIZE, SIZE), dtype=bool)
    masks[0, 8:40, 8:24] = True  # A, box (8, 8, 24, 40)
    masks[1, 8:40, 24:48] = True  # B, touching A at x = 24
    masks[1, 8:16, 40:48] = False  # ... notch, box still (24, 8, 48, 40)
    masks[2, 50:53, 50:53] = True  # C, tiny, box (50, 50, 53, 53)
    masks[3, :, 64:] = True  # D, box (64, 0, 128, 128)
    boxes = torch.tensor([tight_box(m) for m in masks], dtype=torch.float32)
    gt = InstanceData(
        bboxes=boxes, labels=torch.tensor([0, 0, 1, 1]), masks=masks)
    crowd_mask = np.zeros((1, SIZE, SIZE), dtype=bool)
    crowd_mask[0, 48:64, 0:32] = True
    crowd = InstanceData(
        bboxes=torch.tensor([[0., 48., 32., 64.]]),
        labels=torch.tensor([0]),
        masks=crowd_mask)
    return gt, crowd


def naive_assign(gt, crowd, use_masks, regress_ranges=RANGES,
                 strides=STRIDES, featmap_sizes=FEATMAP_SIZES,
                 levelness_size=LEVELNESS_SIZE):
    """The documented policy, one location and one instance at a time."""
    boxes = gt.bboxes.tolist()
    labels = gt.labels.tolist()
    masks = gt.masks if use_masks else None

    def owner_of(x, y):
        best, best_area = None, math.inf
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            if not (x1 <= x < x2 and y1 <= y < y2):
                continue
            if masks is not None and not masks[k, y, x]:
                continue
            area = (x2 - x1) * (y2 - y1)
            if area < best_area:
                best, best_area = k, area
        return best

    def in_crowd(x, y):
        if crowd is None:
            return False
        if use_masks:
            return bool(crowd.masks[:, y, x].any())
        return any(x1 <= x < x2 and y1 <= y < y2
                   for x1, y1, x2, y2 in crowd.bboxes.tolist())

    def ltrb_of(k, x, y):
        x1, y1, x2, y2 = boxes[k]
        return [x - x1, y - y1, x2 - x, y2 - y]

    levels = []
    for level, ((height, width), stride) in enumerate(
            zip(featmap_sizes, strides)):
        lab = np.full((height, width), NUM_THINGS)
        tgt = np.zeros((4, height, width))
        ctr = np.zeros((height, width))
        ign = np.zeros((height, width), dtype=bool)
        ind = np.full((height, width), -1)
        low, high = regress_ranges[level]
        for i in range(height):
            for j in range(width):
                x, y = stride * j + stride // 2, stride * i + stride // 2
                k = owner_of(x, y) if x < SIZE and y < SIZE else None
                if k is not None:
                    ltrb = ltrb_of(k, x, y)
                    if low <= max(ltrb) <= high:
                        lab[i, j], ind[i, j] = labels[k], k
                        tgt[:, i, j] = ltrb
                        left, top, right, bottom = ltrb
                        ctr[i, j] = math.sqrt(
                            min(left, right) / max(left, right) *
                            min(top, bottom) / max(top, bottom))
                if lab[i, j] == NUM_THINGS and x < SIZE and y < SIZE:
                    ign[i, j] = in_crowd(x, y)
        levels.append((lab, tgt, ctr, ign, ind))
    levelness = np.zeros(levelness_size, dtype=int)
    levelness_ignore = np.zeros(levelness_size, dtype=bool)
    for i in range(levelness_size[0]):
        for j in range(levelness_size[1]):
            x, y = 4 * j + 2, 4 * i + 2
            k = owner_of(x, y)
            if k is not None:
                m = max(ltrb_of(k, x, y))
                for level, (low, high) in enumerate(regress_ranges):
                    if low <= m <= high:
                        levelness[i, j] = level + 1
                        break
            if levelness[i, j] == 0:
                levelness_ignore[i, j] = in_crowd(x, y)
    return levels, levelness, levelness_ignore


def assert_matches_naive(targets: RTPTargets, img, expected):
    levels, levelness, levelness_ignore = expected
    for level, (lab, tgt, ctr, ign, ind) in enumerate(levels):
        np.testing.assert_array_equal(targets.labels[level][img].numpy(),
                                      lab)
        np.testing.assert_array_equal(
            targets.fg_masks[level][img].numpy(), lab < NUM_THINGS)
        np.testing.assert_allclose(
            targets.bbox_targets[level][img].numpy(), tgt, atol=1e-6)
        np.testing.assert_allclose(
            targets.centerness_targets[level][img].numpy(), ctr, atol=1e-6)
        np.testing.assert_array_equal(
            targets.ignore_masks[level][img].numpy(), ign)
        np.testing.assert_array_equal(
            targets.assigned_gt_inds[level][img].numpy(), ind)
    np.testing.assert_array_equal(targets.levelness_targets[img].numpy(),
                                  levelness)
    np.testing.assert_array_equal(targets.levelness_ignore[img].numpy(),
                                  levelness_ignore)


def test_hand_built_scene_hand_computed_values():
    gt, crowd = hand_built_scene()
    assigner = RTPTargetAssigner(NUM_THINGS)
    targets = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [gt], [crowd])
    assert targets.labels[0].shape == (1, 16, 16)
    assert targets.bbox_targets[0].shape == (1, 4, 16, 16)
    assert targets.levelness_targets.shape == (1, 32, 32)
    labels0, boxes0 = targets.labels[0][0], targets.bbox_targets[0][0]
    centerness0, inds0 = (targets.centerness_targets[0][0],
                          targets.assigned_gt_inds[0][0])
    # level 0 location (i=1, j=1) at (12, 12) in A: ltrb (4, 4, 12, 28)
    assert labels0[1, 1] == 0 and inds0[1, 1] == 0
    assert boxes0[:, 1, 1].tolist() == [4, 4, 12, 28]
    assert centerness0[1, 1].item() == pytest.approx(math.sqrt(1 / 21))
    # touching instances: x = 20 belongs to A, x = 28 to B
    assert inds0[2, 2] == 0 and inds0[2, 3] == 1
    assert boxes0[:, 2, 3].tolist() == [4, 12, 20, 20]
    # B's notch at (44, 12): inside B's box, outside its mask: background
    assert labels0[1, 5] == NUM_THINGS and inds0[1, 5] == -1
    assert boxes0[:, 1, 5].tolist() == [0, 0, 0, 0]
    assert centerness0[1, 5] == 0
    # tiny C: one level-0 location (52, 52), ltrb (2, 2, 1, 1)
    c_locations = (inds0 == 2).nonzero().tolist()
    assert c_locations == [[6, 6]]
    assert labels0[6, 6] == 1 and boxes0[:, 6, 6].tolist() == [2, 2, 1, 1]
    assert centerness0[6, 6].item() == pytest.approx(0.5)
    for level in range(1, 5):
        assert not (targets.assigned_gt_inds[level] == 2).any()
    # D at level 0 (68, 4): max distance 124 is level 1's -> background
    assert labels0[0, 8] == NUM_THINGS and not targets.ignore_masks[0][0, 0,
                                                                       8]
    # D at level 1 (72, 8): ltrb (8, 8, 56, 120)
    assert targets.labels[1][0, 0, 4] == 1
    assert targets.bbox_targets[1][0, :, 0, 4].tolist() == [8, 8, 56, 120]
    assert targets.centerness_targets[1][0, 0, 4].item() == pytest.approx(
        math.sqrt(8 / 56 * 8 / 120))
    # no instance reaches levels 3 and 4 (no distance above 128)
    assert not targets.fg_masks[3].any() and not targets.fg_masks[4].any()
    # crowd: level 0 (12, 52) and levelness (10, 50) are ignored background
    assert labels0[6, 1] == NUM_THINGS and targets.ignore_masks[0][0, 6, 1]
    assert targets.levelness_ignore[0, 12, 2]
    assert targets.ignore_masks[0].sum() == 2 * 4  # rows 52, 60 x 4 cols
    # levelness: A (10, 10) -> level 0, C (50, 50) -> level 0 (max 3),
    # (54, 54) just outside C -> 0, D (66, 2) and (98, 66) -> level 1
    levelness = targets.levelness_targets[0]
    assert levelness[2, 2] == 1 and levelness[12, 12] == 1
    assert levelness[13, 13] == 0
    assert levelness[0, 16] == 2 and levelness[16, 24] == 2
    # the notch is background for levelness too
    assert levelness[2, 10] == 0  # (42, 10)
    assert set(levelness.unique().tolist()) == {0, 1, 2}


@pytest.mark.parametrize('use_masks', [True, False])
def test_hand_built_scene_matches_naive_reference(use_masks):
    gt, crowd = hand_built_scene()
    assigner = RTPTargetAssigner(NUM_THINGS, use_masks=use_masks)
    targets = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [gt], [crowd])
    assert_matches_naive(targets, 0, naive_assign(gt, crowd, use_masks))


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('use_masks', [True, False])
def test_random_scene_matches_naive_reference(seed, use_masks):
    """Rectangles painted over each other give non-overlapping irregular
    masks; their tight boxes overlap."""
    rng = np.random.default_rng(seed)
    id_map = np.full((SIZE, SIZE), -1)
    for k in range(8):
        x1, y1 = rng.integers(0, 100, 2)
        w, h = rng.integers(3, 90, 2)
        id_map[y1:y1 + h, x1:x1 + w] = k
    present = [k for k in range(8) if (id_map == k).any()]
    masks = np.stack([id_map == k for k in present])
    gt = InstanceData(
        bboxes=torch.tensor([tight_box(m) for m in masks],
                            dtype=torch.float32),
        labels=torch.from_numpy(rng.integers(0, NUM_THINGS, len(present))),
        masks=masks)
    crowd_masks = np.zeros((1, SIZE, SIZE), dtype=bool)
    crowd_masks[0, 100:, :40] = id_map[100:, :40] == -1
    crowd = InstanceData(
        bboxes=torch.tensor([[0., 100., 40., 128.]]),
        labels=torch.tensor([0]),
        masks=crowd_masks)
    ranges = ((-1, 20), (20, 40), (40, 60), (60, 80), (80, math.inf))
    assigner = RTPTargetAssigner(
        NUM_THINGS, regress_ranges=ranges, use_masks=use_masks)
    targets = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [gt], [crowd])
    assert_matches_naive(
        targets, 0,
        naive_assign(gt, crowd, use_masks, regress_ranges=ranges))
    assert targets.fg_masks[0].any() and targets.fg_masks[1].any()


def test_weakly_supervised_smallest_box_wins():
    big = [0., 0., 64., 64.]
    small = [16., 16., 32., 32.]
    gt = InstanceData(
        bboxes=torch.tensor([big, small]), labels=torch.tensor([0, 1]))
    assigner = RTPTargetAssigner(NUM_THINGS, use_masks=False)
    targets = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [gt])
    inds0 = targets.assigned_gt_inds[0][0]
    # (20, 20), (28, 28) in both boxes -> small; (12, 12), (36, 20) -> big
    assert inds0[2, 2] == 1 and inds0[3, 3] == 1
    assert inds0[1, 1] == 0 and inds0[2, 4] == 0
    assert targets.labels[0][0, 2, 2] == 1
    assert targets.bbox_targets[0][0, :, 2, 2].tolist() == [4, 4, 12, 12]
    # everything inside the big box is foreground at some stride-4 pixel
    levelness = targets.levelness_targets[0]
    assert (levelness[:16, :16] > 0).all() and not levelness[16:].any()
    # the same boxes in the opposite order give the same assignment
    swapped = assigner.assign(
        FEATMAP_SIZES, LEVELNESS_SIZE, [
            InstanceData(
                bboxes=torch.tensor([small, big]),
                labels=torch.tensor([1, 0]))
        ])
    torch.testing.assert_close(swapped.labels[0], targets.labels[0])


def test_box_mode_foreground_contains_mask_mode_foreground():
    gt, crowd = hand_built_scene()
    with_masks = RTPTargetAssigner(NUM_THINGS).assign(
        FEATMAP_SIZES, LEVELNESS_SIZE, [gt], [crowd])
    boxes_only = InstanceData(bboxes=gt.bboxes, labels=gt.labels)
    crowd_boxes = InstanceData(bboxes=crowd.bboxes, labels=crowd.labels)
    weak = RTPTargetAssigner(NUM_THINGS, use_masks=False).assign(
        FEATMAP_SIZES, LEVELNESS_SIZE, [boxes_only], [crowd_boxes])
    for strong_fg, weak_fg in zip(with_masks.fg_masks, weak.fg_masks):
        assert not (strong_fg & ~weak_fg).any()
    # the notch (44, 12) is foreground (B) only with boxes
    assert weak.assigned_gt_inds[0][0, 1, 5] == 1
    assert (weak.fg_masks[0].sum() > with_masks.fg_masks[0].sum())


def test_empty_image_and_batch():
    gt, crowd = hand_built_scene()
    empty = InstanceData(
        bboxes=torch.zeros(0, 4),
        labels=torch.zeros(0, dtype=torch.long),
        masks=np.zeros((0, SIZE, SIZE), dtype=bool))
    assigner = RTPTargetAssigner(NUM_THINGS)
    targets = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [empty, gt],
                              [None, crowd])
    for level in range(5):
        assert (targets.labels[level][0] == NUM_THINGS).all()
        assert not targets.fg_masks[level][0].any()
        assert not targets.ignore_masks[level][0].any()
        assert (targets.assigned_gt_inds[level][0] == -1).all()
        assert not targets.bbox_targets[level][0].any()
        assert not targets.centerness_targets[level][0].any()
        assert torch.isfinite(targets.centerness_targets[level]).all()
        assert torch.isfinite(targets.bbox_targets[level]).all()
    assert not targets.levelness_targets[0].any()
    assert not targets.levelness_ignore[0].any()
    # the second image is assigned as on its own
    assert_matches_naive(targets, 1, naive_assign(gt, crowd, True))
    # an InstanceData without any field is an empty image too
    bare = assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [InstanceData()])
    assert not bare.levelness_targets.any()


def test_bitmap_masks_tensors_and_boxes_types_agree():
    gt, crowd = hand_built_scene()
    reference = RTPTargetAssigner(NUM_THINGS).assign(
        FEATMAP_SIZES, LEVELNESS_SIZE, [gt], [crowd])
    as_mmdet = InstanceData(
        bboxes=HorizontalBoxes(gt.bboxes),
        labels=gt.labels,
        masks=BitmapMasks(gt.masks.astype(np.uint8), SIZE, SIZE))
    crowd_mmdet = InstanceData(
        bboxes=HorizontalBoxes(crowd.bboxes),
        labels=crowd.labels,
        masks=BitmapMasks(crowd.masks.astype(np.uint8), SIZE, SIZE))
    as_tensors = InstanceData(
        bboxes=gt.bboxes, labels=gt.labels,
        masks=torch.from_numpy(gt.masks))
    for other_gt, other_crowd in ((as_mmdet, crowd_mmdet),
                                  (as_tensors, crowd)):
        other = RTPTargetAssigner(NUM_THINGS).assign(
            FEATMAP_SIZES, LEVELNESS_SIZE, [other_gt], [other_crowd])
        for field in RTPTargets._fields:
            expected, actual = getattr(reference, field), getattr(
                other, field)
            if isinstance(expected, list):
                for e, a in zip(expected, actual):
                    assert torch.equal(e, a), field
            else:
                assert torch.equal(expected, actual), field


def test_size_range_boundaries_and_gaps():
    # max distance exactly 64 lies in levels 0 and 1 (inclusive ranges):
    # levelness takes the lowest. Pixel (2, 2) in (0, 0, 66, 8): r = 64.
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 66., 8.]]), labels=torch.tensor([1]))
    targets = RTPTargetAssigner(
        NUM_THINGS, use_masks=False).assign(FEATMAP_SIZES, LEVELNESS_SIZE,
                                            [gt])
    assert targets.levelness_targets[0, 0, 0] == 1
    # level-0 location (4, 4): ltrb (4, 4, 62, 4), max 62 -> level 0
    assert targets.labels[0][0, 0, 0] == 1
    # ranges with a gap (10, 20): an owned pixel whose max falls in it gets
    # levelness 0 and is foreground nowhere
    gap = RTPTargetAssigner(
        NUM_THINGS, strides=(8, 16), regress_ranges=((-1, 10), (20, 40)),
        use_masks=False)
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 16., 16.]]), labels=torch.tensor([0]))
    targets = gap.assign([(16, 16), (8, 8)], LEVELNESS_SIZE, [gt])
    # pixel (2, 2): max 14 (gap); (6, 6): max 10 (level 0)
    assert targets.levelness_targets[0, 0, 0] == 0
    assert targets.levelness_targets[0, 1, 1] == 1
    # level-0 location (4, 4): max 12 -> in the gap, background
    assert not targets.fg_masks[0][0, 0, 0]


def test_errors_and_registry():
    gt, crowd = hand_built_scene()
    assigner = TASK_UTILS.build(
        dict(type='RTPTargetAssigner', num_things=NUM_THINGS))
    assert isinstance(assigner, RTPTargetAssigner)
    with pytest.raises(ValueError, match='needs gt_instances.masks'):
        assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE,
                        [InstanceData(bboxes=gt.bboxes, labels=gt.labels)])
    with pytest.raises(ValueError, match='thing labels'):
        assigner.assign(FEATMAP_SIZES, LEVELNESS_SIZE, [
            InstanceData(
                bboxes=gt.bboxes, labels=gt.labels + 1, masks=gt.masks)
        ])
    with pytest.raises(ValueError, match='feature map sizes'):
        assigner.assign(FEATMAP_SIZES[:4], LEVELNESS_SIZE, [gt])
    with pytest.raises(ValueError, match='regress ranges'):
        RTPTargetAssigner(NUM_THINGS, strides=(8, 16))
