# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE detector: a tiny model's loss and predict (panoptic map at
ori_shape), the configs of configs/ciae/ (they parse, name the paper's
settings, and the synthetic one builds)."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import CIAE
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                      'ciae')
GN4 = dict(type='GN', num_groups=4, requires_grad=True)


def tiny_model():
    cfg = dict(
        type='CIAE',
        data_preprocessor=dict(
            type='PanopticDataPreprocessor',
            pad_size_divisor=32,
            dense_target_pad_values=dict(gt_segment_ids=-1)),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False),
        neck=dict(
            type='FPN',
            in_channels=[8, 16, 32, 64],
            out_channels=8,
            start_level=0,
            add_extra_convs='on_output',
            num_outs=6),
        bbox_head=dict(
            type='CIAEHead',
            num_things=2,
            num_stuff=2,
            in_channels=8,
            embed_dim=4,
            feat_channels=8,
            stacked_convs=1,
            norm_cfg=GN4,
            embedding_branch=dict(inner_channels=8, norm_cfg=GN4),
            memory_total_iters=10),
        test_cfg=dict(score_thr=0.0, max_per_img=5, stuff_area_limit=0))
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(height=50, width=70):
    inputs, samples = [], []
    for img_id in range(2):
        inputs.append(torch.randint(0, 255, (3, height, width),
                                    dtype=torch.uint8))
        ids = torch.full((1, height, width), 3, dtype=torch.long)
        ids[0, :20] = 2
        ids[0, 25:40, 10:30] = 0
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
        mask = np.zeros((1, height, width), np.uint8)
        mask[0, 25:40, 10:30] = 1
        from mmdet.structures.mask import BitmapMasks
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 25., 30., 40.]]),
            labels=torch.tensor([img_id]),
            masks=BitmapMasks(mask, height, width))
        sample.gt_segment_ids = PixelData(data=ids)
        sample.gt_segments = InstanceData(
            labels=torch.tensor([img_id, 2, 3]),
            is_thing=torch.tensor([True, False, False]))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_loss_and_predict():
    model = tiny_model()
    assert isinstance(model, CIAE)
    model.train()
    data = model.data_preprocessor(_batch(), True)
    assert data['inputs'].shape[-2:] == (64, 96)
    assert data['data_samples'][0].gt_segment_ids.data.shape == (1, 64, 96)
    losses = model(**data, mode='loss')
    assert {'loss_cae', 'loss_iae', 'loss_cls'} <= set(losses)
    sum(losses.values()).backward()
    model.eval()
    data = model.data_preprocessor(_batch(), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
        raw = model(data['inputs'], mode='tensor')
    assert len(raw) == 4 and raw[3].shape == (2, 4, 16, 24)
    for result in results:
        pan = result.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, 50, 70) and pan.dtype == torch.long
        labels = pan % 1000
        assert ((labels >= 0) & (labels <= 4)).all()
        assert len(result.pred_instances) <= 5


def test_predict_with_embedding_map():
    """``test_cfg.with_embedding`` writes the unit embedding map over the
    valid image at stride 4 (the normalised raw head output), off by
    default; the panoptic result does not change."""
    torch.manual_seed(0)
    model = tiny_model().eval()
    batch = _batch()  # random images: the same ones for both runs
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        plain = model(**data, mode='predict')
        assert all('pred_embedding' not in r for r in plain)
        raw = model(data['inputs'], mode='tensor')[3]
        model.bbox_head.test_cfg['with_embedding'] = True
        data = model.data_preprocessor(batch, False)
        results = model(**data, mode='predict')
    for b, result in enumerate(results):
        embedding = result.pred_embedding.embedding
        # img_shape (50, 70) / 4, rounded up; the padding (64, 96) is cut
        assert embedding.shape == (4, 13, 18)
        torch.testing.assert_close(embedding.norm(dim=0), torch.ones(13, 18))
        expected = raw[b, :, :13, :18]
        torch.testing.assert_close(embedding,
                                   expected / expected.norm(dim=0))
        assert torch.equal(result.pred_panoptic_seg.sem_seg,
                           plain[b].pred_panoptic_seg.sem_seg)


@pytest.mark.parametrize('name', [
    'ciae_r50_fpn_90k_coco.py', 'ciae_r50_fpn_90k_coco_test512.py',
    'ciae_r50_fpn_90k_coco_test640.py', 'ciae_r101_fpn_90k_coco.py',
    'ciae_r50_fpn_cityscapes.py', 'ciae_r18_synthetic.py',
    'ciae_r50_fpn_head128_90k_coco.py'
])
def test_configs_parse_with_paper_settings(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    head = cfg.model.bbox_head
    assert cfg.model.type == 'CIAE'
    assert head.embed_dim == 32
    assert head.loss_embedding.margin == 0.15
    assert head.loss_embedding.top_k == 5
    assert head.loss_embedding.alpha == 2.0
    assert head.loss_embedding.thing_weight == 5.0
    assert head.loss_embedding.box_expand == 1.5
    assert head.memory_total_iters == cfg.train_cfg.max_iters
    assert cfg.model.neck.num_outs == 6 and cfg.model.neck.start_level == 0
    if 'coco' in name:
        assert cfg.train_cfg.max_iters == 90000
        assert cfg.train_dataloader.batch_size * 8 == 16
        optimizer = cfg.optim_wrapper.optimizer
        assert (optimizer.type, optimizer.lr, optimizer.momentum,
                optimizer.weight_decay) == ('SGD', 0.01, 0.9, 1e-4)
        steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
        assert steps[0].milestones == [60000, 80000]


def test_synthetic_config_builds():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'ciae_r18_synthetic.py'))
    model = MODELS.build(cfg.model)
    params = sum(p.numel() for p in model.parameters())
    # fp16 checkpoint <= 8 MB
    assert params * 2 < 8 * 1024 * 1024
