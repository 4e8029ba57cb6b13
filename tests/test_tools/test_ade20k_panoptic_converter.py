# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/dataset_converters/ade20k_panoptic.py on a hand-made sample in the
ADEChallengeData2016 layout: exact JSON segments and id PNGs, a naive
reference on random maps, bad input."""
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmpanoptic_plus.structures import read_panoptic_ids

REPO = Path(__file__).resolve().parents[2]

# Image A (train): stuff wall 1, building 2, sky 3, floor 4 and grass 10
# (grass entirely under the car: no segment); a chair (20, a thing class)
# without instance and "other" (0) are VOID; the car instance also covers a
# floor pixel (things are laid over stuff).
SEMANTIC_A = np.array([
    [3, 3, 3, 3, 3, 3, 20, 20],
    [3, 3, 3, 3, 3, 3, 3, 3],
    [1, 13, 13, 1, 2, 2, 2, 2],
    [1, 13, 13, 1, 2, 21, 21, 2],
    [4, 13, 13, 4, 4, 10, 21, 4],
    [0, 4, 4, 4, 4, 21, 21, 4],
])
# (instance id G, instance-track category R): person (R 4 = SceneParse150
# 13), car (R 9 = 21)
INSTANCE_A = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 2, 2, 0],
    [0, 1, 1, 0, 0, 2, 2, 0],
    [0, 0, 0, 0, 0, 2, 2, 2],
])
CATEGORY_A = {1: 4, 2: 9}
EXPECTED_IDS_A = np.array([
    [3, 3, 3, 3, 3, 3, 0, 0],
    [3, 3, 3, 3, 3, 3, 3, 3],
    [1, 5, 5, 1, 2, 2, 2, 2],
    [1, 5, 5, 1, 2, 6, 6, 2],
    [4, 5, 5, 4, 4, 6, 6, 4],
    [0, 4, 4, 4, 4, 6, 6, 6],
])
EXPECTED_SEGMENTS_A = [
    dict(id=1, category_id=0, area=4, bbox=[0, 2, 4, 2], iscrowd=0),  # wall
    dict(id=2, category_id=1, area=6, bbox=[4, 2, 4, 2], iscrowd=0),
    dict(id=3, category_id=2, area=14, bbox=[0, 0, 8, 2], iscrowd=0),  # sky
    dict(id=4, category_id=3, area=8, bbox=[0, 4, 8, 2], iscrowd=0),
    dict(id=5, category_id=12, area=6, bbox=[1, 2, 2, 3], iscrowd=0),
    dict(id=6, category_id=20, area=7, bbox=[5, 3, 3, 3], iscrowd=0),  # car
]

# Image B (train): ceiling (6); two chairs (R 8 = 20) with instance ids 3
# and 7 and a flag (R 100 = 150) with id 5: things are numbered by instance
# id, not by category.
SEMANTIC_B = np.array([
    [6, 6, 6, 6, 6],
    [20, 20, 6, 150, 150],
    [20, 20, 6, 20, 20],
    [0, 0, 6, 20, 20],
])
INSTANCE_B = np.array([
    [0, 0, 0, 0, 0],
    [7, 7, 0, 5, 5],
    [7, 7, 0, 3, 3],
    [0, 0, 0, 3, 3],
])
CATEGORY_B = {3: 8, 5: 100, 7: 8}
EXPECTED_IDS_B = np.array([
    [1, 1, 1, 1, 1],
    [4, 4, 1, 3, 3],
    [4, 4, 1, 2, 2],
    [0, 0, 1, 2, 2],
])
EXPECTED_SEGMENTS_B = [
    dict(id=1, category_id=5, area=8, bbox=[0, 0, 5, 4], iscrowd=0),
    dict(id=2, category_id=19, area=4, bbox=[3, 2, 2, 2], iscrowd=0),
    dict(id=3, category_id=149, area=2, bbox=[3, 1, 2, 1], iscrowd=0),
    dict(id=4, category_id=19, area=4, bbox=[0, 1, 2, 2], iscrowd=0),
]

# Image C (val): stuff only
SEMANTIC_C = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [2, 2, 2, 2]])
INSTANCE_C = np.zeros((3, 4), dtype=np.int64)
EXPECTED_IDS_C = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [2, 2, 2, 2]])
EXPECTED_SEGMENTS_C = [
    dict(id=1, category_id=0, area=6, bbox=[0, 0, 4, 2], iscrowd=0),
    dict(id=2, category_id=1, area=4, bbox=[0, 2, 4, 1], iscrowd=0),
]

SAMPLE = {
    'training': {
        'ADE_train_00000001': (SEMANTIC_A, INSTANCE_A, CATEGORY_A),
        'ADE_train_00000002': (SEMANTIC_B, INSTANCE_B, CATEGORY_B),
    },
    'validation': {
        'ADE_val_00000001': (SEMANTIC_C, INSTANCE_C, {}),
    },
}


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'ade20k_panoptic_converter',
        REPO / 'tools' / 'dataset_converters' / 'ade20k_panoptic.py')
    module = importlib.util.module_from_spec(spec)
    # registered so that worker processes can unpickle its functions
    sys.modules['ade20k_panoptic_converter'] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules['ade20k_panoptic_converter']


def instance_rgb(instance: np.ndarray, category: dict) -> np.ndarray:
    """(H, W, 3) RGB instance annotation: R category, G instance id."""
    rgb = np.zeros(instance.shape + (3, ), dtype=np.uint8)
    rgb[..., 1] = instance
    for instance_id, r_value in category.items():
        rgb[..., 0][instance == instance_id] = r_value
    return rgb


def write_sample(root: Path, sample: dict = SAMPLE) -> Path:
    """Write images, semantic and instance PNGs in the ADE20K layout."""
    rng = np.random.default_rng(0)
    for folder, images in sample.items():
        for stem, (semantic, instance, category) in images.items():
            paths = {
                kind: root / kind / folder
                for kind in ('images', 'annotations', 'annotations_instance')
            }
            for path in paths.values():
                path.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(paths['images'] / f'{stem}.jpg'),
                rng.integers(0, 255, semantic.shape + (3, ), np.uint8))
            cv2.imwrite(
                str(paths['annotations'] / f'{stem}.png'),
                semantic.astype(np.uint8))
            cv2.imwrite(  # cv2 writes BGR
                str(paths['annotations_instance'] / f'{stem}.png'),
                instance_rgb(instance, category)[..., ::-1])
    return root


@pytest.fixture(scope='module')
def converted(converter, tmp_path_factory):
    root = write_sample(tmp_path_factory.mktemp('ADEChallengeData2016'))
    outputs = converter.convert_ade20k_panoptic(str(root))
    return root, outputs


def test_exact_json_and_pngs(converted):
    root, outputs = converted
    assert outputs == {
        'train': str(root / 'ade20k_panoptic_train.json'),
        'val': str(root / 'ade20k_panoptic_val.json')
    }
    train = json.loads((root / 'ade20k_panoptic_train.json').read_text())
    assert train['images'] == [
        dict(id='ADE_train_00000001', file_name='ADE_train_00000001.jpg',
             height=6, width=8),
        dict(id='ADE_train_00000002', file_name='ADE_train_00000002.jpg',
             height=4, width=5),
    ]
    assert train['annotations'] == [
        dict(image_id='ADE_train_00000001',
             file_name='ADE_train_00000001.png',
             segments_info=EXPECTED_SEGMENTS_A),
        dict(image_id='ADE_train_00000002',
             file_name='ADE_train_00000002.png',
             segments_info=EXPECTED_SEGMENTS_B),
    ]
    val = json.loads((root / 'ade20k_panoptic_val.json').read_text())
    assert val['annotations'][0]['segments_info'] == EXPECTED_SEGMENTS_C
    assert val['images'][0]['height'] == 3
    for split, stem, expected in (
            ('train', 'ADE_train_00000001', EXPECTED_IDS_A),
            ('train', 'ADE_train_00000002', EXPECTED_IDS_B),
            ('val', 'ADE_val_00000001', EXPECTED_IDS_C)):
        ids = read_panoptic_ids(root / f'ade20k_panoptic_{split}' /
                                f'{stem}.png')
        np.testing.assert_array_equal(ids, expected)


def test_categories(converted):
    root, _ = converted
    categories = json.loads(
        (root / 'ade20k_panoptic_val.json').read_text())['categories']
    assert [c['id'] for c in categories] == list(range(150))
    assert sum(c['isthing'] for c in categories) == 100
    by_id = {c['id']: c for c in categories}
    # SceneParse150 id minus one
    assert (by_id[0]['name'], by_id[0]['isthing']) == ('wall', 0)
    assert (by_id[12]['name'], by_id[12]['isthing']) == ('person', 1)
    assert (by_id[149]['name'], by_id[149]['isthing']) == ('flag', 1)
    assert (by_id[19]['name'], by_id[20]['name']) == ('chair', 'car')
    assert by_id[0]['color'] == [120, 120, 120]


def naive_panoptic(semantic, instance, category, thing_ids):
    """Plain-loop reference: stuff classes in id order, then instances in id
    order laid over them; empty segments dropped; ids 1..N."""
    layers = []
    for sp_id in range(1, 151):
        if sp_id not in thing_ids:
            layers.append((semantic == sp_id, sp_id))
    for instance_id in range(1, 256):
        mask = instance == instance_id
        if mask.any():
            layers.append((mask, thing_ids[category[mask][0] - 1]))
    owner = np.full(semantic.shape, -1)
    for k, (mask, _) in enumerate(layers):
        owner[mask] = k
    id_map = np.zeros(semantic.shape, dtype=np.int64)
    segments = []
    for k, (_, sp_id) in enumerate(layers):
        mask = owner == k
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        segment_id = len(segments) + 1
        id_map[mask] = segment_id
        segments.append(
            dict(
                id=segment_id,
                category_id=sp_id - 1,
                area=int(mask.sum()),
                bbox=[
                    int(xs.min()),
                    int(ys.min()),
                    int(xs.max() - xs.min() + 1),
                    int(ys.max() - ys.min() + 1)
                ],
                iscrowd=0))
    return id_map, segments


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_naive_reference(converter, seed):
    from mmpanoptic_plus.datasets.ade20k_panoptic import \
        ADE20K_INSTANCE_TO_SCENE_PARSING as thing_ids
    rng = np.random.default_rng(seed)
    height, width = 23, 31
    # a few blocky classes and instances
    semantic = rng.integers(0, 151, (5, 7))[rng.integers(0, 5, height)][
        :, rng.integers(0, 7, width)]
    semantic[rng.random((height, width)) < 0.1] = 0
    instance = np.zeros((height, width), dtype=np.int64)
    category = np.zeros((height, width), dtype=np.int64)
    for instance_id in rng.choice(np.arange(1, 256), 6, replace=False):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        h, w = rng.integers(1, 8, 2)
        instance[y:y + h, x:x + w] = instance_id
        category[y:y + h, x:x + w] = rng.integers(1, 101)
    rgb = np.stack([category, instance, np.zeros_like(instance)], axis=-1)
    id_map, segments = converter.ade20k_to_panoptic(semantic, rgb)
    expected_map, expected_segments = naive_panoptic(
        semantic, instance, category, thing_ids)
    np.testing.assert_array_equal(id_map, expected_map)
    assert segments == expected_segments
    assert len(segments) > 6


def test_parallel_equals_serial(converter, converted, tmp_path):
    root, _ = converted
    out = tmp_path / 'parallel'
    converter.convert_ade20k_panoptic(
        str(root), str(out), splits=['train'], nproc=2)
    assert json.loads((out / 'ade20k_panoptic_train.json').read_text()) == \
        json.loads((root / 'ade20k_panoptic_train.json').read_text())
    for png in (root / 'ade20k_panoptic_train').iterdir():
        assert (out / 'ade20k_panoptic_train' / png.name).read_bytes() == \
            png.read_bytes()


def test_missing_folders(converter, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match='ADE20K root'):
        converter.convert_ade20k_panoptic(str(tmp_path / 'nowhere'))
    root = write_sample(tmp_path / 'ade')
    for png in (root / 'annotations_instance' / 'validation').iterdir():
        png.unlink()
    (root / 'annotations_instance' / 'validation').rmdir()
    with pytest.raises(
            FileNotFoundError,
            match='instance annotation folder .*annotations_instance'):
        converter.convert_ade20k_panoptic(str(root), splits=['val'])
    # the command line says it and fails
    assert converter.main([str(root), '--splits', 'val']) == 1
    assert 'annotations_instance' in capsys.readouterr().err
    # an image without its semantic PNG
    (root / 'annotations' / 'training' / 'ADE_train_00000002.png').unlink()
    with pytest.raises(FileNotFoundError,
                       match='semantic annotation .*ADE_train_00000002'):
        converter.convert_ade20k_panoptic(str(root), splits=['train'])
    with pytest.raises(ValueError, match='splits must be among'):
        converter.convert_ade20k_panoptic(str(root), splits=['test'])


def test_bad_values(converter, tmp_path):
    semantic = SEMANTIC_A.copy()
    semantic[0, 0] = 151
    root = write_sample(
        tmp_path / 'unknown_class',
        {'training': {
            'ADE_train_1': (semantic, INSTANCE_A, CATEGORY_A)
        }})
    with pytest.raises(
            ValueError,
            match=r'ADE_train_1: semantic class ids \[151\] are not among'):
        converter.convert_ade20k_panoptic(str(root), splits=['train'])

    rgb = instance_rgb(INSTANCE_A, {1: 4, 2: 101})
    with pytest.raises(
            ValueError,
            match=r'instances \[2\] have instance-track categories \[101\]'):
        converter.ade20k_to_panoptic(SEMANTIC_A, rgb)
    rgb = instance_rgb(INSTANCE_A, {1: 4})  # instance 2 without category
    with pytest.raises(ValueError, match=r'categories \[0\]'):
        converter.ade20k_to_panoptic(SEMANTIC_A, rgb)
    rgb = instance_rgb(INSTANCE_A, CATEGORY_A)
    rgb[5, 7, 0] = 8  # one pixel of the car says chair
    with pytest.raises(ValueError, match=r'instances \[2\] have pixels of '
                       'several categories'):
        converter.ade20k_to_panoptic(SEMANTIC_A, rgb)
    with pytest.raises(ValueError, match='must be'):
        converter.ade20k_to_panoptic(SEMANTIC_A[:, :4], rgb)
