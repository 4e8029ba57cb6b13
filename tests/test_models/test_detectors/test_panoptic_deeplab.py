# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PanopticDeepLab detector: loss, predict (rescale, offsets, batch of
different sizes), gradients, and a tiny training through the Runner."""
import copy

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData

from mmpanoptic_plus.datasets.transforms.panoptic_deeplab_targets import \
    PANOPTIC_DEEPLAB_TARGET_PAD_VALUES
from mmpanoptic_plus.models.detectors import PanopticDeepLab
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

DENSE_KEYS = list(PANOPTIC_DEEPLAB_TARGET_PAD_VALUES)
NORM = dict(type='BN', requires_grad=True)
CHANNELS = (64, 128, 256, 512)


def tiny_model_cfg(num_things=2, num_stuff=1):
    """R18 at output stride 16 with tiny decoders (random init)."""
    return dict(
        type='PanopticDeepLab',
        num_things_classes=num_things,
        num_stuff_classes=num_stuff,
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
        test_cfg=dict(stuff_area_limit=4))


def _targets(sample, height, width, seed):
    gen = torch.Generator().manual_seed(seed)
    sample.gt_sem_seg = PixelData(
        sem_seg=torch.randint(0, 3, (1, height, width), generator=gen,
                              dtype=torch.uint8))
    for key, channels in (('gt_center_heatmap', 1), ('gt_center_weights', 1),
                          ('gt_offsets', 2), ('gt_offset_weights', 1),
                          ('gt_semantic_weights', 1)):
        sample.set_field(
            PixelData(data=torch.rand(channels, height, width,
                                      generator=gen)), key)
    return sample


def _batch(shapes, with_targets=True):
    inputs, samples = [], []
    for index, ((height, width), ori_shape) in enumerate(shapes):
        inputs.append(
            torch.randint(0, 255, (3, height, width), dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=ori_shape))
        if with_targets:
            _targets(sample, height, width, index)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_loss_and_gradient_reach_every_parameter():
    model = MODELS.build(tiny_model_cfg())
    assert isinstance(model, PanopticDeepLab)
    model.train()
    data = model.data_preprocessor(
        _batch([((40, 56), (40, 56)), ((64, 48), (64, 48))]), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_sem', 'loss_center', 'loss_offset'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_loss_without_things_has_no_nan():
    model = MODELS.build(tiny_model_cfg())
    model.train()
    batch = _batch([((32, 32), (32, 32))] * 2)
    for sample in batch['data_samples']:
        sample.gt_center_weights.data.zero_()
        sample.gt_offset_weights.data.zero_()
        sample.gt_center_heatmap.data.zero_()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert losses['loss_center'].item() == 0
    assert losses['loss_offset'].item() == 0
    assert torch.isfinite(losses['loss_sem'])


def test_predict_batch_of_different_sizes_returns_ori_shape():
    model = MODELS.build(tiny_model_cfg())
    model.eval()
    shapes = [((40, 56), (80, 112)), ((64, 48), (64, 48))]
    data = model.data_preprocessor(_batch(shapes, with_targets=False))
    assert data['inputs'].shape[-2:] == (64, 64)
    with torch.no_grad():
        results = model(**data, mode='predict')
    for sample, (_, ori_shape) in zip(results, shapes):
        panoptic = sample.pred_panoptic_seg.sem_seg
        semantic = sample.pred_sem_seg.sem_seg
        assert panoptic.shape == (1, ) + ori_shape
        assert semantic.shape == (1, ) + ori_shape
        assert panoptic.dtype == torch.int64
        labels = panoptic % INSTANCE_OFFSET
        assert labels.min() >= 0 and labels.max() <= 3  # 3 = void
    with torch.no_grad():
        raw = model(data['inputs'], mode='tensor')
    assert [t.shape for t in raw] == [(2, 3, 16, 16), (2, 1, 16, 16),
                                      (2, 2, 16, 16)]


def test_predict_maps_crop_rescale_and_offset_scaling(monkeypatch):
    """Constant stride-4 outputs: offsets of 1 stride-4 pixel are 4 input
    pixels, and twice that in an image shown at 2x its input size."""
    model = MODELS.build(tiny_model_cfg())
    model.eval()
    batch_inputs = torch.zeros(2, 3, 32, 32)
    sem = torch.zeros(2, 3, 8, 8)
    sem[:, 2] = 5.  # stuff everywhere...
    sem[:, 2, :, 6:] = -5.  # ...except in the padding columns
    offsets = torch.ones(2, 2, 8, 8)
    monkeypatch.setattr(
        model, '_forward', lambda inputs, samples=None:
        (sem, torch.zeros(2, 1, 8, 8), offsets))
    samples = [
        DetDataSample(metainfo=dict(img_shape=(16, 24),
                                    ori_shape=(32, 48))),
        DetDataSample(metainfo=dict(img_shape=(24, 16),
                                    ori_shape=(24, 16)))
    ]
    maps = model.predict_maps(batch_inputs, samples, rescale=True)
    assert maps[0][0].shape == (1, 3, 32, 48)
    assert maps[1][0].shape == (1, 3, 24, 16)
    assert torch.allclose(maps[0][2], torch.full((1, 2, 32, 48), 8.))
    assert torch.allclose(maps[1][2], torch.full((1, 2, 24, 16), 4.))
    # the padding (columns >= 24 of the input) was cropped before resizing:
    # image 0 keeps stuff logits everywhere
    assert (maps[0][0][:, 2] > 0).all()
    no_rescale = model.predict_maps(batch_inputs, samples, rescale=False)
    assert no_rescale[0][0].shape == (1, 3, 16, 24)


def test_predict_groups_pixels_per_image(monkeypatch):
    """Hand-built ori-size maps: two things split by their offsets in image
    0 (different size from image 1, which is stuff only)."""
    model = MODELS.build(tiny_model_cfg())
    model.eval()
    # image 0: 12x20, class 0 (thing) everywhere; centers at (6, 4), (6, 15)
    sem0 = torch.zeros(1, 3, 12, 20)
    sem0[:, 0] = 4.
    center0 = torch.zeros(1, 1, 12, 20)
    center0[0, 0, 6, 4] = 0.9
    center0[0, 0, 6, 15] = 0.8
    ys, xs = torch.meshgrid(
        torch.arange(12.), torch.arange(20.), indexing='ij')
    # every pixel of columns < 8 votes for the left center, others right
    target_x = torch.where(xs < 8, torch.tensor(4.), torch.tensor(15.))
    offsets0 = torch.stack([6 - ys, target_x - xs])[None]
    # image 1: 10x10, stuff (class 2) only, a strong but useless center
    sem1 = torch.zeros(1, 3, 10, 10)
    sem1[:, 2] = 4.
    center1 = torch.zeros(1, 1, 10, 10)
    center1[0, 0, 5, 5] = 1.
    outputs = [(sem0, center0, offsets0),
               (sem1, center1, torch.zeros(1, 2, 10, 10))]
    monkeypatch.setattr(model, 'predict_maps', lambda *args: outputs)
    samples = [DetDataSample(), DetDataSample()]
    model.predict(torch.zeros(2, 3, 32, 32), samples)
    panoptic0 = samples[0].pred_panoptic_seg.sem_seg[0]
    expected = torch.where(xs < 8, torch.tensor(1), torch.tensor(2))
    expected = expected.long() * INSTANCE_OFFSET  # label 0, ids 1 and 2
    assert torch.equal(panoptic0, expected)
    panoptic1 = samples[1].pred_panoptic_seg.sem_seg[0]
    assert torch.equal(panoptic1, torch.full((10, 10), 2))  # stuff, id 0
    assert torch.equal(samples[1].pred_sem_seg.sem_seg[0],
                       torch.full((10, 10), 2))


def test_bad_configs_are_explained():
    cfg = tiny_model_cfg()
    cfg['semantic_head']['num_classes'] = 7
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    cfg['test_cfg'] = dict(threshold=0.3)
    with pytest.raises(KeyError, match='test_cfg'):
        MODELS.build(cfg)


def test_panoptic_fusion_head_default_and_choice(monkeypatch):
    """Default: the majority vote with test_cfg's stuff area limit, same
    maps as before; a configured head changes the fusion."""
    from mmpanoptic_plus.models.panoptic_fusion_heads import \
        MajorityVoteFusionHead
    from mmpanoptic_plus.models.postprocess import \
        panoptic_deeplab_postprocess
    model = MODELS.build(tiny_model_cfg())
    head = model.panoptic_fusion_head
    assert type(head) is MajorityVoteFusionHead
    assert (head.num_things_classes, head.num_stuff_classes,
            head.stuff_area_limit) == (2, 1, 4)
    assert not any('panoptic_fusion_head' in key
                   for key in model.state_dict())
    # image: thing class 0 on columns 0-2 (one center), a class-1 column 5
    # that joins the only instance (the vote keeps class 0), stuff class 2
    # on the 16 pixels of columns 3, 4, 6, 7
    sem = torch.zeros(1, 3, 4, 8)
    sem[:, 0, :, :3] = 5.
    sem[:, 2, :, 3:] = 5.
    sem[:, 2, :, 5] = -5.
    sem[:, 1, :, 5] = 5.
    center = torch.zeros(1, 1, 4, 8)
    center[0, 0, 2, 1] = 0.9
    ys, xs = torch.meshgrid(torch.arange(4.), torch.arange(8.),
                            indexing='ij')
    offsets = torch.stack([2 - ys, 1 - xs])[None]
    monkeypatch.setattr(model, 'predict_maps',
                        lambda *args: [(sem, center, offsets)])
    samples = model.predict(torch.zeros(1, 3, 32, 32), [DetDataSample()])
    panoptic = samples[0].pred_panoptic_seg.sem_seg[0]
    expected = panoptic_deeplab_postprocess(
        sem, center, offsets, 2, stuff_area_limit=4, void_label=3)
    assert torch.equal(panoptic, expected.panoptic_seg[0])
    stuff_columns = [3, 4, 6, 7]
    assert (panoptic[:, [0, 1, 2, 5]] == INSTANCE_OFFSET).all()
    assert (panoptic[:, stuff_columns] == 2).all()
    # 16 stuff pixels: a head with limit 17 voids them, test_cfg unset
    cfg = tiny_model_cfg()
    cfg.pop('test_cfg')
    cfg['panoptic_fusion_head'] = dict(
        type='MajorityVoteFusionHead', stuff_area_limit=17)
    strict = MODELS.build(cfg)
    assert strict.panoptic_fusion_head.stuff_area_limit == 17
    monkeypatch.setattr(strict, 'predict_maps',
                        lambda *args: [(sem, center, offsets)])
    panoptic = strict.predict(torch.zeros(1, 3, 32, 32),
                              [DetDataSample()])[0].pred_panoptic_seg
    panoptic = panoptic.sem_seg[0]
    assert (panoptic[:, [0, 1, 2, 5]] == INSTANCE_OFFSET).all()
    assert (panoptic[:, stuff_columns] == 3).all()


def test_panoptic_fusion_head_config_errors():
    cfg = tiny_model_cfg()  # test_cfg sets stuff_area_limit=4
    cfg['panoptic_fusion_head'] = dict(
        type='MajorityVoteFusionHead', stuff_area_limit=17)
    with pytest.raises(ValueError, match='stuff_area_limit'):
        MODELS.build(cfg)
    cfg['panoptic_fusion_head'] = dict(
        type='MajorityVoteFusionHead', num_things_classes=5)
    with pytest.raises(ValueError, match='num_things_classes'):
        MODELS.build(cfg)


def test_tiny_training_through_runner_reduces_loss(synthetic_root, tmp_path):
    """~30 iterations on 8 synthetic 64x64 images: the loss goes down."""
    init_default_scope('mmpanoptic_plus')
    model = tiny_model_cfg(num_things=3, num_stuff=2)
    model['data_preprocessor']['pad_size_divisor'] = 16
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations', with_panoptic_seg=False),
        dict(type='GeneratePanopticDeepLabTargets', sigma=2,
             small_instance_area=64),
        dict(type='PackPanopticInputs', dense_target_keys=DENSE_KEYS)
    ]
    cfg = Config(
        dict(
            default_scope='mmpanoptic_plus',
            work_dir=str(tmp_path),
            model=model,
            train_dataloader=dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                dataset=dict(
                    type='SyntheticPanopticDataset',
                    data_root=str(synthetic_root),
                    ann_file='annotations/panoptic_train.json',
                    data_prefix=dict(
                        img='train/', seg='annotations/panoptic_train/'),
                    filter_cfg=dict(filter_empty_gt=False),
                    pipeline=pipeline)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=30),
            optim_wrapper=dict(
                type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.)),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(type='CheckpointHook', interval=1000)),
            log_processor=dict(by_epoch=False, window_size=1),
            randomness=dict(seed=0),
            log_level='WARNING'))
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    # one thread: on a shared small CPU, oversubscribed BLAS threads make
    # this run several times slower
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train()
    finally:
        torch.set_num_threads(num_threads)
    history = np.asarray(runner.message_hub.get_scalar('train/loss').data[0])
    assert len(history) == 30 and np.isfinite(history).all()
    first, last = history[:5].mean(), history[-5:].mean()
    assert last < 0.8 * first, (first, last)
