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


def test_mask_loss_hand_case_eq16_18():
    # a 1x4 dense map; pixels 0-1 carry exactly the query box (P_loc = 1),
    # pixels 2-3 a disjoint box (P_loc = 0); target mask = pixels 1-2
    query = torch.tensor([[0., 0., 10., 10.]])
    target_box = torch.tensor([[0., 0., 10., 20.]])  # IoU with query 0.5
    dense = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.],
                          [10., 10., 20., 20.], [10., 10., 20., 20.]]).T
    target_mask = torch.tensor([[0., 1., 1., 0.]])
    probs = torch.tensor([[0.8, 0.6, 0.9, 0.1]])
    # Eq. 17-18 with P_loc alone: E_FP = 1 (pixel 0), E_FN = 1 (pixel 2),
    # N_j = 2, beta = 0.5 (Eq. 16)
    expected = 0.5 * (1 + 1) / 2
    losses = rtp_query_mask_losses(query, target_box, target_mask, dense)
    assert losses.shape == (1, )
    assert float(losses[0]) == pytest.approx(expected, rel=1e-6)
    loss = RTPMaskLoss(loss_weight=2.0)
    # the class probabilities are ignored by default (Eq. 17-18)
    assert float(loss(query, target_box, target_mask, dense,
                      class_probs=probs)) == pytest.approx(
                          2 * expected, rel=1e-6)
    # background pixels (levelness argmax 0, Eq. 14) have P_loc = 0: pixel
    # 0 no longer counts as a false positive
    valid = torch.tensor([False, True, True, True])
    assert float(rtp_query_mask_losses(
        query, target_box, target_mask, dense,
        dense_valid=valid)[0]) == pytest.approx(0.5 * (0 + 1) / 2, rel=1e-6)
    # the declared option: M = P_loc * P_sem = [0.8, 0.6, 0, 0]
    fp, fn = 0.8, (1 - 0.6) + 1
    with_sem = RTPMaskLoss(use_semantic_prob=True)
    assert float(with_sem(query, target_box, target_mask, dense,
                          class_probs=probs)) == pytest.approx(
                              0.5 * (fp + fn) / 2, rel=1e-6)


def test_mask_loss_fractional_masks_bound_the_loss():
    # a 3 px wide mask that no cell centre hits, read as area fractions of
    # 4x4 cells: 3 rows x (1/4 + 2/4) -> N_j = 2.25 (= 36 px / 16)
    fractions = torch.tensor([[0., 0.25, 0.5, 0.], [0., 0.25, 0.5, 0.],
                              [0., 0.25, 0.5, 0.]]).reshape(1, -1)
    ys, xs = torch.meshgrid(torch.arange(3.), torch.arange(4.),
                            indexing='ij')
    centres = torch.stack((4 * xs + 2, 4 * ys + 2), -1).reshape(-1, 2)
    # every pixel predicts a box of half-width h around its centre
    def dense_of(half):
        return torch.cat((centres - half, centres + half), 1).T

    query = torch.tensor([[5., 0., 8., 12.]])  # the mask's tight box
    target = query.clone()
    for half in (0.5, 2.0, 6.0, 40.0):
        dense = dense_of(half)
        # naive Eq. 16-18
        e_fp = e_fn = 0.0
        for p in range(12):
            x1, y1, x2, y2 = dense[:, p].tolist()
            iw = max(0., min(x2, 8.) - max(x1, 5.))
            ih = max(0., min(y2, 12.) - max(y1, 0.))
            union = (x2 - x1) * (y2 - y1) + 36 - iw * ih
            p_loc = iw * ih / union
            e_fp += p_loc * (1 - float(fractions[0, p]))
            e_fn += (1 - p_loc) * float(fractions[0, p])
        expected = 1.0 * (e_fp + e_fn) / 2.25
        got = rtp_query_mask_losses(query, target, fractions, dense)
        assert float(got[0]) == pytest.approx(expected, rel=1e-5)
        # E_FN / N_j <= 1, and here E_FP <= 12 cells: far from ~1e5
        assert float(got[0]) < 12 / 2.25 + 1
    # a target with no pixel on the grid gives 0, not a division by 0
    zero = rtp_query_mask_losses(query, target, torch.zeros(1, 12),
                                 dense_of(2.0))
    assert float(zero[0]) == 0


def test_mask_loss_gradients_and_empty():
    query = torch.tensor([[0., 0., 12., 12.]], requires_grad=True)
    dense = torch.tensor([[1., 1., 11., 11.], [0., 0., 12., 14.]],
                         requires_grad=True)
    probs = torch.tensor([[0.5, 0.7]], requires_grad=True)
    loss = rtp_query_mask_losses(query, query.detach() + 1,
                                 torch.tensor([[1., 0.]]), dense.T)
    loss.sum().backward()
    for tensor in (query, dense):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    # beta_j is detached: with P_loc = 1 at the only mask pixel and 0
    # elsewhere the loss is 0 whatever beta, and so is the query's gradient
    query.grad = None
    exact = torch.tensor([[0., 0., 12., 12.]], requires_grad=True)
    rtp_query_mask_losses(exact, exact.detach() + 3, torch.tensor([[1.]]),
                          exact.detach().T).sum().backward()
    assert exact.grad.abs().sum() == 0
    # the class probabilities get gradient only under the declared option
    rtp_query_mask_losses(query, query.detach(), torch.tensor([[1., 0.]]),
                          dense.T, class_probs=probs).sum().backward()
    assert probs.grad.abs().sum() > 0
    # no queries: zero and finite, still attached
    empty = RTPMaskLoss()(query[:0], query[:0].detach(), probs[:0],
                          dense.T)
    assert float(empty) == 0 and torch.isfinite(empty)
    assert empty.requires_grad
