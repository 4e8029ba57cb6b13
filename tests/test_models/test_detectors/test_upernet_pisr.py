# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""UPerNetPISR: layout (F = UPerNet's fused map, Panoptic-DeepLab heads
without decoders), the loss terms and gamma, the gradient path, inference
on the final outputs, the configs in configs/pisr/ against the paper's
values and a few iterations of the synthetic config through the Runner."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.models.backbones import SwinTransformer
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData

from mmpanoptic_plus.datasets.transforms.panoptic_deeplab_targets import \
    PANOPTIC_DEEPLAB_TARGET_PAD_VALUES
from mmpanoptic_plus.models.detectors import PanopticDeepLab, UPerNetPISR
from mmpanoptic_plus.models.heads import (PanopticDeepLabInstanceHead,
                                          PanopticDeepLabSemanticHead)
from mmpanoptic_plus.models.layers import PISREncoder
from mmpanoptic_plus.models.necks import UPerNetFusionNeck
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO_ROOT = Path(__file__).resolve().parents[3]
NORM = dict(type='BN', requires_grad=True)
LOSS_NAMES = {
    'loss_sem', 'loss_center', 'loss_offset', 'loss_sem_init',
    'loss_center_init', 'loss_offset_init'
}


def tiny_model_cfg(gamma=1.0, final_input='pan', threshold=0.1):
    """R18 (strides 4-32), 16-channel UPerNet fusion, K = 4."""
    return dict(
        type='UPerNetPISR',
        num_things_classes=2,
        num_stuff_classes=1,
        data_preprocessor=dict(
            type='PanopticDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32,
            pad_seg=True,
            dense_target_pad_values=dict(PANOPTIC_DEEPLAB_TARGET_PAD_VALUES)),
        backbone=dict(
            type='ResNet',
            depth=18,
            out_indices=(0, 1, 2, 3),
            norm_cfg=NORM,
            norm_eval=False,
            zero_init_residual=False,
            init_cfg=None),
        neck=dict(
            type='UPerNetFusionNeck',
            in_channels=[64, 128, 256, 512],
            channels=16,
            norm_cfg=NORM),
        semantic_head=dict(
            type='PanopticDeepLabSemanticHead',
            head_channels=16,
            norm_cfg=NORM),
        instance_head=dict(
            type='PanopticDeepLabInstanceHead',
            head_channels=8,
            norm_cfg=NORM),
        pisr=dict(
            type='PISREncoder',
            num_instances=4,
            channels=8,
            reweight_channels=4),
        gamma=gamma,
        pisr_center_threshold=threshold,
        final_input=final_input,
        test_cfg=dict(stuff_area_limit=4))


def _build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(**kwargs))
    model.init_weights()
    return model


def _batch(shapes=((64, 64), (48, 60))):
    inputs, samples = [], []
    for index, (height, width) in enumerate(shapes):
        gen = torch.Generator().manual_seed(index)
        inputs.append(
            torch.randint(0, 255, (3, height, width), generator=gen,
                          dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(img_shape=(height, width),
                          ori_shape=(height + 4, width + 6)))
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.randint(0, 3, (1, height, width), generator=gen,
                                  dtype=torch.uint8))
        for key, channels in (('gt_center_heatmap', 1),
                              ('gt_center_weights', 1), ('gt_offsets', 2),
                              ('gt_offset_weights', 1),
                              ('gt_semantic_weights', 1)):
            sample.set_field(
                PixelData(
                    data=torch.rand(channels, height, width, generator=gen)),
                key)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _losses(model):
    data = model.data_preprocessor(_batch(), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_layout():
    model = _build()
    assert isinstance(model, UPerNetPISR)
    assert isinstance(model, PanopticDeepLab)  # its predict / grouping
    assert type(model.neck) is UPerNetFusionNeck
    for head in (model.semantic_head, model.final_semantic_head):
        assert type(head) is PanopticDeepLabSemanticHead
        assert head.decoder is None and head.num_classes == 3
    for head in (model.instance_head, model.final_instance_head):
        assert type(head) is PanopticDeepLabInstanceHead
        assert head.decoder is None
    assert isinstance(model.pisr, PISREncoder)
    assert (model.pisr.in_channels, model.pisr.num_semantic,
            model.pisr.num_instances, model.pisr.out_channels) == (16, 3, 4,
                                                                   16)
    # the final heads read F_pan (16 channels) or [F; F_pan] (32)
    assert model.final_semantic_head.head.depthwise_conv.conv.in_channels \
        == 16
    concat = _build(final_input='concat')
    assert concat.final_instance_head.center_head.depthwise_conv.conv \
        .in_channels == 32
    feats = model.eval().extract_feat(torch.zeros(1, 3, 64, 64))
    assert feats.shape == (1, 16, 16, 16)


def test_invalid_arguments():
    cfg = tiny_model_cfg()
    cfg['semantic_head']['decoder'] = dict(type='PanopticDeepLabDecoder')
    with pytest.raises(ValueError, match='decoder'):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    cfg['instance_head']['in_channels'] = 8
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='final_input'):
        MODELS.build(tiny_model_cfg(final_input='sum'))
    with pytest.raises(ValueError, match='gamma'):
        MODELS.build(tiny_model_cfg(gamma=-1.0))


def test_loss_terms_and_gamma():
    full = _losses(_build(gamma=1.0))
    assert set(full) == LOSS_NAMES
    half = _losses(_build(gamma=0.5))
    for name, value in full.items():
        assert torch.isfinite(value), name
        scale = 0.5 if name.endswith('_init') else 1.0
        torch.testing.assert_close(half[name], value * scale, msg=name)


@pytest.mark.parametrize('final_input', ['pan', 'concat'])
def test_final_losses_reach_pisr_and_the_base_model(final_input):
    """Threshold 0 so that the top-K slots are filled: the final losses
    alone reach every PISR parameter, the initial semantic head (through
    S), the UPerNet fusion and the backbone (through F)."""
    model = _build(final_input=final_input, threshold=0.0)
    losses = _losses(model)
    sum(value for name, value in losses.items()
        if not name.endswith('_init')).backward()

    def has_grad(param):
        return param.grad is not None and param.grad.abs().sum() > 0

    for name, param in model.pisr.named_parameters():
        assert has_grad(param), name
    for module in (model.semantic_head, model.neck, model.backbone,
                   model.final_semantic_head, model.final_instance_head):
        assert any(has_grad(p) for p in module.parameters()), module
    assert has_grad(model.neck.fpn_bottleneck.conv.weight)
    assert has_grad(model.backbone.conv1.weight)


def _predict_spying(model, head, monkeypatch):
    """``model.predict`` on the test batch, recording the input shapes of
    ``head.forward_prediction``; returns (shapes, results)."""
    calls = []
    original = head.forward_prediction

    def spy(feats):
        calls.append(feats.shape)
        return original(feats)

    monkeypatch.setattr(head, 'forward_prediction', spy)
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), False)
        results = model.predict(data['inputs'], data['data_samples'])
    for sample in results:
        panoptic = sample.pred_panoptic_seg.sem_seg
        assert panoptic.shape == (1, ) + sample.ori_shape
        assert ((panoptic % 1000 >= 0) & (panoptic % 1000 <= 3)).all()
        assert sample.pred_sem_seg.sem_seg.shape == (1, ) + sample.ori_shape
    return calls, results


def test_predict_uses_the_final_outputs(monkeypatch):
    model = _build().eval()
    calls, _ = _predict_spying(model, model.final_semantic_head, monkeypatch)
    assert calls == [torch.Size([2, 16, 16, 16])]


def _config(name):
    return Config.fromfile(str(REPO_ROOT / 'configs' / 'pisr' / f'{name}.py'))


@pytest.mark.parametrize('name', ['upernet_r50_coco', 'upernet_swin-l_coco'])
def test_paper_configs(name):
    """COCO (80 things, 53 stuff), UPerNet's fusion at 512 channels with
    pool scales (1, 2, 3, 6) on all four backbone strides, K = 50, gamma 1,
    center NMS 11; Swin-L as the paper (Table 2: 192-1536 channels, depths
    2-2-18-2, window 12, ImageNet-22k 384 weights)."""
    cfg = _config(name)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    assert isinstance(model, UPerNetPISR)
    assert (model.num_things_classes, model.num_stuff_classes) == (80, 53)
    assert model.neck.channels == 512
    assert [m[0].output_size for m in model.neck.psp_modules] == [1, 2, 3, 6]
    assert (model.num_instances, model.gamma, model.pisr_nms_kernel) == \
        (50, 1.0, 11)
    assert model.pisr.num_semantic == 133
    assert cfg.model.pisr.norm_cfg.type == 'SyncBN'
    assert model.final_input == 'pan'
    feats = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    if 'swin' in name:
        assert type(model.backbone) is SwinTransformer
        assert model.neck.in_channels == [192, 384, 768, 1536]
        backbone = cfg.model.backbone
        assert (backbone.embed_dims, backbone.depths, backbone.num_heads,
                backbone.window_size) == (192, [2, 2, 18, 2],
                                          [6, 12, 24, 48], 12)
        assert 'swin_large_patch4_window12_384_22k' in \
            backbone.init_cfg.checkpoint
        assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    else:
        assert model.backbone.depth == 50
        assert model.neck.in_channels == [256, 512, 1024, 2048]
    # the recipe is Panoptic-DeepLab's COCO one
    base = Config.fromfile(
        str(REPO_ROOT / 'configs' / 'panoptic_deeplab' / 'pdl_r50_coco.py'))
    for key in ('train_cfg', 'param_scheduler', 'train_pipeline'):
        assert cfg[key] == base[key], key
    assert cfg.train_dataloader.batch_size == 8


def test_synthetic_config_runs_through_runner(synthetic_root, tmp_path):
    """Three iterations of configs/pisr/upernet_r18_synthetic.py on the
    64x64 test set: the six losses are logged and finite."""
    cfg = _config('upernet_r18_synthetic')
    assert cfg.model.pisr.num_instances == 10
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(synthetic_root) + '/'
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=3)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1000, save_last=False)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train()
    finally:
        torch.set_num_threads(num_threads)
    scalars = runner.message_hub.log_scalars
    for name in LOSS_NAMES:
        history = np.asarray(scalars[f'train/{name}'].data[0])
        assert len(history) == 3 and np.isfinite(history).all(), name


def _build_without_pisr():
    cfg = tiny_model_cfg()
    cfg['pisr'] = None
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_without_pisr_is_the_base_model():
    """pisr=None: no PISR module, no final heads; the initial heads are
    the prediction and their losses are the base model's three, equal to
    the PISR model's ``_init`` losses (gamma 1) from the same weights."""
    base = _build_without_pisr()
    assert not base.with_pisr and base.pisr is None
    assert not hasattr(base, 'final_semantic_head')
    assert not any('pisr' in name or 'final' in name
                   for name, _ in base.named_parameters())
    with_pisr = _build()
    # every parameter of the base model is in the PISR model, same shapes
    pisr_params = dict(with_pisr.named_parameters())
    for name, param in base.named_parameters():
        assert pisr_params[name].shape == param.shape, name
    with_pisr.load_state_dict(base.state_dict(), strict=False)
    losses = _losses(base)
    assert set(losses) == {'loss_sem', 'loss_center', 'loss_offset'}
    full = _losses(with_pisr)
    for name, value in losses.items():
        torch.testing.assert_close(value, full[f'{name}_init'], msg=name)
    sum(losses.values()).backward()
    assert base.neck.fpn_bottleneck.conv.weight.grad.abs().sum() > 0
    assert base.backbone.conv1.weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match='forward_initial'):
        base.forward_initial_and_final(torch.zeros(1, 3, 32, 32))


def test_without_pisr_predicts_from_the_initial_heads(monkeypatch):
    model = _build_without_pisr().eval()
    calls, _ = _predict_spying(model, model.semantic_head, monkeypatch)
    assert calls == [torch.Size([2, 16, 16, 16])]


def test_without_pisr_refuses_final_head_overrides():
    cfg = tiny_model_cfg()
    cfg['pisr'] = None
    cfg['final_semantic_head'] = dict(head_channels=4)
    with pytest.raises(ValueError, match='without pisr'):
        MODELS.build(cfg)
