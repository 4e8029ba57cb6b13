# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""configs/pss/pss_r50_fpn_60k_voc.py against PSS Appendix A.7's VOC
settings; the model builds and its training pipeline runs on the VOC
converter's hand-made sample."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from mmpanoptic_plus.datasets import VOCPanopticDataset
from mmpanoptic_plus.registry import DATASETS, MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(str(REPO / 'configs' / 'pss' /
                               'pss_r50_fpn_60k_voc.py'))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_voc_config_has_the_papers_settings(cfg):
    head = cfg.model.panoptic_head
    assert (head.num_things, head.num_stuff) == (20, 1)
    assert head.num_clusters == 64  # K on VOC
    assert head.small_area == 512  # A_p on VOC
    # shared with Cityscapes (A.7: "for all the experiments")
    assert head.embed_dim == 64 and head.kmeans_iters == 10
    assert head.loss_segsort.concentration == 8 and head.seed_radius == 16
    assert [head.loss_segsort.loss_weight, head.loss_cls.loss_weight,
            head.loss_seed_offset.loss_weight,
            head.loss_seed_heatmap.loss_weight] == [1, 1, 0.1, 1]
    test = cfg.model.test_cfg
    assert test.dynamic_partition and test.partition_threshold == 0.99
    assert test.num_clusters == 64
    assert cfg.model.backbone.depth == 50
    assert cfg.train_cfg.max_iters == 60000
    assert cfg.param_scheduler[0].type == 'PolyLR'
    assert cfg.param_scheduler[0].end == 60000
    assert cfg.train_dataloader.batch_size * 4 == 12  # 4 GPUs x 3 images
    assert cfg.auto_scale_lr.base_batch_size == 12
    crop = [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'RandomCrop'][0]
    assert tuple(crop.crop_size) == (512, 512)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.002, 0.9, 0.0001)
    # trained on train_aug, evaluated on val
    assert cfg.train_dataloader.dataset.type == 'VOCPanopticDataset'
    assert cfg.train_dataloader.dataset.ann_file == \
        'voc_panoptic_train_aug.json'
    assert cfg.test_dataloader.dataset.ann_file == 'voc_panoptic_val.json'


def test_voc_model_builds(cfg):
    model = MODELS.build(cfg.model)
    head = model.panoptic_head
    assert head.num_classes == 21 and head.num_clusters == 64
    assert head.classifier[-1].out_features == 21
    assert model.test_cfg['num_clusters'] == 64


def test_voc_training_pipeline_on_the_sample(cfg, tmp_path):
    sample = _load(
        'voc_converter_sample_for_pss',
        REPO / 'tests' / 'test_tools' / 'test_voc_panoptic_converter.py')
    converter = _load(
        'voc_panoptic_converter_for_pss',
        REPO / 'tools' / 'dataset_converters' / 'voc_panoptic.py')
    try:
        voc, sbd = sample.write_sample(tmp_path)
        converter.convert_voc_panoptic(str(voc), str(sbd),
                                       splits=['train_aug'])
    finally:
        del sys.modules['voc_converter_sample_for_pss']
        del sys.modules['voc_panoptic_converter_for_pss']
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(voc) + '/'
    dataset = DATASETS.build(dataset_cfg)
    assert type(dataset) is VOCPanopticDataset
    data = dataset[0]['data_samples']  # image A: car, 2 persons, background
    segments = data.gt_segments
    ids = data.gt_segment_ids.data[0].numpy()
    assert max(data.img_shape) <= 512
    # instances first, then the background as the one stuff segment (label
    # 20); every segment still owning pixels after the crop
    labels = segments.labels.tolist()
    assert labels[-1] == 20 and not segments.is_thing[-1]
    assert set(labels[:-1]) <= {6, 14} and segments.is_thing[:-1].all()
    assert set(np.unique(ids)) <= set(range(-1, len(labels)))
    # exactly the void pixels (band, thing pixels of no instance) are no
    # segment
    np.testing.assert_array_equal(ids == -1,
                                  data.gt_sem_seg.sem_seg[0].numpy() == 255)
