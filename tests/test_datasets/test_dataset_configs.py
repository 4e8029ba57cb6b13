# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""configs/_base_/datasets/*: built with the documented data_root override
on the synthetic set and the real fixtures."""
import copy
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / \
    'datasets'


def override_root(cfg: Config, data_root: str) -> None:
    """What a child config does (see the comment in the base configs)."""
    cfg.data_root = data_root
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader


def test_synthetic_config(synthetic_root):
    cfg = Config.fromfile(str(CONFIGS / 'synthetic_panoptic.py'))
    assert cfg.data_root == 'data/synthetic/'
    assert cfg.val_evaluator == dict(type='PanopticQualityMetric')
    assert cfg.test_evaluator == cfg.val_evaluator
    override_root(cfg, str(synthetic_root) + '/')

    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)
    assert (len(train), len(val)) == (8, 4)
    batch = pseudo_collate([train[i] for i in range(2)])
    assert len(batch['inputs']) == 2
    for sample in batch['data_samples']:
        assert 'gt_panoptic_seg' not in sample  # train: not loaded
        assert sample.gt_sem_seg.shape == (64, 64)
    sample = val[0]['data_samples']
    assert sample.gt_panoptic_seg.sem_seg.shape == (1, 64, 64)
    assert sample.seg_map_path.startswith(str(synthetic_root))
    assert {'segments_info', 'img_id', 'ori_shape'} <= set(
        sample.metainfo)


def test_cityscapes_config_pipelines(fixtures_dir):
    cfg = Config.fromfile(str(CONFIGS / 'cityscapes_panoptic.py'))
    assert cfg.val_dataloader.dataset.ann_file == \
        'gtFine/cityscapes_panoptic_val_trainId.json'
    root = str(fixtures_dir / 'cityscapes_panoptic_sample') + '/'
    override_root(cfg, root)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(
            ann_file='gtFine/cityscapes_panoptic_dummy_trainId.json',
            data_prefix=dict(
                img='leftImg8bit/',
                seg='gtFine/cityscapes_panoptic_dummy_trainId/'),
            img_name_template='{stem}_leftImg8bit.png')
    train = DATASETS.build(cfg.train_dataloader.dataset)
    for _ in range(2):
        sample = train[0]['data_samples']
        h, w = sample.img_shape
        # rescaled x0.5-2 of 2048x1024 (800x800 -> 512..2048 side), then
        # cropped to at most 512x1024
        assert h <= 512 and w <= 1024
        assert sample.gt_sem_seg.shape == (h, w)
        assert sample.gt_instances.masks.masks.shape[1:] == (h, w)
        assert 'gt_panoptic_seg' not in sample
    val = DATASETS.build(cfg.val_dataloader.dataset)
    sample = val[0]['data_samples']
    assert sample.img_shape == (800, 800)  # full resolution
    assert sample.gt_panoptic_seg.shape == (800, 800)


def test_coco_config_pipelines(fixtures_dir):
    cfg = Config.fromfile(str(CONFIGS / 'coco_panoptic.py'))
    root = str(fixtures_dir / 'coco_panoptic_sample') + '/'
    override_root(cfg, root)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(
            ann_file='panoptic_examples.json',
            data_prefix=dict(img='input_images/', seg='panoptic_examples/'))
    val = DATASETS.build(copy.deepcopy(cfg.val_dataloader.dataset))
    sample = val[0]['data_samples']
    assert sample.ori_shape == (427, 640)
    assert sample.img_shape == (800, 1199)  # resized for the network
    # ground truth stays at the original size, where predictions are scored
    assert sample.gt_panoptic_seg.shape == (427, 640)
    assert sample.gt_sem_seg.shape == (427, 640)
    assert len(sample.segments_info) == 18
    train = DATASETS.build(cfg.train_dataloader.dataset)
    sample = train[0]['data_samples']
    assert sample.gt_sem_seg.shape == sample.img_shape
    assert len(sample.ignored_instances) == 1  # the crowd of people
    labels = sample.gt_instances.labels.numpy()
    assert (labels < 80).all() and np.isin(0, labels)
