# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""FCOSMaskTargetAssigner without levelness (CIAE's use): hand-computed
positives, regression targets, centerness and crowd flags on hand-built
masks; with levelness it is RTPTargetAssigner, whose targets it leaves
unchanged."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.task_modules import (FCOSMaskTargetAssigner,
                                                 FCOSMaskTargets,
                                                 RTPTargetAssigner)
from mmpanoptic_plus.registry import TASK_UTILS

NUM_THINGS = 2
SIZE = 64
STRIDES = (8, 16)
RANGES = ((-1, 20), (20, math.inf))
FEATMAP_SIZES = [(8, 8), (4, 4)]


def hand_built_scene():
    """Instance 0 (label 1): the rectangle x in [0, 24), y in [0, 16).
    Instance 1 (label 0): the square [32, 64)^2 without its top-right
    quarter x in [48, 64), y in [32, 48) (its box is the full square).
    Crowd: x in [0, 16), y in [48, 64)."""
    masks = np.zeros((2, SIZE, SIZE), dtype=bool)
    masks[0, 0:16, 0:24] = True
    masks[1, 32:64, 32:64] = True
    masks[1, 32:48, 48:64] = False
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 24., 16.], [32., 32., 64., 64.]]),
        labels=torch.tensor([1, 0]),
        masks=masks)
    crowd_masks = np.zeros((1, SIZE, SIZE), dtype=bool)
    crowd_masks[0, 48:64, 0:16] = True
    crowd = InstanceData(
        bboxes=torch.tensor([[0., 48., 16., 64.]]),
        labels=torch.tensor([0]),
        masks=crowd_masks)
    return gt, crowd


def locations(mask):
    """(x, y) image coordinates of the True cells of a stride-8 or -16
    map."""
    stride = SIZE // mask.shape[-1]
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return sorted(
        zip((xs * stride + stride // 2).tolist(),
            (ys * stride + stride // 2).tolist()))


def test_without_levelness_hand_computed():
    gt, crowd = hand_built_scene()
    assigner = FCOSMaskTargetAssigner(
        NUM_THINGS, strides=STRIDES, regress_ranges=RANGES)
    assert not assigner.with_levelness
    targets = assigner.assign(FEATMAP_SIZES, [gt], [crowd])
    assert isinstance(targets, FCOSMaskTargets)
    assert targets.levelness_targets is None
    assert targets.levelness_ignore is None
    inds0, inds1 = (targets.assigned_gt_inds[0][0],
                    targets.assigned_gt_inds[1][0])
    # level 0 (max distance <= 20): all 6 locations of instance 0 (the
    # largest max is 20, at x = 4 or 20); of instance 1 only the locations
    # with x, y in [44, 52], less (52, 44) in its missing quarter
    assert locations(inds0 == 0) == [(4, 4), (4, 12), (12, 4), (12, 12),
                                      (20, 4), (20, 12)]
    assert locations(inds0 == 1) == [(44, 44), (44, 52), (52, 52)]
    # level 1 (max distance >= 20): instance 0's (8, 8) has max 16 ->
    # background; instance 1 at (40, 40), (40, 56), (56, 56), not (56, 40)
    assert locations(inds1 == 0) == []
    assert locations(inds1 == 1) == [(40, 40), (40, 56), (56, 56)]
    assert torch.equal(targets.fg_masks[0][0], inds0 >= 0)
    labels0 = targets.labels[0][0]
    assert (labels0[inds0 == 0] == 1).all()
    assert (labels0[inds0 == 1] == 0).all()
    assert (labels0[inds0 < 0] == NUM_THINGS).all()
    # regression targets and centerness
    boxes0, ctr0 = targets.bbox_targets[0][0], targets.centerness_targets[0][0]
    # (12, 4) in instance 0: ltrb (12, 4, 12, 12)
    assert boxes0[:, 0, 1].tolist() == [12, 4, 12, 12]
    assert ctr0[0, 1].item() == pytest.approx(math.sqrt(1 * 4 / 12))
    # (44, 44) in instance 1: ltrb (12, 12, 20, 20)
    assert boxes0[:, 5, 5].tolist() == [12, 12, 20, 20]
    assert ctr0[5, 5].item() == pytest.approx(0.6)
    # (40, 40) at level 1: ltrb (8, 8, 24, 24)
    assert targets.bbox_targets[1][0][:, 2, 2].tolist() == [8, 8, 24, 24]
    assert targets.centerness_targets[1][0, 2, 2].item() == pytest.approx(
        1 / 3)
    # background: zero targets
    assert not boxes0[:, inds0 < 0].any() and not ctr0[inds0 < 0].any()
    # crowd: the background locations inside the crowd mask are ignored
    assert locations(targets.ignore_masks[0][0]) == [(4, 52), (4, 60),
                                                     (12, 52), (12, 60)]
    assert locations(targets.ignore_masks[1][0]) == [(8, 56)]


def test_without_levelness_box_mode():
    gt, crowd = hand_built_scene()
    boxes_only = InstanceData(bboxes=gt.bboxes, labels=gt.labels)
    targets = FCOSMaskTargetAssigner(
        NUM_THINGS, strides=STRIDES, regress_ranges=RANGES,
        use_masks=False).assign(FEATMAP_SIZES, [boxes_only],
                                [InstanceData(bboxes=crowd.bboxes)])
    # the missing quarter is foreground with boxes: (52, 44) -> instance 1,
    # ltrb (20, 12, 12, 20)
    inds0 = targets.assigned_gt_inds[0][0]
    assert locations(inds0 == 1) == [(44, 44), (44, 52), (52, 44), (52, 52)]
    assert targets.bbox_targets[0][0][:, 5, 6].tolist() == [20, 12, 12, 20]
    assert locations(targets.assigned_gt_inds[1][0] == 1) == [(40, 40),
                                                              (40, 56),
                                                              (56, 40),
                                                              (56, 56)]


@pytest.mark.parametrize('use_masks', [True, False])
def test_level_targets_do_not_depend_on_levelness(use_masks):
    """RTP's targets are unchanged: the levelness-free assigner gives the
    same level targets, and with levelness it gives RTPTargetAssigner's
    targets field for field."""
    gt, crowd = hand_built_scene()
    if not use_masks:
        gt = InstanceData(bboxes=gt.bboxes, labels=gt.labels)
        crowd = InstanceData(bboxes=crowd.bboxes)
    kwargs = dict(strides=STRIDES, regress_ranges=RANGES,
                  use_masks=use_masks)
    rtp = RTPTargetAssigner(NUM_THINGS, **kwargs).assign(
        FEATMAP_SIZES, (16, 16), [gt, gt], [crowd, None])
    plain = FCOSMaskTargetAssigner(NUM_THINGS, **kwargs).assign(
        FEATMAP_SIZES, [gt, gt], [crowd, None])
    with_levelness = FCOSMaskTargetAssigner(
        NUM_THINGS, with_levelness=True, **kwargs).assign(
            FEATMAP_SIZES, [gt, gt], [crowd, None], levelness_size=(16, 16))
    for field in FCOSMaskTargets._fields:
        expected = getattr(rtp, field)
        if isinstance(expected, list):
            for e, a, b in zip(expected, getattr(plain, field),
                               getattr(with_levelness, field)):
                assert torch.equal(e, a) and torch.equal(e, b), field
        else:
            assert torch.equal(expected, getattr(with_levelness, field))
            assert getattr(plain, field) is None
    assert rtp.levelness_targets.shape == (2, 16, 16)
    assert rtp.levelness_targets.any()


def test_registry_and_errors():
    assigner = TASK_UTILS.build(
        dict(type='FCOSMaskTargetAssigner', num_things=NUM_THINGS))
    assert isinstance(assigner, FCOSMaskTargetAssigner)
    assert isinstance(
        TASK_UTILS.build(dict(type='RTPTargetAssigner', num_things=1)),
        FCOSMaskTargetAssigner)
    gt, _ = hand_built_scene()
    with pytest.raises(ValueError, match='needs levelness_size'):
        FCOSMaskTargetAssigner(
            NUM_THINGS, strides=STRIDES, regress_ranges=RANGES,
            with_levelness=True).assign(FEATMAP_SIZES, [gt])
    with pytest.raises(ValueError, match='needs gt_instances.masks'):
        FCOSMaskTargetAssigner(
            NUM_THINGS, strides=STRIDES, regress_ranges=RANGES).assign(
                FEATMAP_SIZES,
                [InstanceData(bboxes=gt.bboxes, labels=gt.labels)])
