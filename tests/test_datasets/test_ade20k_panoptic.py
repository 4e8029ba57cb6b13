# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ADE20KPanopticDataset: the class table (150 classes, 100 things first),
loading the converter's output through LoadPanopticAnnotations, MaskFormer's
JSON, bad input, and configs/_base_/datasets/ade20k_panoptic.py."""
import ast
import copy
import importlib.util
import json
import sys
from pathlib import Path

import mmdet
import numpy as np
import pytest
from mmdet.datasets.ade20k import ADE_PALETTE
from mmdet.datasets.ade20k import \
    ADE20KPanopticDataset as MMDetADE20KPanopticDataset
from mmengine.config import Config

from mmpanoptic_plus.datasets import ADE20KPanopticDataset
from mmpanoptic_plus.datasets.ade20k_panoptic import (
    ADE20K_INSTANCE_TO_SCENE_PARSING, ADE20K_SCENE_PARSING_NAMES)
from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO = Path(__file__).resolve().parents[2]
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticInputs')
]
# mmdet names SceneParse150 class 91 "airplane", MaskFormer (and we) "plane"
MMDET_NAMES = {'airplane': 'plane'}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def sample():
    """The hand-made sample of the converter's tests (its maps and expected
    id PNGs)."""
    module = _load(
        'ade20k_converter_test_sample',
        REPO / 'tests' / 'test_tools' / 'test_ade20k_panoptic_converter.py')
    yield module
    del sys.modules['ade20k_converter_test_sample']


@pytest.fixture(scope='module')
def ade_root(sample, tmp_path_factory):
    converter = _load(
        'ade20k_panoptic_converter_for_dataset',
        REPO / 'tools' / 'dataset_converters' / 'ade20k_panoptic.py')
    root = sample.write_sample(tmp_path_factory.mktemp('ADEChallengeData2016'))
    converter.convert_ade20k_panoptic(str(root))
    del sys.modules['ade20k_panoptic_converter_for_dataset']
    return root


def dataset_cfg(root, ann_file='ade20k_panoptic_train.json', **kwargs):
    cfg = dict(
        type='ADE20KPanopticDataset',
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(
            img='images/training/', seg='ade20k_panoptic_train/'),
        test_mode=True,
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return cfg


def test_class_table():
    meta = ADE20KPanopticDataset.METAINFO
    classes, things, stuff = (meta['classes'], meta['thing_classes'],
                              meta['stuff_classes'])
    assert (len(classes), len(things), len(stuff)) == (150, 100, 50)
    assert classes == things + stuff  # things first
    assert len(set(classes)) == 150
    assert sorted(meta['scene_parsing_ids']) == list(range(1, 151))
    assert meta['category_ids'] == [i - 1 for i in meta['scene_parsing_ids']]
    # each group in SceneParse150 order
    assert meta['scene_parsing_ids'][:100] == sorted(
        ADE20K_INSTANCE_TO_SCENE_PARSING)
    assert meta['scene_parsing_ids'][100:] == sorted(
        meta['scene_parsing_ids'][100:])
    for name, sp_id in zip(classes, meta['scene_parsing_ids']):
        assert ADE20K_SCENE_PARSING_NAMES[sp_id - 1] == name
    assert classes[:4] == ('bed', 'window', 'cabinet', 'person')
    assert classes[99:102] == ('flag', 'wall', 'building')
    # the instance track has 100 distinct categories
    assert len(set(ADE20K_INSTANCE_TO_SCENE_PARSING)) == 100
    # palette: one distinct colour per class, mmdet's ADE20K colours (except
    # skyscraper, which shares road's there)
    assert len(meta['palette']) == 150 and len(set(meta['palette'])) == 150
    for name, sp_id, color in zip(classes, meta['scene_parsing_ids'],
                                  meta['palette']):
        if name != 'skyscraper':
            assert color == tuple(ADE_PALETTE[sp_id - 1])
    assert meta['palette'][classes.index('skyscraper')] == (140, 140, 200)


def test_split_matches_mmdet():
    """The 100 / 50 split, order included, equals mmdet's
    ADE20KPanopticDataset (an independent transcription)."""
    mmdet_meta = MMDetADE20KPanopticDataset.METAINFO
    ours = ADE20KPanopticDataset.METAINFO
    for key in ('thing_classes', 'stuff_classes'):
        assert ours[key] == tuple(
            MMDET_NAMES.get(name, name) for name in mmdet_meta[key])


def test_scene_parsing_order_matches_mmdet_converter():
    """Our SceneParse150 order equals ORIGINAL_CATEGORIES of mmdet's
    ade20k2coco.py (read, not imported: it needs panopticapi)."""
    path = Path(mmdet.__file__).parent / '.mim' / 'tools' / \
        'dataset_converters' / 'ade20k2coco.py'
    if not path.is_file():
        pytest.skip(f'{path} not installed')
    tree = ast.parse(path.read_text())
    original = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign)
        and node.targets[0].id == 'ORIGINAL_CATEGORIES')
    assert tuple(MMDET_NAMES.get(name, name)
                 for name in original) == ADE20K_SCENE_PARSING_NAMES


def test_registered_class_is_ours(ade_root):
    dataset = DATASETS.build(dataset_cfg(ade_root))
    assert type(dataset) is ADE20KPanopticDataset
    assert not isinstance(dataset, MMDetADE20KPanopticDataset)


def test_loads_converted_sample_things_first(ade_root, sample):
    dataset = DATASETS.build(dataset_cfg(ade_root))
    assert len(dataset) == 2
    assert dataset.metainfo['cat_ids'] == dataset.metainfo['category_ids']
    # image A: segment id -> label (things first: person 3, car 8; stuff
    # wall 100, building 101, sky 102, floor 103; VOID 255)
    data = dataset[0]['data_samples']
    label_of_id = np.array([255, 100, 101, 102, 103, 3, 8])
    np.testing.assert_array_equal(data.gt_sem_seg.sem_seg[0].numpy(),
                                  label_of_id[sample.EXPECTED_IDS_A])
    np.testing.assert_array_equal(data.gt_panoptic_seg.sem_seg[0].numpy(),
                                  sample.EXPECTED_IDS_A)
    instances = data.gt_instances
    assert instances.labels.tolist() == [3, 8]
    assert instances.bboxes.tensor.tolist() == [[1, 2, 3, 5], [5, 3, 8, 6]]
    np.testing.assert_array_equal(
        instances.masks.masks,
        np.stack([sample.EXPECTED_IDS_A == 5, sample.EXPECTED_IDS_A == 6]))
    assert len(data.ignored_instances) == 0
    assert [(s['id'], s['category'], s['is_thing'], s['area'])
            for s in data.segments_info] == [(1, 100, False, 4),
                                              (2, 101, False, 6),
                                              (3, 102, False, 14),
                                              (4, 103, False, 8),
                                              (5, 3, True, 6),
                                              (6, 8, True, 7)]
    # image B: ceiling 105, chairs 7 (instance ids 3 and 7), flag 99
    data = dataset[1]['data_samples']
    label_of_id = np.array([255, 105, 7, 99, 7])
    np.testing.assert_array_equal(data.gt_sem_seg.sem_seg[0].numpy(),
                                  label_of_id[sample.EXPECTED_IDS_B])
    assert data.gt_instances.labels.tolist() == [7, 99, 7]


def _edited_json(root: Path, edit) -> str:
    """Copy of the train JSON changed by ``edit``; returns its name."""
    raw = json.loads((root / 'ade20k_panoptic_train.json').read_text())
    edit(raw)
    name = f'edited_{len(list(root.glob("edited_*")))}.json'
    (root / name).write_text(json.dumps(raw))
    return name


def test_maskformer_json_and_json_without_categories(ade_root):
    reference = DATASETS.build(dataset_cfg(ade_root))

    def maskformer_names(raw):  # prepare_ade20k_pan_seg.py writes "window "
        for category in raw['categories']:
            if category['name'] == 'window':
                category['name'] = 'window '

    for edit in (maskformer_names, lambda raw: raw.pop('categories')):
        dataset = DATASETS.build(
            dataset_cfg(ade_root, ann_file=_edited_json(ade_root, edit)))
        assert dataset.metainfo['cat_ids'] == reference.metainfo['cat_ids']
        assert dataset[0]['data_samples'].gt_instances.labels.tolist() == \
            [3, 8]


def test_unknown_category_id(ade_root):

    def unknown(raw):
        raw['annotations'][1]['segments_info'][2]['category_id'] = 150

    with pytest.raises(ValueError, match='segment 3 has category_id 150'):
        DATASETS.build(
            dataset_cfg(ade_root, ann_file=_edited_json(ade_root, unknown)))


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='ade20k_panoptic_train.json'):
        DATASETS.build(dataset_cfg(tmp_path))


def override_root(cfg: Config, data_root: str) -> None:
    """What a child config does (see the comment in the base config)."""
    cfg.data_root = data_root
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader


def test_base_config(ade_root):
    cfg = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'datasets' / 'ade20k_panoptic.py'))
    assert cfg.data_root == 'data/ADEChallengeData2016/'
    # MaskFormer: short side int(x * 0.1 * 640), x = 5..20, long side at
    # most 2560; 640 crop; test short side 640
    resize = cfg.train_pipeline[2]
    assert resize.type == 'RandomChoiceResize' and resize.keep_ratio
    assert resize.scales == [(2560, s) for s in range(320, 1281, 64)]
    assert cfg.train_pipeline[3].crop_size == (640, 640)
    assert cfg.test_pipeline[1].scale == (2560, 640)
    assert cfg.train_dataloader.batch_size * 8 == 16
    override_root(cfg, str(ade_root) + '/')

    train = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    assert type(train) is ADE20KPanopticDataset
    for index in range(len(train)):
        sample = train[index]['data_samples']
        h, w = sample.img_shape
        # 6x8 and 4x5 images: short side >= 320 after resizing, then cropped
        assert min(h, w) >= 320 and max(h, w) <= 640
        assert sample.gt_sem_seg.shape == (h, w)
        assert 'gt_panoptic_seg' not in sample
    val = DATASETS.build(cfg.test_dataloader.dataset)
    sample = val[0]['data_samples']
    assert sample.img_shape == (640, 853)  # 3x4 image, short side 640
    assert sample.gt_panoptic_seg.shape == (3, 4)  # original size

