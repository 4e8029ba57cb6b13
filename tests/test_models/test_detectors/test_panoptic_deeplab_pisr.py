# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PanopticDeepLabPISR: initial/final losses (gamma), gradients to every
parameter, inference on the final predictions, images without things, the
reweighting ablation, the configs in configs/pisr/ and a few iterations of
the synthetic config through the Runner."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData

from mmpanoptic_plus.datasets.transforms.panoptic_deeplab_targets import \
    PANOPTIC_DEEPLAB_TARGET_PAD_VALUES
from mmpanoptic_plus.models.detectors import (PanopticDeepLab,
                                              PanopticDeepLabPISR)
from mmpanoptic_plus.models.detectors import \
    panoptic_deeplab_pisr as pisr_module
from mmpanoptic_plus.models.heads import PanopticDeepLabSemanticHead
from mmpanoptic_plus.models.layers import PISREncoder
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO_ROOT = Path(__file__).resolve().parents[3]
NORM = dict(type='BN', requires_grad=True)
CHANNELS = (64, 128, 256, 512)
LOSS_NAMES = {
    'loss_sem', 'loss_center', 'loss_offset', 'loss_sem_init',
    'loss_center_init', 'loss_offset_init'
}


def tiny_model_cfg(threshold=0.1, use_reweighting=True, gamma=1.0):
    """R18 at output stride 16, tiny decoders, K = 4 (random init)."""
    return dict(
        type='PanopticDeepLabPISR',
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
            strides=(1, 2, 2, 1),
            dilations=(1, 1, 1, 2),
            norm_cfg=NORM,
            norm_eval=False,
            init_cfg=None),
        semantic_head=dict(
            type='PanopticDeepLabSemanticHead',
            decoder=dict(
                type='PanopticDeepLabDecoder',
                in_channels=CHANNELS,
                project_channels=(16, 8),
                aspp_channels=16,
                decoder_channels=16,
                norm_cfg=NORM),
            head_channels=16,
            norm_cfg=NORM),
        instance_head=dict(
            type='PanopticDeepLabInstanceHead',
            decoder=dict(
                type='PanopticDeepLabDecoder',
                in_channels=CHANNELS,
                project_channels=(8, 4),
                aspp_channels=16,
                decoder_channels=8,
                norm_cfg=NORM),
            head_channels=8,
            norm_cfg=NORM),
        pisr=dict(
            type='PISREncoder',
            num_instances=4,
            channels=8,
            reweight_channels=4,
            use_reweighting=use_reweighting),
        gamma=gamma,
        pisr_center_threshold=threshold,
        pisr_nms_kernel=3,
        test_cfg=dict(stuff_area_limit=4))


def _batch(shapes, with_targets=True, without_things=False):
    inputs, samples = [], []
    for index, ((height, width), ori_shape) in enumerate(shapes):
        gen = torch.Generator().manual_seed(index)
        inputs.append(
            torch.randint(0, 255, (3, height, width), generator=gen,
                          dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(img_shape=(height, width), ori_shape=ori_shape))
        if with_targets:
            labels = torch.randint(0, 3, (1, height, width), generator=gen,
                                   dtype=torch.uint8)
            if without_things:
                labels.fill_(2)  # the only stuff class
            sample.gt_sem_seg = PixelData(sem_seg=labels)
            for key, channels in (('gt_center_heatmap', 1),
                                  ('gt_center_weights', 1), ('gt_offsets', 2),
                                  ('gt_offset_weights', 1),
                                  ('gt_semantic_weights', 1)):
                value = torch.rand(channels, height, width, generator=gen)
                if without_things and key != 'gt_semantic_weights':
                    value.zero_()
                sample.set_field(PixelData(data=value), key)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _spy_on_heatmaps(monkeypatch):
    """Record the ``valid`` masks of the instance heatmaps."""
    records = []
    original = pisr_module.instance_heatmaps_from_offsets

    def spy(*args, **kwargs):
        heatmaps, valid = original(*args, **kwargs)
        records.append((heatmaps.detach(), valid))
        return heatmaps, valid

    monkeypatch.setattr(pisr_module, 'instance_heatmaps_from_offsets', spy)
    return records


def test_layout():
    model = MODELS.build(tiny_model_cfg())
    assert isinstance(model, PanopticDeepLabPISR)
    assert isinstance(model, PanopticDeepLab)
    # one PISR per branch, on that branch's decoder channels
    assert isinstance(model.semantic_pisr, PISREncoder)
    assert (model.semantic_pisr.in_channels,
            model.semantic_pisr.out_channels) == (16, 16)
    assert (model.instance_pisr.in_channels,
            model.instance_pisr.out_channels) == (8, 8)
    for pisr in (model.semantic_pisr, model.instance_pisr):
        assert (pisr.num_semantic, pisr.num_instances) == (3, 4)
        assert pisr.channels == 8
    # final heads: prediction-only copies of the base heads
    assert isinstance(model.final_semantic_head, PanopticDeepLabSemanticHead)
    assert model.final_semantic_head.decoder is None
    assert model.final_instance_head.decoder is None
    assert model.final_semantic_head.num_classes == 3
    # default final_input='pan': F_pan alone
    assert model.final_input == 'pan'
    assert model.final_semantic_head.head.depthwise_conv.conv.in_channels \
        == 16
    assert model.final_instance_head.center_head.depthwise_conv.conv \
        .in_channels == 8
    cfg = tiny_model_cfg()
    cfg['final_input'] = 'concat'
    concat_model = MODELS.build(cfg)
    assert concat_model.final_semantic_head.head.depthwise_conv.conv \
        .in_channels == 16 + 16
    assert concat_model.final_instance_head.center_head.depthwise_conv \
        .conv.in_channels == 8 + 8
    assert model.final_semantic_head.predictor is not \
        model.semantic_head.predictor
    # final heads can be overridden
    cfg = tiny_model_cfg()
    cfg['final_instance_head'] = dict(head_channels=6)
    model = MODELS.build(cfg)
    assert model.final_instance_head.center_predictor.in_channels == 6
    assert model.instance_head.center_predictor.in_channels == 8


@pytest.mark.parametrize('threshold', [-1e9, 1e9])
def test_loss_and_gradient_reach_every_parameter(monkeypatch, threshold):
    """threshold -1e9: every NMS maximum is a center (K slots filled);
    1e9: no center at all."""
    records = _spy_on_heatmaps(monkeypatch)
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(threshold=threshold))
    model.train()
    data = model.data_preprocessor(
        _batch([((64, 64), (64, 64)), ((64, 48), (64, 48))]), True)
    losses = model(**data, mode='loss')
    assert set(losses) == LOSS_NAMES
    for name, value in losses.items():
        assert torch.isfinite(value), name
    heatmaps, valid = records[-1]
    assert heatmaps.shape == (2, 4, 16, 16)
    if threshold < 0:
        assert valid.all()
    else:
        assert not valid.any()
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_losses_are_the_base_losses_of_both_predictions():
    """In eval mode (no dropout, fixed BN statistics) the forward is
    deterministic: the six losses are the heads' own losses of the initial
    (x gamma) and final outputs."""
    model = MODELS.build(tiny_model_cfg(threshold=-1e9))
    model.eval()
    data = model.data_preprocessor(_batch([((64, 64), (64, 64))] * 2), True)
    samples = data['data_samples']
    with torch.no_grad():
        losses = model.loss(data['inputs'], samples)
        initial, final = model.forward_initial_and_final(data['inputs'])
        expected_init = model.semantic_head.loss_by_feat(
            initial.sem_logits, samples)
        expected_init.update(
            model.instance_head.loss_by_feat(initial.center, initial.offsets,
                                             samples))
        expected = model.final_semantic_head.loss_by_feat(
            final.sem_logits, samples)
        expected.update(
            model.final_instance_head.loss_by_feat(final.center,
                                                   final.offsets, samples))
        for name, value in expected_init.items():
            assert torch.allclose(losses[f'{name}_init'], value)
        for name, value in expected.items():
            assert torch.allclose(losses[name], value)
        model.gamma = 0.25
        scaled = model.loss(data['inputs'], samples)
    for name in expected_init:
        assert torch.allclose(scaled[f'{name}_init'],
                              0.25 * losses[f'{name}_init'])
    for name in expected:
        assert torch.allclose(scaled[name], losses[name])


def test_inference_uses_the_final_predictions():
    model = MODELS.build(tiny_model_cfg(threshold=-1e9))
    model.eval()
    inputs = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        raw = model(inputs, mode='tensor')
        initial, final = model.forward_initial_and_final(inputs)
    assert [t.shape for t in raw] == [(2, 3, 16, 16), (2, 1, 16, 16),
                                      (2, 2, 16, 16)]
    for got, want in zip(raw, final):
        assert torch.equal(got, want)
    assert not torch.allclose(raw[0], initial.sem_logits)


@pytest.mark.parametrize('final_input', ['concat', 'pan'])
def test_final_heads_see_features_and_context(monkeypatch, final_input):
    """The final heads get [F; F_pan] ('concat') or F_pan ('pan')."""
    cfg = tiny_model_cfg(threshold=-1e9)
    cfg['final_input'] = final_input
    model = MODELS.build(cfg)
    model.eval()
    inputs = torch.randn(1, 3, 64, 64)
    seen = {}
    for name in ('semantic_head', 'semantic_pisr', 'final_semantic_head'):
        module = getattr(model, name)
        method = 'forward_decoder' if name == 'semantic_head' else (
            'forward' if name == 'semantic_pisr' else 'forward_prediction')
        original = getattr(module, method)

        def spy(*args, _name=name, _original=original, **kwargs):
            out = _original(*args, **kwargs)
            seen[_name] = (args[0], out)
            return out

        monkeypatch.setattr(module, method, spy)
    with torch.no_grad():
        model.forward_initial_and_final(inputs)
    decoded = seen['semantic_head'][1]
    context = seen['semantic_pisr'][1]
    final_in = seen['final_semantic_head'][0]
    expected = torch.cat([decoded, context], 1) \
        if final_input == 'concat' else context
    assert torch.equal(final_in, expected)
    with pytest.raises(ValueError, match='final_input'):
        bad = tiny_model_cfg()
        bad['final_input'] = 'sum'
        MODELS.build(bad)


def test_loss_without_things_is_finite():
    model = MODELS.build(tiny_model_cfg(threshold=-1e9))
    model.train()
    batch = _batch([((64, 64), (64, 64))] * 2, without_things=True)
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert set(losses) == LOSS_NAMES
    for name in ('loss_center', 'loss_offset', 'loss_center_init',
                 'loss_offset_init'):
        assert losses[name].item() == 0, name
    assert torch.isfinite(losses['loss_sem']) and torch.isfinite(
        losses['loss_sem_init'])
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


def test_predict_end_to_end():
    model = MODELS.build(tiny_model_cfg(threshold=-1e9))
    model.eval()
    shapes = [((64, 64), (64, 64)), ((48, 64), (96, 128))]
    data = model.data_preprocessor(_batch(shapes, with_targets=False))
    with torch.no_grad():
        results = model(**data, mode='predict')
    for sample, (_, ori_shape) in zip(results, shapes):
        panoptic = sample.pred_panoptic_seg.sem_seg
        assert panoptic.shape == (1, ) + ori_shape
        assert panoptic.dtype == torch.int64
        labels = panoptic % INSTANCE_OFFSET
        assert labels.min() >= 0 and labels.max() <= 3  # 3 = void
        assert sample.pred_sem_seg.sem_seg.shape == (1, ) + ori_shape


def test_reweighting_ablation_switch():
    with_fc = MODELS.build(tiny_model_cfg())
    without_fc = MODELS.build(tiny_model_cfg(use_reweighting=False))
    names = {n for n, _ in with_fc.named_parameters()}
    names_off = {n for n, _ in without_fc.named_parameters()}
    assert names - names_off == {
        f'{branch}_pisr.reweight.{layer}.{kind}'
        for branch in ('semantic', 'instance') for layer in (0, 2)
        for kind in ('weight', 'bias')
    }
    assert not names_off - names


def test_bad_configs_are_explained():
    cfg = tiny_model_cfg()
    cfg['pisr']['in_channels'] = 16
    with pytest.raises(ValueError, match='per branch'):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    del cfg['pisr']['num_instances']
    with pytest.raises(ValueError, match='num_instances'):
        MODELS.build(cfg)
    head = tiny_model_cfg()['semantic_head']
    head.update(num_classes=3, decoder=None)
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(head)
    head = tiny_model_cfg()['semantic_head']
    head.update(num_classes=3, in_channels=16)
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(head)
    head.update(decoder=None)
    prediction_only = MODELS.build(head)
    with pytest.raises(RuntimeError, match='prediction-only'):
        prediction_only([torch.zeros(1, c, 4, 4) for c in CHANNELS])
    assert prediction_only.forward_prediction(torch.zeros(
        1, 16, 4, 4)).shape == (1, 3, 4, 4)


@pytest.mark.parametrize('normalizer', [None, 4.0, 'instance', 'image'])
def test_heatmap_normalizer_reaches_the_heatmaps(monkeypatch, normalizer):
    """``pisr_heatmap_normalizer`` (default: the 16-map-pixel radius) is
    what the initial instance heatmaps are computed with."""
    calls = []
    original = pisr_module.instance_heatmaps_from_offsets

    def spy(*args, **kwargs):
        calls.append(kwargs['normalizer'])
        return original(*args, **kwargs)

    monkeypatch.setattr(pisr_module, 'instance_heatmaps_from_offsets', spy)
    cfg = tiny_model_cfg()
    if normalizer is not None:
        cfg['pisr_heatmap_normalizer'] = normalizer
    model = MODELS.build(cfg)
    model.eval()
    with torch.no_grad():
        model._forward(torch.rand(1, 3, 64, 64))
    assert calls == [16.0 if normalizer is None else normalizer]


def test_bad_heatmap_normalizer_is_refused():
    cfg = tiny_model_cfg()
    cfg['pisr_heatmap_normalizer'] = 'largest'
    with pytest.raises(ValueError, match='normalizer'):
        MODELS.build(cfg)


def _config(name):
    return Config.fromfile(str(REPO_ROOT / 'configs' / 'pisr' / f'{name}.py'))


@pytest.mark.parametrize('name, classes, branch_channels, nms_kernel', [
    ('pdl_r50_city', (8, 11), (256, 128), 3),
    ('pdl_r50_coco', (80, 53), (256, 128), 11),
    ('pdl_r18_synthetic', (3, 2), (64, 32), 3),
])
def test_configs_build(name, classes, branch_channels, nms_kernel):
    """Build only (no forward: the R50 models are paper-sized)."""
    cfg = _config(name)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)
    model_cfg.pop('init_cfg', None)
    model_cfg.pop('pretrained', None)
    model = MODELS.build(model_cfg)
    assert isinstance(model, PanopticDeepLabPISR)
    assert (model.num_things_classes, model.num_stuff_classes) == classes
    assert model.pisr_nms_kernel == nms_kernel
    assert model.gamma == 1.0
    assert model.semantic_pisr.use_reweighting
    assert (model.semantic_pisr.in_channels,
            model.instance_pisr.in_channels) == branch_channels
    assert model.semantic_pisr.num_semantic == sum(classes)
    base = Config.fromfile(
        str(REPO_ROOT / 'configs' / 'panoptic_deeplab' / f'{name}.py'))
    # same recipe as the Panoptic-DeepLab baseline
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler',
                'train_pipeline'):
        assert cfg[key] == base[key], key
    assert cfg.train_dataloader.batch_size == \
        base.train_dataloader.batch_size
    if 'synthetic' in name:
        assert model.num_instances == 10
        assert model.semantic_pisr.channels == 16
        assert sum(p.numel() for p in model.parameters()) < 20e6
    else:
        assert model.num_instances == 50
        assert model_cfg.pisr.norm_cfg.type == 'SyncBN'


def test_synthetic_config_runs_through_runner(synthetic_root, tmp_path):
    """Three iterations of configs/pisr/pdl_r18_synthetic.py (its pipeline
    and model) on the 64x64 test set: the six losses are logged, finite."""
    cfg = _config('pdl_r18_synthetic')
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
