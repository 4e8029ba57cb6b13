# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RealTimePanoptic detector: predict on a batch of 2 (incl. a 50x50 image),
finite losses without things, raw forward, configs, and a tiny training
through the Runner whose loss falls."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
REPO_ROOT = Path(__file__).resolve().parents[3]

TINY_MODEL = dict(
    type='RealTimePanoptic',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN',
        in_channels=[16, 32, 64, 128],
        out_channels=32,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='RTPHead',
        num_things=3,
        num_stuff=2,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        loss_mask=dict(type='RTPMaskLoss', max_queries_per_img=8)),
    test_cfg=dict(max_per_img=10, stuff_area_limit=16, score_thr=0.0))


def build_model(**head):
    cfg = copy.deepcopy(TINY_MODEL)
    cfg['bbox_head'].update(head)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def data_sample(height, width, boxes, labels):
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
    masks = np.zeros((len(boxes), height, width), np.uint8)
    sem = torch.full((1, height, width), 4, dtype=torch.long)
    for i, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        masks[i, y1:y2, x1:x2] = 1
        sem[0, y1:y2, x1:x2] = label
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, height, width))
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


def batch(samples):
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, ) + s.metainfo['img_shape'],
                      generator=gen).to(torch.uint8) for s in samples
    ]
    return dict(inputs=inputs, data_samples=samples)


def test_predict_batch_of_two_incl_50x50():
    model = build_model().eval()
    # make boxes a few strides wide so that masks appear
    torch.nn.init.constant_(model.bbox_head.conv_reg.bias, 2.0)
    data = batch([
        data_sample(64, 48, [[4, 4, 30, 28]], [0]),
        data_sample(50, 50, [], [])
    ])
    data = model.data_preprocessor(data, False)
    assert data['inputs'].shape == (2, 3, 64, 64)
    with torch.no_grad():
        results = model(**data, mode='predict')
    for result, shape in zip(results, [(64, 48), (50, 50)]):
        pan = result.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, ) + shape and pan.dtype == torch.int64
        labels = pan % INSTANCE_OFFSET
        assert ((labels >= 0) & (labels <= 5)).all()  # 5 = void
        # stuff segments carry instance id 0
        assert (pan[labels >= 3] // INSTANCE_OFFSET == 0).all()
        instances = result.pred_instances
        assert instances.masks.shape[1:] == shape
        assert instances.masks.dtype == torch.bool
        assert len(instances.bboxes) == len(instances.scores) <= 10
    # the semantic part agrees with the argmax of the semantic logits where
    # no instance was pasted
    raw = model(data['inputs'], mode='tensor')
    assert len(raw) == 5 and raw[3].shape == (2, 6, 16, 16)
    assert raw[4].shape == (2, 5, 16, 16)


def test_loss_finite_without_things_and_with_crowd():
    model = build_model().train()
    samples = [data_sample(64, 64, [], []), data_sample(50, 50, [], [])]
    samples[1].ignored_instances = InstanceData(
        bboxes=torch.tensor([[0., 0., 20., 20.]]),
        labels=torch.tensor([1]),
        masks=BitmapMasks(np.ones((1, 50, 50), np.uint8), 50, 50))
    data = model.data_preprocessor(batch(samples), True)
    losses = model(**data, mode='loss')
    assert {'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_levelness',
            'loss_sem', 'loss_mask'} == set(losses)
    for name, value in losses.items():
        assert torch.isfinite(value), name
    total = sum(losses.values())
    total.backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize('name', [
    'rtp_r50_fpn_48k_cityscapes', 'rtp_r18_fpn_48k_cityscapes',
    'rtp_r34_fpn_48k_cityscapes', 'rtp_r50_fpn_48k_cityscapes_weak',
    'rtp_r50_fpn_180k_coco', 'rtp_r18_synthetic',
    'rtp_r50_fpn_head128_48k_cityscapes'
])
def test_configs(name):
    cfg = Config.fromfile(
        str(REPO_ROOT / 'configs' / 'realtime_panoptic' / f'{name}.py'))
    head = cfg.model.bbox_head
    assert cfg.model.type == 'RealTimePanoptic'
    assert head.type == 'RTPHead'
    if 'cityscapes' in name:
        assert (head.num_things, head.num_stuff) == (8, 11)
        assert cfg.optim_wrapper.optimizer.lr == 0.013
        assert cfg.train_cfg.max_iters == 48000
        assert cfg.param_scheduler[1].milestones == [36000, 44000]
        assert cfg.train_dataloader.batch_size == 1
        assert cfg.model.backbone.norm_cfg.requires_grad is False
        assert cfg.model.backbone.norm_eval is True
        assert head.loss_semantic.loss_weight == 1.0
        crop = [t for t in cfg.train_pipeline if t.type == 'RandomCrop'][0]
        resize = [t for t in cfg.train_pipeline
                  if t.type == 'RandomResize'][0]
        assert crop.crop_size == (1800, 900)
        assert resize.ratio_range == (0.7, 1.3)
        # Sec. 5.3: crop 1800x900 first, then rescale the crop
        types = [t.type for t in cfg.train_pipeline]
        assert types.index('RandomCrop') < types.index('RandomResize')
        assert resize.scale == (1800, 900)
    if 'coco' in name:
        assert (head.num_things, head.num_stuff) == (80, 53)
        assert head.loss_semantic.loss_weight == 0.4
        assert cfg.optim_wrapper.optimizer.lr == 0.01
        assert cfg.train_cfg.max_iters == 180000
        assert cfg.train_dataloader.batch_size == 2
        # Sec. 5.3-5.4: lr steps 120k / 160k; test images at a longer side
        # of 1333
        assert cfg.param_scheduler[1].milestones == [120000, 160000]
        for loader in (cfg.val_dataloader, cfg.test_dataloader):
            resize = [t for t in loader.dataset.pipeline
                      if t.type == 'Resize'][0]
            assert resize.scale == (1333, 1333) and resize.keep_ratio
    if name != 'rtp_r18_synthetic':
        # paper configs: BN frozen (Sec. 5.3), nothing else; focal loss over
        # all locations (Sec. 4.2); Eq. 17-18 without P_sem
        assert cfg.model.backbone.frozen_stages == -1
        assert head.cls_loss_avg == 'num_locations'
        if head.loss_mask:
            assert head.loss_mask.use_semantic_prob is False
    if 'weak' in name:
        assert head.assigner.use_masks is False and head.loss_mask is None
    else:
        assert head.assigner.use_masks is True and head.loss_mask
    depth = {'r18': 18, 'r34': 34, 'r50': 50}[name.split('_')[1]]
    assert cfg.model.backbone.depth == depth
    # the test_cfg keys are those of the post-processing
    from mmpanoptic_plus.models.postprocess import RTP_TEST_CFG
    assert set(cfg.model.test_cfg) <= set(RTP_TEST_CFG)
    assert head.feat_channels == (128 if 'head128' in name else
                                  cfg.model.neck.out_channels)
    if name == 'rtp_r18_synthetic':
        # buildable (random init, no download); small enough to ship: at
        # most 10 MB as fp16 (2 bytes a parameter)
        model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) < 5e6


def test_tiny_training_through_runner_lowers_loss(tmp_path, synthetic_root):
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        str(REPO_ROOT / 'configs' / 'realtime_panoptic' /
            'rtp_r18_synthetic.py'))
    cfg.model = copy.deepcopy(TINY_MODEL)
    cfg.work_dir = str(tmp_path)
    root = str(synthetic_root) + '/'
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = root
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.test_dataloader = None
    cfg.test_cfg = None
    cfg.test_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=30)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 3e-3
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1000, save_last=False)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.get_scalar('train/loss').data[0]
    history = np.asarray(history)
    assert len(history) == 30 and np.isfinite(history).all()
    assert history[-5:].mean() < 0.8 * history[:5].mean()
