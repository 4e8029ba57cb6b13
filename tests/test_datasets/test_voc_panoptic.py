# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""VOCPanopticDataset: the class table (20 things first, then background),
loading the converter's output through LoadPanopticAnnotations, a JSON
without categories, and configs/_base_/datasets/voc_panoptic.py."""
import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from mmdet.datasets import VOCDataset
from mmengine.config import Config

from mmpanoptic_plus.datasets import VOCPanopticDataset
from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO = Path(__file__).resolve().parents[2]
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticInputs')
]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def sample():
    """The hand-made sample of the converter's tests (its maps, expected id
    PNGs and writer)."""
    module = _load(
        'voc_converter_test_sample',
        REPO / 'tests' / 'test_tools' / 'test_voc_panoptic_converter.py')
    yield module
    del sys.modules['voc_converter_test_sample']


@pytest.fixture(scope='module')
def voc_root(sample, tmp_path_factory):
    converter = _load(
        'voc_panoptic_converter_for_dataset',
        REPO / 'tools' / 'dataset_converters' / 'voc_panoptic.py')
    voc, sbd = sample.write_sample(tmp_path_factory.mktemp('voc'))
    converter.convert_voc_panoptic(str(voc), str(sbd))
    del sys.modules['voc_panoptic_converter_for_dataset']
    return voc


def dataset_cfg(root, ann_file='voc_panoptic_train_aug.json', **kwargs):
    cfg = dict(
        type='VOCPanopticDataset',
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(img='JPEGImages/', seg='voc_panoptic_train_aug/'),
        test_mode=True,
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return cfg


def test_class_table():
    meta = VOCPanopticDataset.METAINFO
    assert meta['thing_classes'] == VOCDataset.METAINFO['classes']  # mmdet
    assert meta['stuff_classes'] == ('background', )
    assert meta['classes'] == meta['thing_classes'] + ('background', )
    assert meta['category_ids'] == list(range(1, 21)) + [0]
    assert meta['palette'][0] == (128, 0, 0)  # aeroplane, VOC palette 1
    assert meta['palette'][14] == (192, 128, 128)  # person, VOC palette 15
    assert meta['palette'][20] == (0, 0, 0)  # background
    assert len(set(meta['palette'])) == 21


def test_loads_converted_sample_things_first(voc_root, sample):
    dataset = DATASETS.build(dataset_cfg(voc_root))
    assert type(dataset) is VOCPanopticDataset
    assert len(dataset) == 4
    assert dataset.metainfo['cat_ids'] == dataset.metainfo['category_ids']
    # image A: segment id -> label (car 6, persons 14, background 20,
    # VOID 255)
    data = dataset[0]['data_samples']
    label_of_id = np.array([255, 20, 6, 14, 14])
    np.testing.assert_array_equal(data.gt_sem_seg.sem_seg[0].numpy(),
                                  label_of_id[sample.EXPECTED_IDS_A])
    np.testing.assert_array_equal(data.gt_panoptic_seg.sem_seg[0].numpy(),
                                  sample.EXPECTED_IDS_A)
    instances = data.gt_instances
    assert instances.labels.tolist() == [6, 14, 14]
    assert instances.bboxes.tensor.tolist() == [[5, 1, 7, 4], [1, 1, 3, 3],
                                                [4, 4, 6, 6]]
    np.testing.assert_array_equal(
        instances.masks.masks,
        np.stack([sample.EXPECTED_IDS_A == k for k in (2, 3, 4)]))
    assert [(s['id'], s['category'], s['is_thing'], s['area'])
            for s in data.segments_info] == [(1, 20, False, 28),
                                              (2, 6, True, 5),
                                              (3, 14, True, 4),
                                              (4, 14, True, 4)]
    # image C (from SBD): dogs 11, bird 2
    data = dataset[2]['data_samples']
    assert data.gt_instances.labels.tolist() == [11, 2, 11]
    label_of_id = np.array([255, 20, 11, 2, 11])
    np.testing.assert_array_equal(data.gt_sem_seg.sem_seg[0].numpy(),
                                  label_of_id[sample.EXPECTED_IDS_C])


def test_json_without_categories(voc_root):
    raw = json.loads((voc_root / 'voc_panoptic_train_aug.json').read_text())
    raw.pop('categories')
    (voc_root / 'no_categories.json').write_text(json.dumps(raw))
    dataset = DATASETS.build(
        dataset_cfg(voc_root, ann_file='no_categories.json'))
    assert dataset.metainfo['cat_ids'] == list(range(1, 21)) + [0]
    assert dataset[0]['data_samples'].gt_instances.labels.tolist() == [
        6, 14, 14
    ]


def override_root(cfg: Config, data_root: str) -> None:
    """What a child config does (see the comment in the base config)."""
    cfg.data_root = data_root
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader


def test_base_config(voc_root):
    cfg = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'datasets' / 'voc_panoptic.py'))
    assert cfg.data_root == 'data/VOCdevkit/VOC2012/'
    resize = cfg.train_pipeline[2]
    assert (resize.type, resize.scale, resize.ratio_range) == (
        'RandomResize', (2048, 512), (0.5, 2.0))
    assert cfg.train_pipeline[3].crop_size == (512, 512)
    override_root(cfg, str(voc_root) + '/')

    train = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    assert len(train) == 4
    for index in range(len(train)):
        sample = train[index]['data_samples']
        h, w = sample.img_shape
        # images of 3..6 rows: short side >= 256 after resizing, <= 512 crop
        assert min(h, w) >= 256 and max(h, w) <= 512
        assert sample.gt_sem_seg.shape == (h, w)
        assert 'gt_panoptic_seg' not in sample
    val = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(val) == 1
    sample = val[0]['data_samples']
    assert sample.img_shape == (4, 5)  # original size
    assert sample.gt_panoptic_seg.shape == (4, 5)
