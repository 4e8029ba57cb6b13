# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CityscapesPanopticDataset on the real Cityscapes-format fixture."""
import json
import os

import numpy as np
import pytest

from mmpanoptic_plus.datasets.cityscapes_panoptic import CITYSCAPES_CLASSES
from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticInputs')
]
ANN = 'gtFine/cityscapes_panoptic_dummy_trainId.json'
SEG = 'gtFine/cityscapes_panoptic_dummy_trainId/'


def fixture_cfg(root, ann_file=ANN, **kwargs):
    cfg = dict(
        type='CityscapesPanopticDataset',
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(img='leftImg8bit/', seg=SEG),
        img_name_template='{stem}_leftImg8bit.png',
        test_mode=True,
        pipeline=PIPELINE)
    cfg.update(kwargs)
    return cfg


@pytest.fixture(scope='module')
def city_root(fixtures_dir):
    return fixtures_dir / 'cityscapes_panoptic_sample'


def test_class_table_matches_cityscapesscripts():
    labels = pytest.importorskip('cityscapesscripts.helpers.labels')
    for name, label_id, train_id, color in CITYSCAPES_CLASSES:
        label = labels.name2label[name]
        assert (label.id, label.trainId, tuple(label.color)) == (label_id,
                                                                 train_id,
                                                                 color)
        assert label.hasInstances == (label_id >= 24)
    evaluated = {l.name for l in labels.labels if not l.ignoreInEval}
    assert evaluated == {c[0] for c in CITYSCAPES_CLASSES}


def test_metainfo(city_root):
    dataset = DATASETS.build(fixture_cfg(city_root))
    meta = dataset.metainfo
    assert meta['classes'][:8] == ('person', 'rider', 'car', 'truck', 'bus',
                                   'train', 'motorcycle', 'bicycle')
    assert meta['classes'][8:] == meta['stuff_classes']
    assert meta['stuff_classes'][0] == 'road'
    assert meta['stuff_classes'][-1] == 'sky'
    car, road = meta['classes'].index('car'), meta['classes'].index('road')
    assert meta['label_ids'][car] == 26 and meta['label_ids'][road] == 7
    assert meta['palette'][car] == (0, 0, 142)
    # the fixture's ids are train ids (no categories in its JSON)
    assert meta['cat_ids'] == list(range(11, 19)) + list(range(11))


def test_labels_land_on_class_names(city_root):
    dataset = DATASETS.build(fixture_cfg(city_root))
    assert len(dataset) == 1
    info = dataset.get_data_info(0)
    assert os.path.isfile(info['img_path'])
    assert info['img_id'] == 'dummy_000000_000000'
    sample = dataset[0]['data_samples']
    classes = dataset.metainfo['classes']
    ids = sample.gt_panoptic_seg.sem_seg[0].numpy()
    sem = sample.gt_sem_seg.sem_seg[0].numpy()
    # segment ids are Cityscapes label id * 1000 + n (or the bare label id)
    expected = {7: 'road', 11: 'building', 21: 'vegetation', 23: 'sky',
                26: 'car'}
    for segment_id in np.unique(ids):
        label_id = segment_id // 1000 if segment_id >= 1000 else segment_id
        if segment_id == 0:
            assert (sem[ids == 0] == 255).all()
            continue
        assert classes[sem[ids == segment_id][0]] == expected[label_id]
        assert (sem[ids == segment_id] == sem[ids == segment_id][0]).all()
    assert sample.img_shape == (800, 800)

    car = classes.index('car')
    assert sample.gt_instances.labels.tolist() == [car] * 5
    for mask, segment_id in zip(sample.gt_instances.masks.masks,
                                [26000, 26001, 26002, 26003, 26004]):
        np.testing.assert_array_equal(mask, ids == segment_id)
    # the crowd car region is an ignored instance
    assert sample.ignored_instances.labels.tolist() == [car]
    crowd_mask = ids == 26
    np.testing.assert_array_equal(sample.ignored_instances.masks.masks[0],
                                  crowd_mask)
    ys, xs = np.nonzero(crowd_mask)
    assert sample.ignored_instances.bboxes.tensor[0].tolist() == [
        xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    ]
    crowd = [s for s in sample.segments_info if s['iscrowd']]
    assert [s['id'] for s in crowd] == [26]
    assert crowd[0]['area'] == int(crowd_mask.sum()) == 6178


def label_id_json(city_root, with_categories):
    """The fixture JSON as csCreatePanopticImgs writes it without
    --use-train-id: label ids, categories in cityscapesscripts' order
    (stuff first)."""
    with open(city_root / ANN) as f:
        raw = json.load(f)
    train_to_label = {c[2]: c[1] for c in CITYSCAPES_CLASSES}
    for annotation in raw['annotations']:
        for segment in annotation['segments_info']:
            segment['category_id'] = train_to_label[segment['category_id']]
    if with_categories:
        raw['categories'] = [
            dict(id=label_id, name=name, color=list(color),
                 supercategory='x', isthing=int(label_id >= 24))
            for name, label_id, _, color in sorted(
                CITYSCAPES_CLASSES, key=lambda c: c[1])
        ]
    return raw


@pytest.mark.parametrize('with_categories', [True, False])
def test_label_id_variant_gives_same_labels(city_root, tmp_path,
                                            with_categories):
    reference = DATASETS.build(fixture_cfg(city_root))
    ann_file = tmp_path / 'cityscapes_panoptic_dummy.json'
    ann_file.write_text(
        json.dumps(label_id_json(city_root, with_categories)))
    dataset = DATASETS.build(
        fixture_cfg(
            city_root,
            ann_file=str(ann_file),
            data_prefix=dict(
                img=str(city_root / 'leftImg8bit') + '/',
                seg=str(city_root / SEG))))
    assert dataset.metainfo['cat_ids'] == dataset.metainfo['label_ids']
    a, b = reference.get_data_info(0), dataset.get_data_info(0)
    assert a['segments_info'] == b['segments_info']
    assert a['instances'] == b['instances']
    assert a['img_path'] == b['img_path']


def test_category_id_type_override(city_root):
    # train ids read as label ids: car (13) would pass as fence, but sky's
    # train id 10 is no label id
    with pytest.raises(ValueError, match='segment 23 has category_id 10'):
        DATASETS.build(fixture_cfg(city_root, category_id_type='label_id'))
    with pytest.raises(ValueError, match='category_id_type'):
        DATASETS.build(fixture_cfg(city_root, category_id_type='bogus'))


def test_default_layout_with_city_folders(city_root, tmp_path):
    img_dir = tmp_path / 'leftImg8bit' / 'val' / 'dummy'
    img_dir.mkdir(parents=True)
    name = 'dummy_000000_000000_leftImg8bit.png'
    os.symlink(city_root / 'leftImg8bit' / name, img_dir / name)
    cfg = fixture_cfg(
        city_root,
        data_root=None,
        ann_file=str(city_root / ANN),
        data_prefix=dict(
            img=str(tmp_path / 'leftImg8bit' / 'val'),
            seg=str(city_root / SEG)))
    del cfg['img_name_template']
    dataset = DATASETS.build(cfg)
    assert dataset.get_data_info(0)['img_path'] == str(img_dir / name)
    assert dataset[0]['inputs'].shape == (3, 800, 800)


def test_unexpected_png_name(city_root, tmp_path):
    with open(city_root / ANN) as f:
        raw = json.load(f)
    raw['annotations'][0]['file_name'] = 'dummy_000000_000000_other.png'
    ann_file = tmp_path / 'x_trainId.json'
    ann_file.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match='_gtFine_panoptic.png'):
        DATASETS.build(fixture_cfg(city_root, ann_file=str(ann_file)))
