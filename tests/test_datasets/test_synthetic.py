# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The synthetic panoptic generator and its command line."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmpanoptic_plus.datasets.panoptic_utils import rgb_to_id
from mmpanoptic_plus.datasets.synthetic import (MIN_SEGMENT_AREA, VOID_FRAME,
                                                generate_synthetic_panoptic)

REPO = Path(__file__).resolve().parents[2]


def load_split(root, split):
    with open(root / 'annotations' / f'panoptic_{split}.json') as f:
        raw = json.load(f)
    items = []
    for image_info, annotation in zip(raw['images'], raw['annotations']):
        image = cv2.imread(str(root / split / image_info['file_name']),
                           cv2.IMREAD_UNCHANGED)
        ids = rgb_to_id(
            cv2.imread(
                str(root / 'annotations' / f'panoptic_{split}' /
                    annotation['file_name']))[..., ::-1])
        items.append((image_info, annotation, image, ids))
    return raw, items


def all_files(root):
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


def test_layout_and_categories(synthetic_root):
    for split, count in (('train', 8), ('val', 4)):
        raw, items = load_split(synthetic_root, split)
        assert [(c['id'], c['name'], c['isthing']) for c in raw['categories']
                ] == [(1, 'disc', 1), (2, 'square', 1), (3, 'triangle', 1),
                      (4, 'sky', 0), (5, 'ground', 0)]
        assert all(len(c['color']) == 3 for c in raw['categories'])
        assert len(items) == count
        for image_info, annotation, image, ids in items:
            assert image_info['file_name'] == annotation['file_name']
            assert annotation['image_id'] == image_info['id']
            assert (image_info['height'], image_info['width']) == (64, 64)
            assert image.shape == (64, 64, 3) and image.dtype == np.uint8
            assert ids.shape == (64, 64)


def test_json_matches_pngs(synthetic_root):
    for split in ('train', 'val'):
        _, items = load_split(synthetic_root, split)
        for _, annotation, _, ids in items:
            segments = annotation['segments_info']
            # every non-void id of the PNG is described, and only those
            assert sorted(s['id'] for s in segments) == sorted(
                set(np.unique(ids).tolist()) - {0})
            for segment in segments:
                ys, xs = np.nonzero(ids == segment['id'])
                assert segment['area'] == len(ys)
                assert segment['bbox'] == [
                    int(xs.min()),
                    int(ys.min()),
                    int(xs.max() - xs.min() + 1),
                    int(ys.max() - ys.min() + 1)
                ]
                assert segment['category_id'] in (1, 2, 3, 4, 5)
                if segment['category_id'] <= 3:
                    assert segment['area'] >= MIN_SEGMENT_AREA
                else:
                    assert segment['iscrowd'] == 0


def test_void_frame_and_sky_above_ground(synthetic_root):
    _, items = load_split(synthetic_root, 'train')
    for _, annotation, _, ids in items:
        frame = np.ones_like(ids, dtype=bool)
        frame[VOID_FRAME:-VOID_FRAME, VOID_FRAME:-VOID_FRAME] = False
        assert (ids[frame] == 0).all()
        inner = ids[VOID_FRAME:-VOID_FRAME, VOID_FRAME:-VOID_FRAME]
        rows = np.arange(inner.shape[0])[:, None].repeat(inner.shape[1], 1)
        assert rows[inner == 4].mean() < rows[inner == 5].mean()


def test_crowd_occurs(synthetic_root):
    crowd_images = 0
    for split in ('train', 'val'):
        _, items = load_split(synthetic_root, split)
        for _, annotation, _, _ in items:
            crowd = [s for s in annotation['segments_info'] if s['iscrowd']]
            assert len(crowd) <= 1
            assert all(s['category_id'] <= 3 for s in crowd)
            crowd_images += bool(crowd)
    assert 1 <= crowd_images < 12


def test_instances_vary(synthetic_root):
    _, items = load_split(synthetic_root, 'train')
    counts = [
        sum(s['category_id'] <= 3 and not s['iscrowd']
            for s in a['segments_info']) for _, a, _, _ in items
    ]
    assert max(counts) >= 3 and all(0 <= c <= 8 for c in counts)
    categories = {s['category_id'] for _, a, _, _ in items
                  for s in a['segments_info']}
    assert categories == {1, 2, 3, 4, 5}


def test_val_differs_from_train(synthetic_root):
    _, train = load_split(synthetic_root, 'train')
    _, val = load_split(synthetic_root, 'val')
    train_images = {image.tobytes() for _, _, image, _ in train}
    assert not any(image.tobytes() in train_images for _, _, image, _ in val)


def test_deterministic(tmp_path):
    generate_synthetic_panoptic(str(tmp_path / 'a'), 3, 2, (48, 40), seed=7)
    generate_synthetic_panoptic(str(tmp_path / 'b'), 3, 2, (48, 40), seed=7)
    generate_synthetic_panoptic(str(tmp_path / 'c'), 3, 2, (48, 40), seed=8)
    a, b, c = (all_files(tmp_path / k) for k in 'abc')
    assert len(a) == 2 * (3 + 2) + 2
    assert a == b
    assert a.keys() == c.keys() and a != c
    _, items = load_split(tmp_path / 'a', 'train')
    assert items[0][2].shape == (48, 40, 3)


def test_default_size_shapes(tmp_path):
    generate_synthetic_panoptic(str(tmp_path), 4, 0, seed=1)
    _, items = load_split(tmp_path, 'train')
    for image_info, annotation, image, _ in items:
        assert image.shape == (256, 256, 3)
        for s in annotation['segments_info']:
            if s['category_id'] <= 3 and not s['iscrowd']:
                # 80 px side (squares rotated: up to 80 * sqrt(2))
                assert max(s['bbox'][2:]) <= 114


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='too small'):
        generate_synthetic_panoptic(str(tmp_path), 1, 1, (8, 8))


def test_cli_is_the_function(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic', REPO / 'tools' / 'dataset_converters' /
        'make_synthetic.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main([
        '--out',
        str(tmp_path / 'cli'), '--num-train', '2', '--num-val', '1',
        '--size', '32', '48', '--seed', '5'
    ])
    generate_synthetic_panoptic(str(tmp_path / 'fn'), 2, 1, (32, 48), 5)
    assert all_files(tmp_path / 'cli') == all_files(tmp_path / 'fn')
    _, items = load_split(tmp_path / 'cli', 'val')
    assert items[0][2].shape == (32, 48, 3)
