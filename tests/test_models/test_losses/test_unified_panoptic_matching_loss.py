# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import math

import pytest
import torch

from mmpanoptic_plus.models.losses import (UnifiedPanopticMatchingLoss,
                                           match_segments_to_detections)

# 2 thing classes (0, 1), 2 stuff classes (2, 3)
NUM_THINGS, NUM_STUFF = 2, 2


def test_matching_hand_built_case():
    # segments: 0 thing cls 0, 1 thing cls 1, 2 thing cls 0 (no detection),
    # 3 stuff cls 3 (small tight box), 4 stuff cls 2
    seg_boxes = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.],
                              [50., 50., 60., 60.], [0., 40., 5., 45.],
                              [0., 0., 100., 100.]])
    seg_labels = torch.tensor([0, 1, 0, 3, 2])
    seg_is_thing = torch.tensor([True, True, True, False, False])
    det_boxes = torch.tensor([
        [0., 0., 10., 10.],  # 0: cls 1 on segment 0: class mismatch, IoU 0
        [0., 0., 10., 9.],  # 1: cls 0 on segment 0, IoU 0.9: match
        [0., 0., 10., 8.],  # 2: cls 0 on segment 0, IoU 0.8: duplicate
        [20., 20., 30., 30.],  # 3: cls 1 on segment 1, IoU 1: match
        [50., 50., 60., 54.],  # 4: cls 0 on segment 2, IoU 0.4 < t
        [70., 70., 80., 80.],  # 5: cls 0 on nothing: false positive
    ])
    det_labels = torch.tensor([1, 0, 0, 1, 0, 0])
    channels, keep = match_segments_to_detections(
        seg_boxes, seg_labels, seg_is_thing, det_boxes, det_labels,
        NUM_THINGS, NUM_STUFF, iou_thr=0.5)
    # stuff segments go to their class's whole-image box: D + (c - N_th)
    assert channels.tolist() == [1, 3, -1, 6 + 1, 6 + 0]
    # duplicate 2 removed; mismatch 0, below-t 4, false positive 5 kept
    assert keep.tolist() == [True, True, False, True, True, True, True, True]


def test_matching_maximises_total_iou_not_greedy():
    # segment 0 prefers detection 0 (IoU 0.9) over detection 1 (0.6);
    # segment 1 overlaps only detection 0 (0.6; detection 1: 0.3 < t).
    # Greedy (segment 0 takes detection 0) leaves segment 1 unmatched; the
    # permutation of Eq. 5 with the largest total IoU matches both (1.2).
    seg_boxes = torch.tensor([[0., 0., 10., 10.], [0., 3., 10., 10.]])
    det_boxes = torch.tensor([[0., 0., 10., 9.], [0., 0., 10., 6.]])
    channels, keep = match_segments_to_detections(
        seg_boxes, torch.tensor([0, 0]), torch.tensor([True, True]),
        det_boxes, torch.tensor([0, 0]), NUM_THINGS, NUM_STUFF)
    assert channels.tolist() == [1, 0]
    assert keep.all()


def test_matching_without_detections():
    channels, keep = match_segments_to_detections(
        torch.tensor([[0., 0., 4., 4.], [0., 0., 8., 8.]]),
        torch.tensor([0, 2]), torch.tensor([True, False]),
        torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), NUM_THINGS,
        NUM_STUFF)
    assert channels.tolist() == [-1, 0]
    assert keep.tolist() == [True, True]


def test_loss_against_hand_cross_entropy():
    torch.manual_seed(0)
    # channels: 2 detections + 2 stuff; detection 1 removed as a duplicate
    logits = torch.randn(4, 2, 3, requires_grad=True)
    keep = torch.tensor([True, False, True, True])
    # segments: 0 -> channel 0, 1 -> ignore (unmatched), 2 -> channel 3
    segment_channels = torch.tensor([0, -1, 3])
    segment_ids = torch.tensor([[0, 0, 1], [2, -1, 2]])
    loss_fn = UnifiedPanopticMatchingLoss(loss_weight=0.5)
    total, count = loss_fn(logits, keep, segment_ids, segment_channels)
    assert int(count) == 4
    expected = 0.0
    for (i, j), k in (((0, 0), 0), ((0, 1), 0), ((1, 0), 3), ((1, 2), 3)):
        z = [logits[c, i, j].item() for c in (0, 2, 3)]  # kept channels
        log_sum = math.log(sum(math.exp(v) for v in z))
        expected += log_sum - logits[k, i, j].item()
    torch.testing.assert_close(total.item(), 0.5 * expected, rtol=1e-5,
                               atol=1e-6)
    total.backward()
    assert logits.grad[1].abs().sum() == 0  # removed channel: no gradient
    assert logits.grad[:, 0, 2].abs().sum() == 0  # ignored pixel
    assert logits.grad[:, 1, 1].abs().sum() == 0  # no segment
    assert logits.grad[0, 0, 0] != 0


def test_loss_without_labelled_pixels_is_zero_not_nan():
    logits = torch.randn(3, 2, 2, requires_grad=True)
    total, count = UnifiedPanopticMatchingLoss()(
        logits, torch.ones(3, dtype=torch.bool),
        torch.full((2, 2), -1), torch.tensor([0]))
    assert int(count) == 0 and total.item() == 0
    total.backward()
    assert torch.isfinite(logits.grad).all()


def test_logit_scale_is_cross_entropy_of_scaled_p():
    torch.manual_seed(0)
    logits = torch.rand(4, 3, 5) * 2  # bounded like P
    keep = torch.tensor([True, False, True, True])
    ids = torch.tensor([[0, 0, 1, 1, -1], [2, 2, 1, 0, 0], [3, 3, 3, 2, 1]])
    channels = torch.tensor([0, 2, 3, -1])  # segment 3 unmatched: ignored
    plain, count = UnifiedPanopticMatchingLoss()(logits, keep, ids, channels)
    scaled, count_s = UnifiedPanopticMatchingLoss(logit_scale=5.0)(
        logits, keep, ids, channels)
    # naive reference: per labelled cell, -log softmax over kept channels
    ref = {1.0: 0.0, 5.0: 0.0}
    for y in range(3):
        for x in range(5):
            seg = int(ids[y, x])
            if seg < 0 or int(channels[seg]) < 0:
                continue
            for scale in ref:
                z = logits[:, y, x] * scale
                z = z[keep]
                target = int(keep[:int(channels[seg])].sum())
                ref[scale] -= float(z.log_softmax(0)[target])
    assert int(count) == int(count_s) == 11
    assert abs(float(plain) - ref[1.0]) < 1e-4
    assert abs(float(scaled) - ref[5.0]) < 1e-4
    # a larger scale lifts the floor: confident correct P gives a lower loss
    assert float(scaled) != float(plain)
    learnt = UnifiedPanopticMatchingLoss(logit_scale=5.0,
                                         learnable_scale=True)
    loss, _ = learnt(logits, keep, ids, channels)
    assert abs(float(loss) - ref[5.0]) < 1e-4
    loss.backward()
    assert learnt.log_scale.grad is not None
    with pytest.raises(ValueError):
        UnifiedPanopticMatchingLoss(logit_scale=0.0)
