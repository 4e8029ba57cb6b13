# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTP losses on hand-computed cases: bootstrapped semantic cross-entropy,
IoU box loss, levelness cross-entropy with ignore, explicit mask loss."""
import math

import numpy as np
import pytest
import torch

from mmpanoptic_plus.models.losses import (BootstrappedCrossEntropyLoss,
                                           RTPMaskLoss,
                                           bootstrapped_cross_entropy,
                                           rtp_query_mask_losses)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()


def test_bootstrapped_ce_top30_on_2x5_map():
    # two classes; logit of class 1 is 0 everywhere, of class 0 is a_i:
    # pixel CE for label 0 is log(1 + exp(-a_i)); for label 1, log(1 +
    # exp(a_i))
    a = torch.tensor([[0., 1., 2., -1., 3.], [-2., 0.5, 4., 1., -3.]])
    logits = torch.stack((a, torch.zeros_like(a)))[None]  # (1, 2, 2, 5)
    labels = torch.tensor([[[0, 0, 1, 0, 255], [0, 1, 0, 0, 1]]])
    per_pixel = []
    for i in range(2):
        for j in range(5):
            lab = int(labels[0, i, j])
            if lab == 255:
                continue
            x = float(a[i, j])
            per_pixel.append(math.log1p(math.exp(-x)) if lab ==
                             0 else math.log1p(math.exp(x)))
    # 9 valid pixels, 30 % -> round(2.7) = 3 worst ones
    expected = float(np.mean(sorted(per_pixel)[-3:]))
    # the three worst by hand: label 1 where a=2 and label 0 where a=-2
    # (log(1 + e^2) = 2.1269 each), label 0 where a=-1 (log(1 + e) = 1.3133)
    assert expected == pytest.approx(
        (2 * math.log1p(math.exp(2)) + math.log1p(math.exp(1))) / 3)
    got = bootstrapped_cross_entropy(logits, labels, 0.3)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    loss = BootstrappedCrossEntropyLoss(top_ratio=0.3, loss_weight=0.4)
    assert float(loss(logits, labels[:, None])) == pytest.approx(
        0.4 * expected, rel=1e-6)
    # 10 valid pixels: exactly 3 kept (not ceil(3.0000000000000004) = 4)
    labels_all = labels.clone()
    labels_all[0, 0, 4] = 1
    values = torch.nn.functional.cross_entropy(
        logits, labels_all, reduction='none').flatten()
    assert float(bootstrapped_cross_entropy(
        logits, labels_all, 0.3)) == pytest.approx(
            float(values.sort().values[-3:].mean()), rel=1e-6)


def test_bootstrapped_ce_all_ignored_and_bad_labels():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = bootstrapped_cross_entropy(logits,
                                      torch.full((1, 2, 2), 255), 0.3)
    assert float(loss) == 0 and torch.isfinite(loss)
    loss.backward()
    with pytest.raises(ValueError, match='semantic labels'):
        bootstrapped_cross_entropy(logits, torch.full((1, 2, 2), 7), 0.3)
    with pytest.raises(ValueError, match='top_ratio'):
        BootstrappedCrossEntropyLoss(top_ratio=0)


def test_iou_loss_two_boxes():
    # the head's default box loss (mmdet IoULoss, -log IoU), mean over fg
    loss_bbox = MODELS.build(dict(type='IoULoss', loss_weight=1.0))
    pred = torch.tensor([[0., 0., 10., 10.], [2., 2., 6., 6.]])
    target = torch.tensor([[5., 0., 15., 10.], [2., 2., 6., 6.]])
    # IoU 50 / 150 = 1/3 and 1
    expected = (-math.log(1 / 3) + 0.0) / 2
    assert float(loss_bbox(pred, target, avg_factor=2)) == pytest.approx(
        expected, rel=1e-4)


def test_levelness_ce_with_ignore():
    from mmpanoptic_plus.models.heads import RTPHead
    import inspect
    cfg = inspect.signature(RTPHead).parameters['loss_levelness'].default
    loss_levelness = MODELS.build(cfg)
    # 3 channels (background + 2 levels), a 1x3 map, last pixel ignored
    logits = torch.tensor([[[[2.0, 0.0, 5.0]], [[0.0, 1.0, 0.0]],
                            [[0.0, 0.0, 0.0]]]])
    targets = torch.tensor([[[0, 2, 255]]])
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    ce1 = -math.log(1 / (1 + math.e + 1))
    assert float(loss_levelness(logits, targets)) == pytest.approx(
        (ce0 + ce1) / 2, rel=1e-5)


def test_mask_loss_hand_case():
    # a 1x4 dense map; pixels 0-1 carry exactly the query box (P_loc = 1),
    # pixels 2-3 a disjoint box (P_loc = 0); target mask = pixels 1-2
    query = torch.tensor([[0., 0., 10., 10.]])
    target_box = torch.tensor([[0., 0., 10., 20.]])  # IoU with query 0.5
    dense = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.],
                          [10., 10., 20., 20.], [10., 10., 20., 20.]]).T
    target_mask = torch.tensor([[0., 1., 1., 0.]])
    probs = torch.tensor([[0.8, 0.6, 0.9, 0.1]])
    # M = P_loc * P_sem = [0.8, 0.6, 0, 0]
    fp = 0.8  # pixel 0
    fn = (1 - 0.6) + (1 - 0.0)  # pixels 1, 2
    expected = 0.5 * (fp + fn) / 2
    losses = rtp_query_mask_losses(query, target_box, target_mask, dense,
                                   probs)
    assert losses.shape == (1, )
    assert float(losses[0]) == pytest.approx(expected, rel=1e-5)
    loss = RTPMaskLoss(loss_weight=2.0)
    assert float(loss(query, target_box, target_mask, dense,
                      probs)) == pytest.approx(2 * expected, rel=1e-5)


def test_mask_loss_gradients_and_empty():
    query = torch.tensor([[0., 0., 12., 12.]], requires_grad=True)
    dense = torch.tensor([[1., 1., 11., 11.], [0., 0., 12., 14.]],
                         requires_grad=True)
    probs = torch.tensor([[0.5, 0.7]], requires_grad=True)
    loss = rtp_query_mask_losses(query, query.detach(),
                                 torch.tensor([[1., 0.]]), dense.T, probs)
    loss.sum().backward()
    for tensor in (query, dense, probs):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    # no queries: zero and finite, still attached
    empty = RTPMaskLoss()(query[:0], query[:0].detach(), probs[:0],
                          dense.T, probs[:0])
    assert float(empty) == 0 and torch.isfinite(empty)
    # an empty target mask does not divide by zero
    finite = rtp_query_mask_losses(query, query.detach(),
                                   torch.zeros(1, 2), dense.T, probs)
    assert torch.isfinite(finite).all()
