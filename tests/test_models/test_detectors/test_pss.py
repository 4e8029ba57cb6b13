# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS detector: loss/predict (with the embedding map), the paper and
ablation configs against the paper's settings, and a Runner smoke run of the
synthetic config."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import PSS
from mmpanoptic_plus.models.heads import PSSHead
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
CONFIGS = Path(__file__).parents[3] / 'configs' / 'pss'


def _config(name):
    return Config.fromfile(str(CONFIGS / f'{name}.py'))


def _tiny_model():
    cfg = copy.deepcopy(_config('pss_r18_synthetic').model)
    cfg.backbone.base_channels = 8
    cfg.neck.update(in_channels=[8, 16, 32, 64], out_channels=8)
    for branch in ('embedding_branch', 'seeding_branch'):
        cfg.panoptic_head[branch].update(
            in_channels=8, feat_channels=8,
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    cfg.panoptic_head.update(embed_dim=8, classifier_channels=8,
                             num_clusters=8)
    cfg.test_cfg.update(num_clusters=16)
    return MODELS.build(cfg)


def _sample(height=64, width=64):
    ds = DetDataSample(
        metainfo=dict(img_shape=(height - 4, width), ori_shape=(height - 4,
                                                                width),
                      pad_shape=(height, width), scale_factor=(1., 1.)))
    ids = torch.full((1, height, width), 1)
    ids[0, 8:30, 8:30] = 0
    ids[0, height - 4:] = -1  # padding
    ds.gt_segment_ids = PixelData(data=ids)
    ds.gt_segments = InstanceData(labels=torch.tensor([0, 3]),
                                  is_thing=torch.tensor([True, False]))
    ds.gt_instances = InstanceData(
        bboxes=torch.tensor([[8., 8., 30., 30.]]), labels=torch.tensor([0]))
    return ds


def test_loss_and_predict_with_embedding_map():
    torch.manual_seed(0)
    model = _tiny_model()
    assert isinstance(model, PSS) and isinstance(model.panoptic_head,
                                                 PSSHead)
    inputs = torch.randn(2, 3, 64, 64)
    losses = model.loss(inputs, [_sample(), _sample()])
    assert set(losses) == {'loss_segsort', 'loss_segment_cls',
                           'loss_seed_heatmap', 'loss_seed_offset'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs[:1], [_sample()])
    pan = results[0].pred_panoptic_seg.sem_seg
    assert pan.shape == (1, 60, 64) and pan.dtype == torch.long
    embedding = results[0].pred_embedding.embedding
    assert embedding.shape == (8, 15, 16)  # img_shape / 4, not the padding
    torch.testing.assert_close(embedding.norm(dim=0), torch.ones(15, 16))
    model.test_cfg['with_embedding'] = False
    with torch.no_grad():
        results = model.predict(inputs[:1], [_sample()])
    assert 'pred_embedding' not in results[0]
    outs = model._forward(inputs[:1])
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 1, 16, 16),
                                              (1, 2, 16, 16)]


def test_cityscapes_config_has_the_papers_settings():
    cfg = _config('pss_r50_fpn_90k_cityscapes')
    head = cfg.model.panoptic_head
    assert cfg.model.backbone.depth == 50
    assert (head.num_things, head.num_stuff) == (8, 11)
    for branch in (head.embedding_branch, head.seeding_branch):
        assert branch.type == 'UPSNetSemanticHead'
        assert branch.num_convs == 3 and branch.conv_cfg.type == 'DCN'
        assert (branch.start_level, branch.end_level) == (0, 4)
    assert head.embed_dim == 64 and head.num_clusters == 196
    assert head.kmeans_iters == 10 and head.small_area == 2048
    assert head.seed_radius == 16
    assert head.loss_segsort.concentration == 8
    assert [head.loss_segsort.loss_weight, head.loss_cls.loss_weight,
            head.loss_seed_offset.loss_weight,
            head.loss_seed_heatmap.loss_weight] == [1, 1, 0.1, 1]
    assert head.loss_seed_heatmap.type == 'MSELoss'
    assert head.loss_seed_offset.type == 'L1Loss'
    test = cfg.model.test_cfg
    assert test.num_clusters == 500 and test.partition_threshold == 0.99
    assert test.partition_splits == 4 and test.dynamic_partition
    assert test.stuff_area_limit == 2048 and test.thing_area_limit == 4096
    assert cfg.train_cfg.max_iters == 90000
    assert cfg.train_dataloader.batch_size * 8 == 8
    crop = [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'RandomCrop'][0]
    assert tuple(crop.crop_size) == (704, 704)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.002, 0.9, 0.0001)
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert _config('pss_r50_fpn_30k_cityscapes_ablation').train_cfg[
        'max_iters'] == 30000


@pytest.mark.parametrize('switch', [
    dict(panoptic_head=dict(small_area=None)),
    dict(test_cfg=dict(dynamic_partition=False)),
    dict(panoptic_head=dict(seeding_branch=None), test_cfg=dict(
        use_seeds=False)),
    dict(panoptic_head=dict(classifier_channels=None)),
])
def test_ablation_switches_build(switch):
    cfg = copy.deepcopy(_config('pss_r18_synthetic').model)
    for key, value in switch.items():
        cfg[key].update(value)
    model = MODELS.build(cfg)
    head = model.panoptic_head
    if 'seeding_branch' in switch.get('panoptic_head', {}):
        assert not head.with_seeding
    if 'classifier_channels' in switch.get('panoptic_head', {}):
        assert not head.with_classifier


def test_synthetic_stage_and_ablation_configs():
    """The shipped checkpoint's schedule (2000 + 1000 + 2000 iterations,
    each stage from the previous one's last weights) and the hybrid-off and
    classifier-off ablations, which differ from the first stage in A_p and
    the classifier width only."""
    first = _config('pss_r18_synthetic')
    stage2 = _config('pss_r18_synthetic_stage2')
    stage3 = _config('pss_r18_synthetic_stage3')
    assert first.train_cfg.max_iters == 2000
    assert (stage2.train_cfg.max_iters, stage3.train_cfg.max_iters) == (1000,
                                                                        2000)
    assert stage2.load_from == 'work_dirs/pss/iter_2000.pth'
    assert stage3.load_from == 'work_dirs/pss_stage2/iter_1000.pth'
    assert stage3.param_scheduler[1].end == 2000
    assert stage3.model == first.model == stage2.model
    # (config, head key, its value there, its value in the first stage)
    for name, key, off_value, on_value in (
            ('pss_r18_synthetic_hybrid-off', 'small_area', None, 512),
            ('pss_r18_synthetic_classifier-off', 'classifier_channels',
             None, 64)):
        off = _config(name)
        assert off.model.panoptic_head[key] is off_value, name
        assert first.model.panoptic_head[key] == on_value, name
        off.model.panoptic_head[key] = on_value
        assert off.model == first.model, name
        assert off.train_cfg == first.train_cfg, name
    assert MODELS.build(_config('pss_r18_synthetic_hybrid-off').model
                        ).panoptic_head.small_area is None
    assert not MODELS.build(_config('pss_r18_synthetic_classifier-off').model
                            ).panoptic_head.with_classifier


def test_synthetic_config_runs_through_runner(synthetic_root, tmp_path):
    """Three iterations of pss_r18_synthetic.py: losses finite."""
    cfg = _config('pss_r18_synthetic')
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
    for name in ('loss_segsort', 'loss_segment_cls', 'loss_seed_heatmap',
                 'loss_seed_offset'):
        history = np.asarray(scalars[f'train/{name}'].data[0])
        assert len(history) == 3 and np.isfinite(history).all(), name
