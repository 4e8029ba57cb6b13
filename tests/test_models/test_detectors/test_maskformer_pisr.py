# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""MaskFormerPISR: S and I from the queries (naive references), the loss
terms and gamma, the gradient path (PISR and the base model learn from the
final losses), inference, the configs in configs/pisr/ against the papers'
values and a few iterations of the synthetic config through the Runner."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.models.dense_heads import MaskFormerHead
from mmdet.models.seg_heads import MaskFormerFusionHead
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import MaskFormerPISR
from mmpanoptic_plus.models.detectors.maskformer_pisr import (
    semantic_probs_from_queries, thing_query_heatmaps)
from mmpanoptic_plus.models.layers import PISREncoder
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO_ROOT = Path(__file__).resolve().parents[3]
NORM = dict(type='BN', requires_grad=True)
NUM_THINGS, NUM_STUFF = 2, 1
FINAL_LOSSES = {'loss_cls', 'loss_mask', 'loss_dice'}


def tiny_model_cfg(gamma=1.0, final_input='pan', num_instances=4,
                   final_residual=True):
    """R18, plain FPN pixel decoder, 2 decoder layers of width 32, 6
    queries, K = 4 (random init)."""
    attn = dict(embed_dims=32, num_heads=4, dropout=0.0, batch_first=True)
    return dict(
        type='MaskFormerPISR',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[0, 0, 0],
            std=[255, 255, 255],
            pad_size_divisor=32,
            pad_mask=True,
            pad_seg=True),
        backbone=dict(
            type='ResNet',
            depth=18,
            out_indices=(0, 1, 2, 3),
            norm_cfg=NORM,
            norm_eval=False,
            init_cfg=None),
        panoptic_head=dict(
            type='MaskFormerHead',
            in_channels=[64, 128, 256, 512],
            feat_channels=32,
            out_channels=32,
            num_things_classes=NUM_THINGS,
            num_stuff_classes=NUM_STUFF,
            num_queries=6,
            pixel_decoder=dict(
                type='PixelDecoder', norm_cfg=dict(type='GN',
                                                   num_groups=8)),
            positional_encoding=dict(num_feats=16, normalize=True),
            transformer_decoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=attn,
                    cross_attn_cfg=attn,
                    ffn_cfg=dict(
                        embed_dims=32,
                        feedforward_channels=64,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True))),
                return_intermediate=True),
            loss_cls=dict(
                type='CrossEntropyLoss',
                use_sigmoid=False,
                loss_weight=1.0,
                class_weight=[1.0] * 3 + [0.1]),
            loss_mask=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=20.0),
            loss_dice=dict(
                type='DiceLoss',
                use_sigmoid=True,
                activate=True,
                naive_dice=True,
                eps=1.0,
                loss_weight=1.0)),
        panoptic_fusion_head=dict(
            type='MaskFormerFusionHead',
            num_things_classes=NUM_THINGS,
            num_stuff_classes=NUM_STUFF,
            loss_panoptic=None,
            init_cfg=None),
        train_cfg=dict(
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=1.0),
                    dict(type='FocalLossCost', weight=20.0,
                         binary_input=True),
                    dict(type='DiceCost', weight=1.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(
            panoptic_on=True,
            semantic_on=False,
            instance_on=False,
            max_per_image=100,
            object_mask_thr=0.0,
            iou_thr=0.0,
            filter_low_score=False),
        pisr=dict(
            type='PISREncoder',
            num_instances=num_instances,
            channels=8,
            reweight_channels=4),
        gamma=gamma,
        final_input=final_input,
        final_residual=final_residual)


def _build(trained_corrections=True, **kwargs):
    """The tiny model; with ``trained_corrections`` the zero-initialised
    last layers of the final heads (``final_residual``) are redrawn, as
    after some training, so that gradients pass through them."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(**kwargs))
    model.init_weights()
    if trained_corrections:
        with torch.no_grad():
            for layer in model.final_correction_layers:
                layer.weight.normal_(std=0.1)
                layer.bias.normal_(std=0.1)
    return model


def _batch(shapes=((64, 64), (48, 60)), with_things=True):
    inputs, samples = [], []
    for index, (height, width) in enumerate(shapes):
        gen = torch.Generator().manual_seed(index)
        inputs.append(
            torch.randint(0, 255, (3, height, width), generator=gen,
                          dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(img_shape=(height, width),
                          ori_shape=(height + 4, width + 6)))
        masks = np.zeros((2, height, width), np.uint8)
        masks[0, 5:20, 5:20] = 1
        masks[1, 30:40, 10:30] = 1
        sem = torch.full((1, height, width), 2, dtype=torch.uint8)
        if with_things:
            sem[0, 5:20, 5:20] = 0
            sem[0, 30:40, 10:30] = 1
            labels = torch.tensor([0, 1])
            boxes = torch.tensor([[5., 5, 20, 20], [10, 30, 30, 40]])
        else:
            masks, labels, boxes = masks[:0], torch.zeros(
                0, dtype=torch.long), torch.zeros(0, 4)
        sample.gt_instances = InstanceData(
            labels=labels,
            bboxes=boxes,
            masks=BitmapMasks(masks, height, width))
        sample.gt_sem_seg = PixelData(sem_seg=sem)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _losses(model, with_things=True):
    data = model.data_preprocessor(_batch(with_things=with_things), True)
    return model.loss(data['inputs'], data['data_samples'])


def test_built_modules_are_the_intended_classes():
    model = _build()
    assert isinstance(model, MaskFormerPISR)
    assert type(model.panoptic_head) is MaskFormerHead
    assert type(model.panoptic_fusion_head) is MaskFormerFusionHead
    assert isinstance(model.pisr, PISREncoder)
    # F = the 32-channel mask features, S over the 3 classes, K = 4
    assert (model.pisr.in_channels, model.pisr.num_semantic,
            model.pisr.num_instances, model.pisr.out_channels,
            model.pisr.channels) == (32, 3, 4, 32, 8)
    assert model.final_cls_embed.out_features == 4  # 3 classes + no object
    assert model.final_fuse is None
    assert _build(final_input='concat').final_fuse.in_channels == 64


def test_invalid_arguments():
    with pytest.raises(ValueError, match='num_instances'):
        MODELS.build(tiny_model_cfg(num_instances=7))  # > 6 queries
    cfg = tiny_model_cfg()
    cfg['pisr']['in_channels'] = 16
    with pytest.raises(ValueError, match='in_channels'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='final_input'):
        MODELS.build(tiny_model_cfg(final_input='sum'))


def test_semantic_probs_match_naive_loop():
    gen = torch.Generator().manual_seed(0)
    cls_scores = torch.randn(2, 5, 4, generator=gen)  # 3 classes + void
    mask_preds = torch.randn(2, 5, 3, 4, generator=gen)
    probs = semantic_probs_from_queries(cls_scores, mask_preds)
    expected = torch.zeros(2, 3, 3, 4)
    for b in range(2):
        class_probs = cls_scores[b].softmax(-1)
        for y in range(3):
            for x in range(4):
                for c in range(3):
                    expected[b, c, y, x] = sum(
                        class_probs[q, c] * mask_preds[b, q, y, x].sigmoid()
                        for q in range(5))
                expected[b, :, y, x] /= expected[b, :, y, x].sum()
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 3, 4))


def test_thing_query_heatmaps_hand_built():
    # 4 queries, 2 things + 1 stuff + void; thing scores 0.7, 0.02, 0.5, 0.1
    probs = torch.tensor([[[0.7, 0.1, 0.1, 0.1], [0.02, 0.01, 0.9, 0.07],
                           [0.1, 0.5, 0.2, 0.2], [0.05, 0.1, 0.05, 0.8]]])
    cls_scores = probs.log().requires_grad_()
    mask_preds = torch.randn(1, 4, 2, 3, requires_grad=True)
    thing_map = torch.tensor([[[[1., 1., 0.], [1., 0., 1.]]]])
    heatmaps, valid = thing_query_heatmaps(
        cls_scores, mask_preds, thing_map, num_things=2, num_instances=3,
        score_thr=0.05)
    assert valid.tolist() == [[True, True, True]]
    for slot, query in enumerate((0, 2, 3)):  # by score 0.7, 0.5, 0.1
        torch.testing.assert_close(heatmaps[0, slot],
                                   mask_preds[0, query].sigmoid() *
                                   thing_map[0, 0])
    heatmaps.sum().backward()
    assert mask_preds.grad[0, 1].abs().sum() == 0  # not selected
    assert mask_preds.grad[0, 0].abs().sum() > 0
    # a higher threshold invalidates (and zeroes) the weak slot
    heatmaps, valid = thing_query_heatmaps(
        cls_scores, mask_preds, thing_map, 2, 4, score_thr=0.2)
    assert valid.tolist() == [[True, True, False, False]]
    assert heatmaps[0, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match='num_instances'):
        thing_query_heatmaps(cls_scores, mask_preds, thing_map, 2, 5, 0.)


@pytest.mark.parametrize('with_things', [True, False])
def test_loss_terms_are_finite(with_things):
    losses = _losses(_build(), with_things)
    initial = {f'{name}_init' for name in FINAL_LOSSES}
    deep = {f'd0.{name}_init' for name in FINAL_LOSSES}
    assert set(losses) == FINAL_LOSSES | initial | deep
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name


def test_initial_losses_are_scaled_by_gamma():
    full = _losses(_build(gamma=1.0))
    half = _losses(_build(gamma=0.5))
    for name, value in full.items():
        scale = 0.5 if name.endswith('_init') else 1.0
        torch.testing.assert_close(half[name], value * scale, msg=name)


@pytest.mark.parametrize('final_residual', [True, False])
def test_final_losses_reach_pisr_and_the_base_model(final_residual):
    """The final losses alone: every PISR parameter gets a gradient, and
    through S and I (and F) so do the base head's classifier and mask
    embedding, the pixel decoder and the backbone."""
    model = _build(final_residual=final_residual)
    losses = _losses(model)
    sum(value for name, value in losses.items()
        if name in FINAL_LOSSES).backward()

    def has_grad(param):
        return param.grad is not None and param.grad.abs().sum() > 0

    for name, param in model.pisr.named_parameters():
        assert has_grad(param), name
    head = model.panoptic_head
    for module in (head.cls_embed, head.mask_embed, head.pixel_decoder,
                   head.query_embed, model.query_context,
                   model.final_cls_embed, model.final_mask_embed):
        assert any(has_grad(p) for p in module.parameters()), module
    assert has_grad(model.backbone.conv1.weight)


def test_every_new_parameter_learns_from_the_total_loss():
    model = _build(final_input='concat')
    sum(_losses(model).values()).backward()
    for prefix in ('pisr.', 'final_', 'query_context.'):
        for name, param in model.named_parameters():
            if name.startswith(prefix):
                assert param.grad is not None and \
                    param.grad.abs().sum() > 0, name


def test_predict_gives_valid_panoptic_maps():
    model = _build().eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), False)
        results = model.predict(data['inputs'], data['data_samples'])
        cls_scores, mask_preds = model._forward(data['inputs'],
                                                data['data_samples'])
    assert cls_scores.shape == (2, 6, 4)
    assert mask_preds.shape == (2, 6, 16, 16)
    for sample in results:
        panoptic = sample.pred_panoptic_seg.sem_seg
        assert panoptic.shape == (1, ) + sample.ori_shape
        assert ((panoptic % 1000 >= 0) & (panoptic % 1000 <= 3)).all()


def _initial_and_final(model):
    """Initial and final logits of the tiny batch (no gradients)."""
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), False)
        return model.forward_initial_and_final(
            model.extract_feat(data['inputs']), data['data_samples'])


def test_residual_final_starts_as_the_base_maskformer():
    """``final_residual``: at init the final corrections are zero, so the
    final logits equal the last decoder layer's initial ones and the
    panoptic prediction is mmdet's ``MaskFormer`` with the same weights."""
    model = _build(trained_corrections=False).eval()
    for layer in model.final_correction_layers:
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    base_cfg = tiny_model_cfg()
    for key in ('pisr', 'gamma', 'final_input', 'final_residual'):
        base_cfg.pop(key)
    base_cfg['type'] = 'mmdet.MaskFormer'
    # mmdet's MaskFormer deep-copies its sub-configs with ConfigDict methods
    base = MODELS.build(ConfigDict(base_cfg)).eval()
    missing, unexpected = base.load_state_dict(model.state_dict(),
                                               strict=False)
    assert not missing
    assert all(k.startswith(('pisr.', 'final_', 'query_context.'))
               for k in unexpected)
    initial, final = _initial_and_final(model)
    torch.testing.assert_close(final.cls_scores[0], initial.cls_scores[-1])
    torch.testing.assert_close(final.mask_preds[0], initial.mask_preds[-1])
    with torch.no_grad():
        data = model.data_preprocessor(_batch(), False)
        ours = model.predict(data['inputs'], data['data_samples'])
        theirs = base.predict(data['inputs'], data['data_samples'])
    for a, b in zip(ours, theirs):
        assert torch.equal(a.pred_panoptic_seg.sem_seg,
                           b.pred_panoptic_seg.sem_seg)


def test_residual_final_adds_the_correction():
    """A constant class correction shifts every final class logit by it
    (initial + correction); the masks keep the initial logits."""
    model = _build(trained_corrections=False).eval()
    shift = torch.tensor([3., -1., 0., 2.])
    with torch.no_grad():
        model.final_cls_embed.bias.copy_(shift)
    initial, final = _initial_and_final(model)
    torch.testing.assert_close(final.cls_scores[0],
                               initial.cls_scores[-1] + shift)
    torch.testing.assert_close(final.mask_preds[0], initial.mask_preds[-1])


def test_predict_reads_the_final_classifier():
    """``final_residual=False``: make the final classifier call every
    query thing class 0 (score about 1) and every final mask logit 0 (probability 0.5 everywhere):
    MaskFormer's fusion then gives every pixel to the first query, one
    instance of class 0 (``0 + 1 * 1000``); the initial heads are left as
    they are, so this is read from the final ones."""
    model = _build(final_residual=False).eval()
    with torch.no_grad():
        model.final_cls_embed.weight.zero_()
        model.final_cls_embed.bias.copy_(torch.tensor([10., 0., 0., -10.]))
        model.final_mask_embed[-1].weight.zero_()
        model.final_mask_embed[-1].bias.zero_()
        data = model.data_preprocessor(_batch(), False)
        results = model.predict(data['inputs'], data['data_samples'])
    for sample in results:
        assert (sample.pred_panoptic_seg.sem_seg == 1000).all()


def _config(name):
    return Config.fromfile(str(REPO_ROOT / 'configs' / 'pisr' / f'{name}.py'))


@pytest.mark.parametrize(
    'name, depth, classes, batch',
    [('maskformer_r50_ade20k', 50, (100, 50), 2),
     ('maskformer_r101_ade20k', 101, (100, 50), 2),
     ('maskformer_r50_coco', 50, (80, 53), 1),
     ('maskformer_r101_coco', 101, (80, 53), 1)])
def test_paper_configs(name, depth, classes, batch):
    """The configs build and hold MaskFormer's recipe: 100 queries, the
    0.1 no-object weight, set-loss weights 1 / 20 / 1, test thresholds 0.8
    / 0.8, AdamW 1e-4 with backbone lr x 0.1 and norm clipping at 0.01;
    ADE20K: 150 classes (100 things first), 720k poly iterations of 16
    images; COCO: mmdet's 75 epochs of 16."""
    cfg = _config(name)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    assert isinstance(model, MaskFormerPISR)
    assert model.backbone.depth == depth
    head = model.panoptic_head
    assert (head.num_things_classes, head.num_stuff_classes) == classes
    assert head.num_queries == 100
    assert head.class_weight == [1.0] * sum(classes) + [0.1]
    assert (head.loss_cls.loss_weight, head.loss_mask.loss_weight,
            head.loss_dice.loss_weight) == (1.0, 20.0, 1.0)
    fusion = model.panoptic_fusion_head
    assert (fusion.num_things_classes, fusion.num_stuff_classes) == classes
    assert (fusion.test_cfg.object_mask_thr,
            fusion.test_cfg.iou_thr) == (0.8, 0.8)
    assert model.pisr.num_semantic == sum(classes)
    assert (model.num_instances, model.gamma) == (50, 1.0)
    assert cfg.model.pisr.norm_cfg.type == 'SyncBN'
    assert cfg.model.backbone.init_cfg.checkpoint == \
        f'torchvision://resnet{depth}'
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 1e-4, 1e-4)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == \
        0.1
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.01
    assert cfg.train_dataloader.batch_size == batch
    if 'ade20k' in name:
        assert cfg.train_dataloader.dataset.type == 'ADE20KPanopticDataset'
        assert cfg.train_cfg.max_iters == 720000
        assert cfg.param_scheduler.type == 'PolyLR'
        assert cfg.param_scheduler.power == 0.9
    else:
        assert cfg.train_cfg.max_epochs == 75
        assert cfg.param_scheduler.milestones == [50]


def test_synthetic_config_runs_through_runner(synthetic_root, tmp_path):
    """Three iterations of configs/pisr/maskformer_r18_synthetic.py (its
    pipeline and model) on the 64x64 test set: the final and initial
    losses are logged and finite."""
    cfg = _config('maskformer_r18_synthetic')
    assert cfg.model.pisr.num_instances == 10
    assert cfg.model.panoptic_head.num_queries == 20
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
    names = FINAL_LOSSES | {f'{name}_init' for name in FINAL_LOSSES}
    names |= {f'd1.{name}_init' for name in FINAL_LOSSES}
    for name in names:
        history = np.asarray(scalars[f'train/{name}'].data[0])
        assert len(history) == 3 and np.isfinite(history).all(), name
