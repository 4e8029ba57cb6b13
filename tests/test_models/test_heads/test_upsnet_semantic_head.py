# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import DeformConv2dPack
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

from mmpanoptic_plus.models.heads import UPSNetSemanticHead
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()


def _levels(batch=2, channels=8, size=(16, 24)):
    torch.manual_seed(0)
    return tuple(
        torch.randn(batch, channels, size[0] // 2**i, size[1] // 2**i)
        for i in range(4))


def test_layout_and_shapes():
    head = MODELS.build(
        dict(
            type='UPSNetSemanticHead',
            num_things_classes=3,
            num_stuff_classes=2,
            in_channels=8,
            feat_channels=4,
            norm_cfg=dict(type='GN', num_groups=2)))
    # UPSNet's deformable convs by default, GroupNorm after each (Sec. 3.2).
    assert len(head.subnet) == 2
    for conv in head.subnet:
        assert isinstance(conv.conv, DeformConv2dPack)
        assert isinstance(conv.norm, torch.nn.GroupNorm)
    # mmcv's CPU deformable conv needs levels of at least 3x3.
    out = head(_levels(size=(32, 48)))
    assert out['seg_preds'].shape == (2, 5, 32, 48)
    assert out['feats'].shape == (2, 16, 32, 48)
    assert head.num_classes == 5


def test_forward_equals_per_level_reference():
    head = UPSNetSemanticHead(
        3, 2, in_channels=8, feat_channels=4, conv_cfg=None,
        norm_cfg=dict(type='GN', num_groups=2), out_channels=6)
    x = _levels()
    out = head(x)
    # Naive reference: the one shared subnetwork per level, bilinear
    # upsampling to P2's size, concatenation, 1x1 conv.
    feats = []
    for i, level in enumerate(x):
        y = level
        for conv in head.subnet:
            y = F.relu(conv.norm(conv.conv(y)))
        if i:
            y = F.interpolate(
                y, size=(16, 24), mode='bilinear', align_corners=False)
        feats.append(y)
    ref = head.conv_logits(torch.cat(feats, 1))
    assert out['seg_preds'].shape == (2, 6, 16, 24)
    torch.testing.assert_close(out['seg_preds'], ref)


def test_start_level_and_level_count():
    head = UPSNetSemanticHead(
        1, 1, in_channels=8, feat_channels=4, conv_cfg=None,
        norm_cfg=None, start_level=1, end_level=3)
    out = head(_levels())
    assert out['seg_preds'].shape == (2, 2, 8, 12)
    assert out['feats'].shape == (2, 8, 8, 12)
    with pytest.raises(ValueError):
        UPSNetSemanticHead(1, 1, start_level=2, end_level=2)
    with pytest.raises(ValueError):
        head(_levels()[:2])


def test_loss_full_label_set_against_hand_cross_entropy():
    head = UPSNetSemanticHead(
        2, 1, in_channels=8, feat_channels=4, conv_cfg=None,
        norm_cfg=None)
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    labels = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255],
                           [2, 2, 255, 255]])
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(sem_seg=labels[None])
    # A 4x4 label map of 2x2 blocks read at factor 1/2 (nearest).
    head.seg_rescale_factor = 1 / 2
    loss = head.loss_by_feat(logits, [sample])['loss_seg']
    log_p = logits[0].log_softmax(0)
    # labels at 2x2: [[0, 1], [2, ignore]] -- thing labels stay (no void).
    ref = -(log_p[0, 0, 0] + log_p[1, 0, 1] + log_p[2, 1, 0]) / 3
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert logits.grad[:, :, 1, 1].abs().sum() == 0
    assert logits.grad[:, :, 0, 0].abs().sum() > 0


def test_loss_end_to_end_reaches_subnet():
    head = UPSNetSemanticHead(
        2, 1, in_channels=8, feat_channels=4, conv_cfg=None,
        norm_cfg=dict(type='GN', num_groups=2))
    x = _levels(batch=1)
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(
        sem_seg=torch.randint(0, 3, (1, 64, 96)))
    loss = head.loss(x, [sample])['loss_seg']
    assert torch.isfinite(loss)
    loss.backward()
    assert head.subnet[0].conv.weight.grad.abs().sum() > 0
    meta = dict(batch_input_shape=(64, 96), img_shape=(60, 90),
                ori_shape=(30, 45))
    pred = head.predict(x, [meta], rescale=True)
    assert pred[0].shape == (3, 30, 45)
