# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""One hard-pixel cross-entropy for RTP and Panoptic-DeepLab: both counting
modes against naive references (per-pixel loop, sort, mean) with exact
denominators, bit-identity with the two 0.1.0 implementations, the former
names, and the numbers every config builds."""
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmpanoptic_plus.models.losses import (BootstrappedCrossEntropyLoss,
                                           DeepLabHardPixelCELoss,
                                           HardPixelCrossEntropyLoss,
                                           bootstrapped_cross_entropy,
                                           hard_pixel_cross_entropy)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
REPO_ROOT = Path(__file__).resolve().parents[3]


def _ce(logits, label):
    """Naive cross-entropy of one pixel (list of logits)."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def _random_case(seed, batch=2, classes=4, height=5, width=7):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, height, width, generator=gen)
    labels = torch.randint(0, classes, (batch, height, width), generator=gen)
    labels[torch.rand(batch, height, width, generator=gen) < 0.3] = 255
    weights = 1 + 2 * (torch.rand(batch, height, width, generator=gen) < 0.2)
    return logits, labels, weights.float()


def _naive(logits, labels, top_ratio, count, weights=None):
    """Per-pixel loop; RTP: round(r * n_valid) of the valid pixels; DeepLab:
    int(r * N) of all N pixels (ignored ones with loss 0)."""
    batch, _, height, width = logits.shape
    values = []
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                label = int(labels[b, y, x])
                weight = 1. if weights is None else float(weights[b, y, x])
                if label == 255:
                    if count == 'all':
                        values.append(0.)
                    continue
                values.append(weight * _ce(logits[b, :, y, x].tolist(),
                                           label))
    if count == 'valid':
        kept = max(1, int(round(top_ratio * len(values))))
    else:
        kept = max(1, int(top_ratio * len(values)))
    return sum(sorted(values, reverse=True)[:kept]) / kept, kept, len(values)


def _rtp_0_1_0(logits, labels, top_ratio, loss_weight=1.0):
    """``bootstrapped_cross_entropy`` of 0.1.0, verbatim in its numerics."""
    valid = labels != 255
    pixel_loss = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=255)[valid]
    num_kept = max(1, int(round(top_ratio * int(valid.sum()))))
    return loss_weight * pixel_loss.topk(num_kept, sorted=False).values.mean()


def _deeplab_0_1_0(logits, labels, weights, top_k_percent, loss_weight=1.0):
    """``DeepLabHardPixelCELoss.forward`` of 0.1.0, verbatim in its
    numerics."""
    pixel_losses = F.cross_entropy(
        logits, labels, ignore_index=255, reduction='none')
    if weights is not None:
        pixel_losses = pixel_losses * weights
    pixel_losses = pixel_losses.flatten()
    if top_k_percent < 1:
        num_kept = max(int(top_k_percent * pixel_losses.numel()), 1)
        pixel_losses = pixel_losses.topk(num_kept, sorted=False)[0]
    return loss_weight * pixel_losses.mean()


@pytest.mark.parametrize('seed', range(4))
def test_rtp_mode_matches_naive_reference(seed):
    logits, labels, _ = _random_case(seed)
    loss = HardPixelCrossEntropyLoss(top_ratio=0.3, count='valid',
                                     rounding='round', loss_weight=0.4)
    expected, kept, n_valid = _naive(logits, labels, 0.3, 'valid')
    assert kept == round(0.3 * n_valid) and n_valid == int(
        (labels != 255).sum())
    assert float(loss(logits, labels)) == pytest.approx(0.4 * expected,
                                                        rel=1e-5)
    # (B, 1, H, W) labels as the RTP head passes them
    assert torch.equal(loss(logits, labels[:, None]), loss(logits, labels))
    # bit-identical with 0.1.0's bootstrapped cross-entropy
    assert torch.equal(loss(logits, labels),
                       _rtp_0_1_0(logits, labels, 0.3, 0.4))


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('top_ratio', [0.2, 1.0])
def test_deeplab_mode_matches_naive_reference(seed, top_ratio):
    logits, labels, weights = _random_case(seed)
    loss = HardPixelCrossEntropyLoss(top_ratio=top_ratio, count='all',
                                     rounding='floor')
    expected, kept, num_all = _naive(logits, labels, top_ratio, 'all',
                                     weights)
    assert num_all == labels.numel() and kept == int(top_ratio * num_all)
    assert float(loss(logits, labels, weights)) == pytest.approx(
        expected, rel=1e-5)
    # bit-identical with 0.1.0's DeepLabHardPixelCELoss, weights or not
    assert torch.equal(
        loss(logits, labels, weights),
        _deeplab_0_1_0(logits, labels, weights, top_ratio))
    assert torch.equal(
        loss(logits, labels), _deeplab_0_1_0(logits, labels, None, top_ratio))


def test_counting_options_differ_where_they_should():
    # 1x10 map, 4 pixels ignored: valid count 6, all count 10
    logits = torch.tensor([[0., 2., 0., 1., 3., -1., 2., 0., 1., 4.],
                           [1., 0., 0., 0., 0., 0., 0., 2., 0., 0.]])
    logits = logits.view(1, 2, 1, 10)
    labels = torch.tensor([[[0, 1, 1, 255, 0, 1, 255, 255, 0, 255]]])
    valid = [_ce(logits[0, :, 0, i].tolist(), int(labels[0, 0, i]))
             for i in range(10) if int(labels[0, 0, i]) != 255]
    hardest = sorted(valid, reverse=True)
    # valid/round: round(0.25 * 6) = round(1.5) = 2 (banker's rounding)
    got = hard_pixel_cross_entropy(logits, labels, 0.25, 'valid', 'round')
    assert float(got) == pytest.approx(sum(hardest[:2]) / 2, rel=1e-6)
    # valid/floor: int(1.5) = 1
    got = hard_pixel_cross_entropy(logits, labels, 0.25, 'valid', 'floor')
    assert float(got) == pytest.approx(hardest[0], rel=1e-6)
    # all/floor: int(0.25 * 10) = 2 of all pixels (the two hardest are valid)
    got = hard_pixel_cross_entropy(logits, labels, 0.25, 'all', 'floor')
    assert float(got) == pytest.approx(sum(hardest[:2]) / 2, rel=1e-6)
    # top_ratio 1: means over 6 valid vs. 10 pixels
    assert float(hard_pixel_cross_entropy(
        logits, labels, 1.0, 'valid')) == pytest.approx(
            sum(valid) / 6, rel=1e-6)
    assert float(hard_pixel_cross_entropy(
        logits, labels, 1.0, 'all')) == pytest.approx(
            sum(valid) / 10, rel=1e-6)


def test_weights_in_valid_mode_apply_before_selection():
    logits = torch.tensor([[0., 2., 0.], [0., 0., 1.]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, 1]]])
    weights = torch.tensor([[[1., 1., 10.]]])
    pixel = [_ce([0., 0.], 0), _ce([2., 0.], 1), 10 * _ce([0., 1.], 1)]
    got = hard_pixel_cross_entropy(logits, labels, 0.34, 'valid', 'round',
                                   weights)
    assert float(got) == pytest.approx(max(pixel), rel=1e-6)
    assert max(pixel) == pixel[2]  # the weighted pixel wins


def test_nothing_valid_and_bad_inputs():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    ignored = torch.full((1, 2, 2), 255)
    for count in ('valid', 'all'):
        loss = hard_pixel_cross_entropy(logits, ignored, 0.3, count)
        assert float(loss.detach()) == 0 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match='semantic labels'):
        hard_pixel_cross_entropy(logits, torch.full((1, 2, 2), 3), 0.3, 'all')
    with pytest.raises(ValueError, match='do not match'):
        hard_pixel_cross_entropy(logits, torch.zeros(1, 3, 2,
                                                     dtype=torch.long), 0.3)
    with pytest.raises(ValueError, match='weights'):
        hard_pixel_cross_entropy(logits, ignored, 0.3, 'all',
                                 weights=torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match='top_ratio'):
        HardPixelCrossEntropyLoss(top_ratio=1.5)
    with pytest.raises(ValueError, match='count'):
        HardPixelCrossEntropyLoss(count='image')
    with pytest.raises(ValueError, match='rounding'):
        HardPixelCrossEntropyLoss(rounding='ceil')


def test_former_names_are_the_same_loss():
    logits, labels, weights = _random_case(7)
    with pytest.warns(DeprecationWarning, match='HardPixelCrossEntropyLoss'):
        rtp = MODELS.build(
            dict(type='BootstrappedCrossEntropyLoss', top_ratio=0.3,
                 loss_weight=0.4))
    with pytest.warns(DeprecationWarning, match='HardPixelCrossEntropyLoss'):
        deeplab = MODELS.build(
            dict(type='DeepLabHardPixelCELoss', top_k_percent=0.2))
    assert isinstance(rtp, BootstrappedCrossEntropyLoss)
    assert isinstance(deeplab, DeepLabHardPixelCELoss)
    assert (rtp.count, rtp.rounding, rtp.loss_name) == ('valid', 'round',
                                                         'loss_sem')
    assert (deeplab.count, deeplab.rounding) == ('all', 'floor')
    assert deeplab.top_k_percent == 0.2
    new_rtp = HardPixelCrossEntropyLoss(0.3, 'valid', 'round', loss_weight=.4)
    new_deeplab = HardPixelCrossEntropyLoss(0.2, 'all', 'floor')
    assert torch.equal(rtp(logits, labels), new_rtp(logits, labels))
    assert torch.equal(
        bootstrapped_cross_entropy(logits, labels, 0.3),
        hard_pixel_cross_entropy(logits, labels, 0.3, 'valid', 'round'))
    assert torch.equal(
        deeplab(logits, labels, weights),
        new_deeplab(logits, labels, weights))


def _loss_cfg(path, *keys):
    cfg = Config.fromfile(str(REPO_ROOT / path)).model
    for key in keys:
        cfg = cfg[key]
    return cfg


# (config, keys to the loss, top_ratio, count, rounding, loss_weight)
CONFIG_LOSSES = [
    ('configs/panoptic_deeplab/pdl_r18_synthetic.py',
     ('semantic_head', 'loss_sem'), 0.2, 'all', 'floor', 1.0),
    ('configs/panoptic_deeplab/pdl_r50_city.py',
     ('semantic_head', 'loss_sem'), 0.2, 'all', 'floor', 1.0),
    ('configs/panoptic_deeplab/pdl_r50_coco.py',
     ('semantic_head', 'loss_sem'), 1.0, 'all', 'floor', 1.0),
    ('configs/pisr/pdl_r18_synthetic.py',
     ('semantic_head', 'loss_sem'), 0.2, 'all', 'floor', 1.0),
    ('configs/pisr/pdl_r50_city.py',
     ('semantic_head', 'loss_sem'), 0.2, 'all', 'floor', 1.0),
    ('configs/pisr/pdl_r50_coco.py',
     ('semantic_head', 'loss_sem'), 1.0, 'all', 'floor', 1.0),
] + [(f'configs/realtime_panoptic/{name}.py', ('bbox_head', 'loss_semantic'),
      0.3, 'valid', 'round', weight)
     for name, weight in (('rtp_r18_synthetic', 1.0),
                          ('rtp_r18_fpn_48k_cityscapes', 1.0),
                          ('rtp_r34_fpn_48k_cityscapes', 1.0),
                          ('rtp_r50_fpn_48k_cityscapes', 1.0),
                          ('rtp_r50_fpn_48k_cityscapes_weak', 1.0),
                          ('rtp_r50_fpn_head128_48k_cityscapes', 1.0),
                          ('rtp_r50_fpn_180k_coco', 0.4))]


@pytest.mark.parametrize('path,keys,top_ratio,count,rounding,weight',
                         CONFIG_LOSSES)
def test_configs_keep_their_numbers(path, keys, top_ratio, count, rounding,
                                    weight):
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        loss = MODELS.build(_loss_cfg(path, *keys))
    assert type(loss) is HardPixelCrossEntropyLoss
    assert (loss.top_ratio, loss.count, loss.rounding, loss.ignore_index,
            loss.loss_weight, loss.loss_name) == (top_ratio, count, rounding,
                                                  255, weight, 'loss_sem')
