# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CocoPanopticFormatDataset (and mmdet's CocoPanopticDataset with our
loader) on the COCO fixture and on rewritten synthetic JSONs."""
import json
import shutil

import cv2
import numpy as np
import pytest

from mmpanoptic_plus.datasets import CocoPanopticFormatDataset
from mmpanoptic_plus.datasets.panoptic_utils import rgb_to_id
from mmpanoptic_plus.registry import DATASETS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', num_thing_classes=80),
    dict(type='PackPanopticInputs')
]


def coco_cfg(fixtures_dir, dataset_type):
    return dict(
        type=dataset_type,
        data_root=str(fixtures_dir / 'coco_panoptic_sample'),
        ann_file='panoptic_examples.json',
        data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
        test_mode=True,
        pipeline=TEST_PIPELINE)


def synthetic_cfg(root, ann_file='annotations/panoptic_train.json', **kw):
    return dict(
        type='SyntheticPanopticDataset',
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadPanopticAnnotations'),
            dict(type='PackPanopticInputs')
        ],
        **kw)


def read_ids(path):
    return rgb_to_id(cv2.imread(str(path))[..., ::-1])


@pytest.mark.parametrize('dataset_type',
                         ['mmdet.CocoPanopticDataset',
                          'CocoPanopticFormatDataset'])
def test_coco_fixture(fixtures_dir, dataset_type):
    dataset = DATASETS.build(coco_cfg(fixtures_dir, dataset_type))
    with open(fixtures_dir / 'coco_panoptic_sample' /
              'panoptic_examples.json') as f:
        raw = json.load(f)
    json_segments = {
        a['image_id']: {s['id']: s
                        for s in a['segments_info']}
        for a in raw['annotations']
    }
    names = dataset.metainfo['classes']
    json_names = {c['id']: c['name'] for c in raw['categories']}
    counts = []
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        expected = json_segments[sample.img_id]
        counts.append(len(sample.segments_info))
        crowd = [s for s in sample.segments_info if s['iscrowd']]
        assert crowd and all(s['is_thing'] for s in crowd)
        ids = sample.gt_panoptic_seg.sem_seg[0].numpy()
        sem = sample.gt_sem_seg.sem_seg[0].numpy()
        for segment in sample.segments_info:
            json_segment = expected[segment['id']]
            # area from JSON or counted (mmdet layout): the same here
            assert segment['area'] == json_segment['area']
            assert bool(json_segment['iscrowd']) == segment['iscrowd']
            assert names[segment['category']] == json_names[
                json_segment['category_id']]
            assert (sem[ids == segment['id']] == segment['category']).all()
        assert (sem[ids == 0] == 255).all()
        num_things = sum(not s['iscrowd'] and s['is_thing']
                         for s in sample.segments_info)
        assert len(sample.gt_instances) == num_things
        if dataset_type == 'CocoPanopticFormatDataset':
            # crowd kept as ignored instances, with the PNG's masks
            assert len(sample.ignored_instances) == len(crowd)
            for mask, segment in zip(sample.ignored_instances.masks.masks,
                                     crowd):
                np.testing.assert_array_equal(mask, ids == segment['id'])
    assert sorted(counts) == [18, 32]


def test_coco_cat_ids_in_metainfo(fixtures_dir):
    dataset = DATASETS.build(
        coco_cfg(fixtures_dir, 'CocoPanopticFormatDataset'))
    with open(fixtures_dir / 'coco_panoptic_sample' /
              'panoptic_coco_categories.json') as f:
        categories = json.load(f)
    by_name = {c['name']: c['id'] for c in categories}
    assert dataset.metainfo['cat_ids'] == [
        by_name[name] for name in dataset.metainfo['classes']
    ]
    assert len(dataset.metainfo['cat_ids']) == 133


def test_categories_matched_by_name_not_json_order(synthetic_root,
                                                   tmp_path):
    """JSON listing stuff first with other ids gives the same labels."""
    reference = DATASETS.build(synthetic_cfg(synthetic_root))
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    new_id = {c['id']: 100 - 7 * c['id'] for c in raw['categories']}
    raw['categories'] = [
        dict(c, id=new_id[c['id']]) for c in reversed(raw['categories'])
    ]
    for annotation in raw['annotations']:
        for segment in annotation['segments_info']:
            segment['category_id'] = new_id[segment['category_id']]
    ann_file = tmp_path / 'shuffled.json'
    ann_file.write_text(json.dumps(raw))
    shuffled = DATASETS.build(
        synthetic_cfg(synthetic_root, ann_file=str(ann_file)))
    assert shuffled.metainfo['cat_ids'] == [93, 86, 79, 72, 65]
    assert reference.metainfo['cat_ids'] == [1, 2, 3, 4, 5]
    for i in range(len(reference)):
        a, b = reference.get_data_info(i), shuffled.get_data_info(i)
        assert a['segments_info'] == b['segments_info']
        assert a['instances'] == b['instances']


def test_parse_keeps_crowd_and_areas(synthetic_root):
    dataset = DATASETS.build(synthetic_cfg(synthetic_root))
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    for i, annotation in enumerate(raw['annotations']):
        info = dataset.get_data_info(i)
        assert info['seg_map_path'].endswith(
            'annotations/panoptic_train/' + annotation['file_name'])
        assert len(info['segments_info']) == len(annotation['segments_info'])
        for segment, json_segment in zip(info['segments_info'],
                                         annotation['segments_info']):
            assert segment['id'] == json_segment['id']
            assert segment['area'] == json_segment['area']
            assert segment['iscrowd'] == bool(json_segment['iscrowd'])
            assert segment['category'] == json_segment['category_id'] - 1
            assert segment['is_thing'] == (json_segment['category_id'] <= 3)
        things = [s for s in annotation['segments_info']
                  if s['category_id'] <= 3]
        assert [inst['segment_id'] for inst in info['instances']
                ] == [s['id'] for s in things]
        assert [inst['ignore_flag'] for inst in info['instances']
                ] == [s['iscrowd'] for s in things]
        for inst, s in zip(info['instances'], things):
            x, y, w, h = s['bbox']
            assert inst['bbox'] == [x, y, x + w, y + h]


def test_wrong_category_id(synthetic_root, tmp_path):
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    segment = raw['annotations'][1]['segments_info'][0]
    segment['category_id'] = 77
    ann_file = tmp_path / 'bad.json'
    ann_file.write_text(json.dumps(raw))
    with pytest.raises(ValueError) as error:
        DATASETS.build(synthetic_cfg(synthetic_root, ann_file=str(ann_file)))
    message = str(error.value)
    assert f'image {raw["annotations"][1]["image_id"]}' in message
    assert f'segment {segment["id"]}' in message
    assert 'category_id 77' in message


def test_missing_class_and_thing_mismatch(synthetic_root, tmp_path):
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    renamed = json.loads(json.dumps(raw))
    renamed['categories'][3]['name'] = 'heaven'
    (tmp_path / 'renamed.json').write_text(json.dumps(renamed))
    with pytest.raises(ValueError, match=r"\['sky'\] are not among"):
        DATASETS.build(
            synthetic_cfg(synthetic_root, ann_file=str(tmp_path /
                                                       'renamed.json')))
    flipped = json.loads(json.dumps(raw))
    flipped['categories'][0]['isthing'] = 0
    (tmp_path / 'flipped.json').write_text(json.dumps(flipped))
    with pytest.raises(ValueError, match='"disc".*isthing=0'):
        DATASETS.build(
            synthetic_cfg(synthetic_root, ann_file=str(tmp_path /
                                                       'flipped.json')))


def test_classes_must_list_things_first(synthetic_root):
    with pytest.raises(ValueError, match='thing classes first'):
        DATASETS.build(
            synthetic_cfg(
                synthetic_root,
                metainfo=dict(classes=('sky', 'disc', 'square', 'triangle',
                                       'ground'))))


def test_missing_png_through_pipeline(synthetic_root, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(synthetic_root, root)
    (root / 'annotations' / 'panoptic_train' / '000001.png').unlink()
    dataset = DATASETS.build(synthetic_cfg(root))
    with pytest.raises(FileNotFoundError,
                       match='panoptic_train/000001.png'):
        dataset[0]


def test_missing_ann_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.json'):
        DATASETS.build(
            dict(
                type='SyntheticPanopticDataset',
                ann_file=str(tmp_path / 'nope.json'),
                data_prefix=dict(img='', seg='')))


def test_filter_empty_gt(synthetic_root, tmp_path):
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    # image 3: only a crowd thing left; image 6: no thing at all
    annotations = raw['annotations']
    annotations[2]['segments_info'] = [
        s for s in annotations[2]['segments_info'] if s['category_id'] > 3
    ] + [dict(id=1, category_id=1, iscrowd=1, area=20, bbox=[5, 5, 4, 5])]
    annotations[5]['segments_info'] = [
        s for s in annotations[5]['segments_info'] if s['category_id'] > 3
    ]
    ann_file = tmp_path / 'few_things.json'
    ann_file.write_text(json.dumps(raw))
    cfg = synthetic_cfg(synthetic_root, ann_file=str(ann_file))
    full = DATASETS.build(cfg)
    filtered = DATASETS.build(dict(cfg, filter_cfg=dict(filter_empty_gt=True)))
    too_small = DATASETS.build(
        dict(cfg, filter_cfg=dict(min_size=65), serialize_data=False))
    assert len(full) == 8 and len(too_small) == 0
    with_things = [
        a['image_id'] for a in annotations if any(
            s['category_id'] <= 3 and not s['iscrowd']
            for s in a['segments_info'])
    ]
    assert 3 not in with_things and 6 not in with_things
    assert len(with_things) >= 4
    assert [filtered.get_data_info(i)['img_id']
            for i in range(len(filtered))] == with_things


def test_data_root_as_path_and_pipeline_values(synthetic_root):
    assert DATASETS.get('CocoPanopticFormatDataset') is \
        CocoPanopticFormatDataset
    cfg = synthetic_cfg(synthetic_root)
    cfg['data_root'] = synthetic_root  # a pathlib.Path works too
    dataset = DATASETS.build(cfg)
    sample = dataset[1]['data_samples']
    ids = read_ids(synthetic_root / 'annotations' / 'panoptic_train' /
                   '000002.png')
    np.testing.assert_array_equal(sample.gt_panoptic_seg.sem_seg[0].numpy(),
                                  ids)
    assert sample.img_shape == (64, 64)


def test_image_info_only_json(synthetic_root, tmp_path):
    """test-dev style JSON (no annotations): inference without GT."""
    with open(synthetic_root / 'annotations' / 'panoptic_train.json') as f:
        raw = json.load(f)
    del raw['annotations']
    ann_file = tmp_path / 'image_info.json'
    ann_file.write_text(json.dumps(raw))
    dataset = DATASETS.build(
        synthetic_cfg(
            synthetic_root, ann_file=str(ann_file), test_mode=True))
    assert len(dataset) == 8
    sample = dataset[0]['data_samples']
    assert sample.seg_map_path is None
    assert 'gt_panoptic_seg' not in sample and len(sample.gt_instances) == 0
