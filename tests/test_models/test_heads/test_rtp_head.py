# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTPHead: output shapes, box outputs in pixels, the fast global heads
against a 1x1 conv over the upsampled concatenation, the paper's 3x3 variant,
losses (finite without things, gradient to every parameter)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.heads import RTPHead
from mmpanoptic_plus.models.utils import resample_to_grid
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

STRIDES = (8, 16, 32, 64, 128)


def tiny_head(**kwargs):
    cfg = dict(
        num_things=3,
        num_stuff=2,
        in_channels=8,
        feat_channels=16,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    cfg.update(kwargs)
    head = RTPHead(**cfg)
    head.init_weights()
    return head


def fpn_feats(height, width, batch=2, channels=8, seed=0):
    """FPN-like levels of a padded (height, width) input (ceil sizes, as
    mmdet's FPN with stride-2 extra convs gives)."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, channels, -(-height // s), -(-width // s),
                    generator=gen) for s in STRIDES)


def test_output_shapes_incl_small_padded_image():
    head = tiny_head()
    # a 64x48 and a 50x50 image padded to a multiple of 32 -> 64x64
    cls, bbox, ctr, levelness, semantic = head(fpn_feats(64, 64))
    sizes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    assert [tuple(c.shape) for c in cls] == [(2, 3) + s for s in sizes]
    assert [tuple(b.shape) for b in bbox] == [(2, 4) + s for s in sizes]
    assert [tuple(c.shape) for c in ctr] == [(2, 1) + s for s in sizes]
    assert levelness.shape == (2, 6, 16, 16)
    assert semantic.shape == (2, 5, 16, 16)
    assert all((b >= 0).all() for b in bbox)


def test_bbox_outputs_are_pixels():
    head = tiny_head()
    torch.nn.init.zeros_(head.conv_reg.weight)
    torch.nn.init.constant_(head.conv_reg.bias, 1.5)
    head.scales[2].scale.data.fill_(2.0)
    _, bbox, _, _, _ = head(fpn_feats(128, 128))
    for level, (pred, stride) in enumerate(zip(bbox, STRIDES)):
        scale = 2.0 if level == 2 else 1.0
        torch.testing.assert_close(pred, torch.full_like(
            pred, 1.5 * scale * stride))
    head = tiny_head(norm_on_bbox=False)
    torch.nn.init.zeros_(head.conv_reg.weight)
    torch.nn.init.constant_(head.conv_reg.bias, 1.0)
    _, bbox, _, _, _ = head(fpn_feats(128, 128))
    torch.testing.assert_close(bbox[0], torch.full_like(bbox[0], np.e))


@pytest.mark.parametrize('size', [(128, 128), (96, 160)])
def test_per_level_1x1_equals_1x1_conv_on_upsampled_concat(size):
    head = tiny_head()
    for conv in head.conv_semantic:
        torch.nn.init.normal_(conv.weight)
        torch.nn.init.normal_(conv.bias)
    feats = fpn_feats(*size, channels=8)
    # tower features as the head computes them
    _, _, _, sem_feats, loc_feats = zip(*[
        head.forward_single(x, scale, stride)
        for x, scale, stride in zip(feats, head.scales, head.strides)
    ])
    out_size = (size[0] // 4, size[1] // 4)
    if size == (128, 128):  # every level divides: plain F.interpolate
        upsampled = [
            F.interpolate(f, size=out_size, mode='bilinear',
                          align_corners=False) for f in sem_feats
        ]
    else:  # P6 / P7 rounded up: aligned resampling
        upsampled = [
            resample_to_grid(f, s, out_size, 4)
            for f, s in zip(sem_feats, STRIDES)
        ]
    weight = torch.cat([c.weight for c in head.conv_semantic], dim=1)
    bias = torch.stack([c.bias for c in head.conv_semantic]).sum(0)
    expected = F.conv2d(torch.cat(upsampled, 1), weight, bias)
    _, _, _, _, semantic = head(feats)
    torch.testing.assert_close(semantic, expected, rtol=1e-4, atol=1e-4)


def test_concat_3x3_variant():
    head = tiny_head(global_head='concat_3x3')
    assert head.conv_levelness.weight.shape == (6, 5 * 16, 3, 3)
    feats = fpn_feats(128, 128)
    _, _, _, _, loc_feats = zip(*[
        head.forward_single(x, scale, stride)
        for x, scale, stride in zip(feats, head.scales, head.strides)
    ])
    cat = torch.cat([
        F.interpolate(f, size=(32, 32), mode='bilinear', align_corners=False)
        for f in loc_feats
    ], 1)
    _, _, _, levelness, _ = head(feats)
    torch.testing.assert_close(levelness, head.conv_levelness(cat))
    with pytest.raises(ValueError, match='global_head'):
        tiny_head(global_head='3x3')


def gt_instances(height, width, boxes, labels):
    masks = np.zeros((len(boxes), height, width), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, y1:y2, x1:x2] = 1
    return InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, height, width))


def sem_map(height, width, instances, stuff=3):
    sem = torch.full((1, height, width), stuff, dtype=torch.long)
    for (x1, y1, x2, y2), label in zip(instances.bboxes.long().tolist(),
                                        instances.labels.tolist()):
        sem[0, y1:y2, x1:x2] = label
    return sem


def test_losses_values_gradients_and_zero_things():
    torch.manual_seed(0)
    # size ranges and instances chosen so that every level gets foreground
    # on 128x128 inputs (the scale of a level without foreground gets no
    # gradient): [0, 0, 12, 12] -> P3 (m = 8 at (4, 4)), [16, 16, 40, 40]
    # -> P4 (m = 16 at (24, 24)), [56, 56, 104, 104] -> P5 (m = 24 at
    # (80, 80)), [0, 0, 72, 72] -> P6 (m = 40 at (32, 32)), [10, 10, 120,
    # 120] -> P7 (m = 56 at (64, 64))
    head = tiny_head(regress_ranges=((-1, 8), (8, 16), (16, 32), (32, 48),
                                     (48, 1e8)))
    # boxes of about a stride at init (else the query boxes are empty and
    # the IoU-weighted mask loss is exactly 0), and class probabilities of
    # 0.5 (above score_thr: the mask loss's queries are the inference's
    # B_query)
    torch.nn.init.constant_(head.conv_reg.bias, 1.0)
    torch.nn.init.constant_(head.conv_cls.bias, 0.0)
    feats = fpn_feats(128, 128, batch=3)
    feats = tuple(f.requires_grad_() for f in feats)
    gt = [
        gt_instances(128, 128, [[0, 0, 12, 12], [16, 16, 40, 40],
                                [56, 56, 104, 104]], [0, 2, 1]),
        gt_instances(128, 128, [[0, 0, 72, 72]], [1]),
        gt_instances(128, 128, [[10, 10, 120, 120]], [2]),
    ]
    crowd = [
        InstanceData(bboxes=torch.zeros(0, 4)),
        gt_instances(128, 128, [[100, 0, 128, 20]], [0]), None
    ]
    sem = torch.stack([sem_map(128, 128, g) for g in gt])
    sem[:, :, 124:] = 255
    outs = head(feats)
    targets = head.assigner.assign([tuple(c.shape[-2:]) for c in outs[0]],
                                   tuple(outs[3].shape[-2:]), gt, crowd)
    assert all(int(fg.sum()) > 0 for fg in targets.fg_masks)
    losses = head.loss_by_feat(*outs, gt, [{}] * 3, sem, crowd)
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_levelness',
        'loss_sem', 'loss_mask'
    }
    for name, value in losses.items():
        assert torch.isfinite(value) and value > 0, name
    # the semantic loss is the bootstrapped CE of the upsampled logits
    from mmpanoptic_plus.models.losses import bootstrapped_cross_entropy
    up = F.interpolate(outs[4], size=(128, 128), mode='bilinear',
                       align_corners=False)
    assert float(losses['loss_sem']) == pytest.approx(
        float(bootstrapped_cross_entropy(up, sem[:, 0], 0.3)), rel=1e-6)
    sum(losses.values()).backward()
    no_grad = [
        name for name, p in head.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all()
        or p.grad.abs().sum() == 0
    ]
    assert no_grad == []
    assert all(f.grad is not None for f in feats)

    # no things in the batch: all finite, box/mask losses exactly 0
    head.zero_grad()
    empty = [gt_instances(64, 64, [], []) for _ in range(2)]
    outs = head(fpn_feats(64, 64, seed=1))
    losses = head.loss_by_feat(*outs, empty, [{}] * 2,
                               torch.full((2, 1, 64, 64), 4), None)
    for name, value in losses.items():
        assert torch.isfinite(value), name
    for name in ('loss_bbox', 'loss_centerness', 'loss_mask'):
        assert float(losses[name]) == 0
    sum(losses.values()).backward()


def test_weak_mode_needs_no_masks():
    head = tiny_head(
        assigner=dict(type='RTPTargetAssigner', use_masks=False),
        loss_mask=None)
    gt = [InstanceData(bboxes=torch.tensor([[4., 4., 30., 28.]]),
                       labels=torch.tensor([1]))]
    outs = head(fpn_feats(64, 64, batch=1))
    losses = head.loss_by_feat(*outs, gt, [{}],
                               torch.full((1, 1, 64, 64), 3), None)
    assert 'loss_mask' not in losses
    assert all(torch.isfinite(v) for v in losses.values())
    # the mask loss without masks is explained
    head = tiny_head()
    with pytest.raises(ValueError, match='masks'):
        head.loss_by_feat(*head(fpn_feats(64, 64, batch=1)), gt, [{}],
                          torch.full((1, 1, 64, 64), 3), None)


def test_assigner_needs_levelness_and_predict_is_the_detectors():
    # the FCOS-style mask assigner with levelness works as RTP's assigner
    head = tiny_head(
        assigner=dict(type='FCOSMaskTargetAssigner', with_levelness=True))
    assert head.assigner.with_levelness
    assert head.assigner.levelness_stride == 4
    with pytest.raises(ValueError, match='levelness'):
        tiny_head(assigner=dict(type='FCOSMaskTargetAssigner'))
    # post-processing is RealTimePanoptic.predict's, not the head's
    with pytest.raises(NotImplementedError, match='rtp_panoptic_predict'):
        head.predict(fpn_feats(64, 64, batch=1), [])
