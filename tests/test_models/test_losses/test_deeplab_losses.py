# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic-DeepLab losses on hand-computed cases."""
import math

import pytest
import torch

from mmpanoptic_plus.models.losses import (DeepLabHardPixelCELoss,
                                           DeepLabWeightedPixelLoss)


def _ce(logits, label):
    """Naive cross-entropy of one pixel (list of logits)."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_hard_pixel_ce_weights_before_topk():
    # 1x2x5 image, 2 classes; per-pixel CE by hand
    logits = torch.tensor([[[0., 2., 0., 1., 3.], [0., 0., 1., 0., 0.]]
                           ]).view(1, 2, 1, 5)
    labels = torch.tensor([[[0, 1, 1, 255, 0]]])
    weights = torch.tensor([[[1., 1., 3., 1., 1.]]])
    pixel = [
        _ce([0., 0.], 0),  # log 2 = 0.693
        _ce([2., 0.], 1),  # 2.127
        3 * _ce([0., 1.], 1),  # 3 * 0.313 = 0.940 (weight 3 before top-k)
        0.,  # ignored
        _ce([3., 0.], 0),  # 0.049
    ]
    # top 40% of N = 5 pixels (ignored one counted) = 2 hardest
    loss = DeepLabHardPixelCELoss(top_k_percent=0.4)(logits, labels, weights)
    expected = sum(sorted(pixel, reverse=True)[:2]) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # weighting AFTER selection would pick 2.127 and 0.693 instead
    wrong = (pixel[1] + pixel[0]) / 2
    assert loss.item() != pytest.approx(wrong, rel=1e-3)
    # top 100%: weighted mean over all N pixels (ignored count as 0)
    full = DeepLabHardPixelCELoss(top_k_percent=1.0, loss_weight=2.0)(
        logits, labels, weights)
    assert full.item() == pytest.approx(2 * sum(pixel) / 5, rel=1e-5)


def test_hard_pixel_ce_pools_the_batch_and_default_20_percent():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    labels = torch.randint(0, 3, (2, 4, 5))
    labels[0, 0, :3] = 255
    loss = DeepLabHardPixelCELoss()(logits, labels)
    # naive: per-pixel loop, top int(0.2 * 40) = 8 over both images
    values = []
    for b in range(2):
        for y in range(4):
            for x in range(5):
                label = int(labels[b, y, x])
                values.append(0. if label == 255 else _ce(
                    logits[b, :, y, x].tolist(), label))
    expected = sum(sorted(values, reverse=True)[:8]) / 8
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_hard_pixel_ce_all_ignored_is_zero_not_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    labels = torch.full((1, 2, 2), 255)
    loss = DeepLabHardPixelCELoss(top_k_percent=0.2)(logits, labels)
    assert loss.item() == 0
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_hard_pixel_ce_bad_arguments():
    with pytest.raises(ValueError, match='top_k_percent'):
        DeepLabHardPixelCELoss(top_k_percent=0)
    with pytest.raises(ValueError, match='do not match'):
        DeepLabHardPixelCELoss()(torch.zeros(1, 2, 3, 3),
                                 torch.zeros(1, 3, 4, dtype=torch.long))


def test_center_mse_normalized_by_weight_sum():
    pred = torch.tensor([[[[0.5, 1.0], [0.0, 0.2]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.5, 0.0]]]])
    weights = torch.tensor([[[1., 1.], [0., 1.]]])  # (B, H, W)
    loss = DeepLabWeightedPixelLoss('mse', loss_weight=200.)(pred, target,
                                                             weights)
    # (0.25 + 0 + 0.04) / 3 pixels of weight 1
    assert loss.item() == pytest.approx(200 * 0.29 / 3, rel=1e-5)


def test_offset_l1_sums_channels_over_weight_sum():
    pred = torch.zeros(1, 2, 1, 3)
    target = torch.tensor([[[[1., 2., 3.]], [[-1., 4., 0.5]]]])
    weights = torch.tensor([[[[1., 0., 2.]]]])  # (B, 1, H, W)
    loss = DeepLabWeightedPixelLoss('l1', loss_weight=0.01)(pred, target,
                                                            weights)
    # (|1| + |-1|) * 1 + (|3| + |0.5|) * 2 = 9, over weight sum 3
    assert loss.item() == pytest.approx(0.01 * 9 / 3, rel=1e-5)


def test_weighted_losses_without_things_are_zero_with_gradient():
    pred = torch.randn(2, 2, 4, 4, requires_grad=True)
    target = torch.randn(2, 2, 4, 4)
    for criterion in ('mse', 'l1'):
        loss = DeepLabWeightedPixelLoss(criterion)(pred, target,
                                                   torch.zeros(2, 1, 4, 4))
        assert loss.item() == 0 and not torch.isnan(loss)
        loss.backward()
        assert pred.grad is not None and torch.equal(
            pred.grad, torch.zeros_like(pred))
        pred.grad = None


def test_weighted_loss_bad_arguments():
    with pytest.raises(ValueError, match='criterion'):
        DeepLabWeightedPixelLoss('l2')
    with pytest.raises(ValueError, match='weights'):
        DeepLabWeightedPixelLoss()(torch.zeros(2, 1, 3, 3),
                                   torch.zeros(2, 1, 3, 3),
                                   torch.zeros(1, 1, 3, 3))
