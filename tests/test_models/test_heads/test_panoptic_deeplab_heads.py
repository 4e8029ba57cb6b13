# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic-DeepLab decoder and heads: layout, shapes/strides, losses."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData
from mmseg.models.decode_heads.aspp_head import ASPPModule

from mmpanoptic_plus.models.heads import (PanopticDeepLabDecoder,
                                          PanopticDeepLabInstanceHead,
                                          PanopticDeepLabSemanticHead)
from mmpanoptic_plus.models.heads.panoptic_deeplab_utils import (
    crop_and_resize, resize_center_and_offsets)
from mmpanoptic_plus.registry import MODELS

IN_CHANNELS = (8, 12, 16, 20)


def _feats(batch=2, height=64, width=96):
    """Fake output-stride-16 backbone features (strides 4, 8, 16, 16)."""
    strides = (4, 8, 16, 16)
    return tuple(
        torch.randn(batch, c, height // s, width // s)
        for c, s in zip(IN_CHANNELS, strides))


def _decoder_cfg(**kwargs):
    cfg = dict(
        type='PanopticDeepLabDecoder',
        in_channels=IN_CHANNELS,
        project_channels=(6, 4),
        aspp_channels=10,
        decoder_channels=8)
    cfg.update(kwargs)
    return cfg


def test_decoder_layout_and_output_stride():
    decoder = MODELS.build(_decoder_cfg())
    assert isinstance(decoder, PanopticDeepLabDecoder)
    assert type(decoder.aspp) is ASPPModule
    # 1x1 branch + dilations 6, 12, 18 (3x3)
    assert [m.conv.dilation[0] for m in decoder.aspp] == [1, 6, 12, 18]
    assert [m.conv.kernel_size[0] for m in decoder.aspp] == [1, 3, 3, 3]
    assert decoder.aspp_project.conv.in_channels == 5 * 10
    # stride 8 fusion: 6 projected + 10 ASPP; stride 4: 4 + 8 decoder
    assert [p.conv.in_channels for p in decoder.projections] == [12, 8]
    for fusion, in_ch in zip(decoder.fusions, (16, 12)):
        assert isinstance(fusion, DepthwiseSeparableConvModule)
        assert fusion.depthwise_conv.conv.kernel_size == (5, 5)
        assert fusion.depthwise_conv.conv.in_channels == in_ch
        assert fusion.pointwise_conv.conv.out_channels == 8
    decoder.eval()
    out = decoder(_feats())
    assert out.shape == (2, 8, 16, 24)  # stride 4 of 64x96
    separable = MODELS.build(_decoder_cfg(aspp_depthwise_separable=True))
    assert type(separable.aspp).__name__ == 'DepthwiseSeparableASPPModule'
    with pytest.raises(ValueError, match='project_channels'):
        MODELS.build(_decoder_cfg(project_channels=(6, )))
    with pytest.raises(ValueError, match='backbone features'):
        decoder(_feats()[:3])


def test_depthwise_separable_aspp_branches():
    """``aspp_depthwise_separable``: the 1x1 branch stays a plain conv, each
    atrous 3x3 branch is a depthwise conv (groups = input channels, the
    dilation) + BN + ReLU then a pointwise 1x1 conv + BN + ReLU, as
    detectron2's ``ASPP(use_depthwise_separable_conv=True)``."""
    decoder = MODELS.build(_decoder_cfg(aspp_depthwise_separable=True))
    in_channels = decoder.in_channels[decoder.aspp_in_index]
    plain, *atrous = decoder.aspp
    assert isinstance(plain, ConvModule)
    assert plain.conv.kernel_size == (1, 1) and plain.conv.groups == 1
    assert [m.depthwise_conv.conv.dilation for m in atrous] == [(6, 6),
                                                                (12, 12),
                                                                (18, 18)]
    for branch in atrous:
        assert isinstance(branch, DepthwiseSeparableConvModule)
        depthwise = branch.depthwise_conv
        assert depthwise.conv.kernel_size == (3, 3)
        assert depthwise.conv.groups == depthwise.conv.in_channels \
            == depthwise.conv.out_channels == in_channels
        assert depthwise.norm is not None and depthwise.with_activation
        pointwise = branch.pointwise_conv
        assert pointwise.conv.kernel_size == (1, 1)
        assert pointwise.conv.out_channels == 10
        assert pointwise.norm is not None and pointwise.with_activation
    decoder.eval()
    assert decoder(_feats()).shape == (2, 8, 16, 24)


def _semantic_head(**kwargs):
    return MODELS.build(
        dict(
            type='PanopticDeepLabSemanticHead',
            num_classes=5,
            decoder=_decoder_cfg(),
            head_channels=7,
            **kwargs))


def _instance_head():
    return MODELS.build(
        dict(
            type='PanopticDeepLabInstanceHead',
            decoder=_decoder_cfg(project_channels=(4, 2), decoder_channels=6),
            head_channels=3))


def test_heads_layout_shapes_and_predictor_init():
    sem_head = _semantic_head()
    ins_head = _instance_head()
    assert isinstance(sem_head, PanopticDeepLabSemanticHead)
    assert isinstance(ins_head, PanopticDeepLabInstanceHead)
    assert isinstance(sem_head.head, DepthwiseSeparableConvModule)
    assert sem_head.head.depthwise_conv.conv.kernel_size == (5, 5)
    assert sem_head.predictor.kernel_size == (1, 1)
    assert ins_head.center_predictor.out_channels == 1
    assert ins_head.offset_predictor.out_channels == 2
    sem_head.init_weights()
    ins_head.init_weights()
    for conv in (sem_head.predictor, ins_head.center_predictor,
                 ins_head.offset_predictor):
        assert conv.weight.std().item() < 0.01
        assert (conv.bias == 0).all()
    sem_head.eval()
    ins_head.eval()
    feats = _feats()
    assert sem_head(feats).shape == (2, 5, 16, 24)
    center, offsets = ins_head(feats)
    assert center.shape == (2, 1, 16, 24) and offsets.shape == (2, 2, 16, 24)


def _samples(batch, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(batch):
        sample = DetDataSample(metainfo=dict(
            batch_input_shape=(height, width)))
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.randint(0, 5, (1, height, width), generator=gen))
        sample.gt_semantic_weights = PixelData(
            data=torch.randint(1, 4, (1, height, width),
                               generator=gen).float())
        sample.gt_center_heatmap = PixelData(
            data=torch.rand(1, height, width, generator=gen))
        sample.gt_center_weights = PixelData(
            data=(torch.rand(1, height, width, generator=gen) > 0.3).float())
        sample.gt_offsets = PixelData(
            data=torch.randn(2, height, width, generator=gen) * 5)
        sample.gt_offset_weights = PixelData(
            data=(torch.rand(1, height, width, generator=gen) > 0.5).float())
        samples.append(sample)
    return samples


def test_semantic_loss_upsamples_x4_and_uses_weights():
    head = _semantic_head(loss_sem=dict(
        type='DeepLabHardPixelCELoss', top_k_percent=0.2))
    samples = _samples(2, 64, 96)
    logits = torch.randn(2, 5, 16, 24)
    loss = head.loss_by_feat(logits, samples)['loss_sem']
    # oracle: x4 bilinear upsampling, weighted CE, top 20% of all pixels
    up = F.interpolate(logits, scale_factor=4, mode='bilinear',
                       align_corners=False)
    labels = torch.stack([s.gt_sem_seg.sem_seg[0] for s in samples]).long()
    weights = torch.stack([s.gt_semantic_weights.data[0] for s in samples])
    pixel = F.cross_entropy(up, labels, reduction='none') * weights
    k = int(0.2 * pixel.numel())
    expected = pixel.flatten().sort(descending=True)[0][:k].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # unweighted variant
    plain = _semantic_head(semantic_weights_key=None)
    pixel = F.cross_entropy(up, labels, reduction='none')
    expected = pixel.flatten().sort(descending=True)[0][:k].mean()
    assert plain.loss_by_feat(logits, samples)['loss_sem'].item() == \
        pytest.approx(expected.item(), rel=1e-5)


def test_instance_losses_scale_offsets_by_stride():
    head = _instance_head()
    samples = _samples(2, 64, 96, seed=1)
    center = torch.rand(2, 1, 16, 24)
    offsets = torch.randn(2, 2, 16, 24)
    losses = head.loss_by_feat(center, offsets, samples)
    up_center = F.interpolate(center, size=(64, 96), mode='bilinear')
    up_offsets = F.interpolate(offsets, size=(64, 96), mode='bilinear') * 4
    gt_center = torch.stack([s.gt_center_heatmap.data for s in samples])
    cw = torch.stack([s.gt_center_weights.data for s in samples])
    gt_offsets = torch.stack([s.gt_offsets.data for s in samples])
    ow = torch.stack([s.gt_offset_weights.data for s in samples])
    expected_center = 200 * ((up_center - gt_center)**2 * cw).sum() / cw.sum()
    expected_offset = 0.01 * ((up_offsets - gt_offsets).abs() *
                              ow).sum() / ow.sum()
    assert losses['loss_center'].item() == pytest.approx(
        expected_center.item(), rel=1e-5)
    assert losses['loss_offset'].item() == pytest.approx(
        expected_offset.item(), rel=1e-5)


def test_instance_losses_without_things_are_zero_not_nan():
    head = _instance_head()
    head.train()
    samples = _samples(2, 64, 96)
    for sample in samples:
        sample.gt_center_weights.data.zero_()
        sample.gt_offset_weights.data.zero_()
    losses = head.loss(_feats(), samples)
    assert losses['loss_center'].item() == 0
    assert losses['loss_offset'].item() == 0
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in head.parameters())


def test_heads_gradient_reaches_every_parameter():
    sem_head, ins_head = _semantic_head(), _instance_head()
    samples = _samples(2, 64, 96)
    feats = _feats()
    losses = sem_head.loss(feats, samples)
    losses.update(ins_head.loss(feats, samples))
    assert set(losses) == {'loss_sem', 'loss_center', 'loss_offset'}
    sum(losses.values()).backward()
    for module in (sem_head, ins_head):
        for name, param in module.named_parameters():
            assert param.grad is not None, name
            assert param.grad.abs().sum() > 0, name


def test_unpadded_targets_in_one_batch_are_refused():
    head = _semantic_head()
    samples = _samples(1, 64, 96) + _samples(1, 60, 96)
    with pytest.raises(ValueError, match='different shapes'):
        head.loss_by_feat(torch.randn(2, 5, 16, 24), samples)
    del samples[0].gt_semantic_weights
    with pytest.raises(KeyError, match='dense_target_keys'):
        head.loss_by_feat(torch.randn(2, 5, 16, 24), samples[:1])


def test_resize_center_and_offsets_scales_each_axis():
    center = torch.rand(1, 1, 4, 6)
    offsets = torch.ones(1, 2, 4, 6)
    up_center, up_offsets = resize_center_and_offsets(center, offsets,
                                                      (8, 18))
    assert up_center.shape == (1, 1, 8, 18)
    assert torch.allclose(up_offsets[0, 0], torch.full((8, 18), 2.))
    assert torch.allclose(up_offsets[0, 1], torch.full((8, 18), 3.))
    # same size: identity
    same = resize_center_and_offsets(center, offsets, (4, 6))
    assert same[0] is center and same[1] is offsets
    # crop then resize: padding dropped before the resize
    sem = torch.zeros(1, 3, 8, 8)
    sem[..., :6, :4] = 1
    out = crop_and_resize((sem, torch.zeros(1, 1, 8, 8),
                           torch.ones(1, 2, 8, 8)), (6, 4), (3, 2))
    assert out[0].shape == (1, 3, 3, 2) and (out[0] == 1).all()
    assert torch.allclose(out[2], torch.full((1, 2, 3, 2), 0.5))
