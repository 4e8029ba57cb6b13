# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""LoadPanopticAnnotations and PackPanopticInputs on a hand-built 6x8 PNG."""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from mmpanoptic_plus.datasets.panoptic_utils import (id_to_rgb,
                                                     lookup_segments,
                                                     rgb_to_id,
                                                     segment_areas_and_boxes)
from mmpanoptic_plus.datasets.transforms import (LoadPanopticAnnotations,
                                                 PackPanopticInputs)
from mmpanoptic_plus.registry import TRANSFORMS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

CROWD = 3153362  # > 65535: exercises the B channel
# 0 void, 999 unknown (not in segments_info); 5, 9 stuff (labels 3, 4);
# 1001 label 0 and 1002 label 1 things; CROWD a crowd of label 0
ID_MAP = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],
    [5, 5, 5, 5, 5, 5, 999, 999],
    [5, 1001, 1001, 5, 5, CROWD, CROWD, 5],
    [9, 1001, 1001, 9, 1002, CROWD, CROWD, 9],
    [9, 9, 9, 9, 1002, 1002, 9, 9],
    [9, 9, 9, 9, 9, 9, 9, 9],
], dtype=np.int64)
SEM_MAP = np.array([
    [255, 255, 255, 255, 255, 255, 255, 255],
    [3, 3, 3, 3, 3, 3, 255, 255],
    [3, 0, 0, 3, 3, 0, 0, 3],
    [4, 0, 0, 4, 1, 0, 0, 4],
    [4, 4, 4, 4, 1, 1, 4, 4],
    [4, 4, 4, 4, 4, 4, 4, 4],
], dtype=np.uint8)
AREAS = {5: 10, 9: 17, 1001: 4, 1002: 3, CROWD: 4}


@pytest.fixture
def png_path(tmp_path):
    path = tmp_path / 'pan.png'
    cv2.imwrite(str(path), id_to_rgb(ID_MAP)[..., ::-1])
    return str(path)


def ours_results(png_path):
    """results as CocoPanopticFormatDataset produces them."""
    return dict(
        seg_map_path=png_path,
        ori_shape=(6, 8),
        img_shape=(6, 8),
        segments_info=[
            dict(id=5, category=3, is_thing=False, iscrowd=False, area=10),
            dict(id=9, category=4, is_thing=False, iscrowd=False),
            dict(id=1001, category=0, is_thing=True, iscrowd=False, area=4),
            dict(id=1002, category=1, is_thing=True, iscrowd=False, area=3),
            dict(id=CROWD, category=0, is_thing=True, iscrowd=True, area=4),
            # listed in JSON but absent from the PNG
            dict(id=4242, category=2, is_thing=True, iscrowd=False, area=50),
        ],
        instances=[
            # no bbox: computed from the mask
            dict(bbox_label=0, ignore_flag=0, segment_id=1001),
            dict(bbox=[4, 3, 6, 5], bbox_label=1, ignore_flag=0,
                 segment_id=1002),
            dict(bbox=[5, 2, 7, 4], bbox_label=0, ignore_flag=1,
                 segment_id=CROWD),
            dict(bbox=[0, 0, 2, 2], bbox_label=2, ignore_flag=0,
                 segment_id=4242),
        ])


def mmdet_results(png_path):
    """results as mmdet's CocoPanopticDataset.parse_data_info makes them:
    no iscrowd/area, crowd thing has is_thing=False and no instance."""
    return dict(
        seg_map_path=png_path,
        segments_info=[
            dict(id=5, category=3, is_thing=False),
            dict(id=1001, category=0, is_thing=True),
            dict(id=CROWD, category=0, is_thing=False),
            dict(id=9, category=4, is_thing=False),
            dict(id=1002, category=1, is_thing=True),
        ],
        instances=[
            dict(bbox=[1, 2, 3, 4], bbox_label=0, ignore_flag=0),
            dict(bbox=[4, 3, 6, 5], bbox_label=1, ignore_flag=0),
        ])


def test_rgb_id_round_trip():
    rgb = id_to_rgb(ID_MAP)
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 8, 3)
    assert rgb[2, 5].tolist() == [CROWD % 256, CROWD // 256 % 256,
                                  CROWD // 65536]
    np.testing.assert_array_equal(rgb_to_id(rgb), ID_MAP)


def test_segment_stats_match_naive_loops():
    ids = np.array([9, 5, 1001, 1002, CROWD, 4242])
    index = lookup_segments(ID_MAP, ids)
    areas, boxes = segment_areas_and_boxes(index, len(ids))
    for k, segment_id in enumerate(ids):
        ys, xs = np.nonzero(ID_MAP == segment_id)
        assert areas[k] == len(ys)
        if len(ys):
            assert boxes[k].tolist() == [
                xs.min(), ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
        else:
            assert boxes[k].tolist() == [0, 0, 0, 0]
    assert (index[ID_MAP == 999] == -1).all()
    assert (index[ID_MAP == 0] == -1).all()


def test_load_ours(png_path):
    results = TRANSFORMS.build(dict(type='LoadPanopticAnnotations'))(
        ours_results(png_path))
    np.testing.assert_array_equal(results['gt_seg_map'], SEM_MAP)
    assert results['gt_seg_map'].dtype == np.uint8
    np.testing.assert_array_equal(results['gt_panoptic_seg'], ID_MAP)
    assert results['gt_panoptic_seg'].dtype == np.int64

    masks = results['gt_masks'].masks
    assert masks.shape == (4, 6, 8)
    for mask, segment_id in zip(masks, [1001, 1002, CROWD, 4242]):
        np.testing.assert_array_equal(mask, ID_MAP == segment_id)
    assert isinstance(results['gt_bboxes'], HorizontalBoxes)
    assert results['gt_bboxes'].tensor.tolist() == [[1, 2, 3, 4],
                                                    [4, 3, 6, 5],
                                                    [5, 2, 7, 4],
                                                    [0, 0, 2, 2]]
    assert results['gt_bboxes_labels'].tolist() == [0, 1, 0, 2]
    assert results['gt_ignore_flags'].tolist() == [False, False, True, False]

    segments = {s['id']: s for s in results['segments_info']}
    assert segments[9]['area'] == 17  # counted: the JSON had none
    assert segments[4242]['area'] == 50  # from JSON, though not in the PNG
    assert segments[CROWD]['iscrowd'] and segments[CROWD]['is_thing']
    assert not segments[5]['is_thing']


def test_load_mmdet_layout_infers_crowd(png_path):
    results = LoadPanopticAnnotations(num_thing_classes=3)(
        mmdet_results(png_path))
    segments = {s['id']: s for s in results['segments_info']}
    assert {k: s['area'] for k, s in segments.items()} == AREAS
    assert {k for k, s in segments.items() if s['iscrowd']} == {CROWD}
    # is_thing now follows the category (the crowd is a thing segment)
    assert {k for k, s in segments.items() if s['is_thing']} == {
        1001, 1002, CROWD
    }
    for mask, segment_id in zip(results['gt_masks'].masks, [1001, 1002]):
        np.testing.assert_array_equal(mask, ID_MAP == segment_id)
    np.testing.assert_array_equal(results['gt_seg_map'], SEM_MAP)
    assert results['gt_ignore_flags'].tolist() == [False, False]


def test_num_thing_classes_from_results(png_path):
    results = mmdet_results(png_path)
    results['num_thing_classes'] = 1  # label 1 is stuff now: 1002 no crowd
    results['instances'] = results['instances'][:1]
    results['segments_info'][4]['is_thing'] = False
    out = LoadPanopticAnnotations(num_thing_classes=3)(results)
    segments = {s['id']: s for s in out['segments_info']}
    assert segments[CROWD]['iscrowd'] and not segments[1002]['iscrowd']
    assert not segments[1002]['is_thing']


def test_mmdet_layout_without_num_things_is_explained(png_path):
    with pytest.raises(ValueError, match='num_thing_classes'):
        LoadPanopticAnnotations()(mmdet_results(png_path))


def test_instance_count_mismatch_is_explained(png_path):
    results = mmdet_results(png_path)
    results['instances'].pop()
    with pytest.raises(ValueError, match='1 instances but 2 is_thing'):
        LoadPanopticAnnotations(num_thing_classes=3)(results)


def test_missing_png(tmp_path):
    results = ours_results(str(tmp_path / 'nowhere' / 'missing.png'))
    with pytest.raises(FileNotFoundError, match='nowhere/missing.png'):
        LoadPanopticAnnotations()(results)


def test_corrupt_png(tmp_path):
    path = tmp_path / 'broken.png'
    path.write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='broken.png'):
        LoadPanopticAnnotations()(ours_results(str(path)))


def test_png_size_must_match_image(png_path):
    results = ours_results(png_path)
    results['ori_shape'] = (7, 8)
    with pytest.raises(ValueError, match='6x8'):
        LoadPanopticAnnotations()(results)


def test_without_seg_map_only_boxes():
    results = LoadPanopticAnnotations()(
        dict(
            seg_map_path=None,
            instances=[dict(bbox=[0, 0, 2, 2], bbox_label=1,
                            ignore_flag=0)]))
    assert results['gt_bboxes_labels'].tolist() == [1]
    assert 'gt_seg_map' not in results and 'gt_masks' not in results


def test_pack(png_path):
    results = LoadPanopticAnnotations()(ours_results(png_path))
    results['img'] = np.zeros((6, 8, 3), dtype=np.uint8)
    packed = TRANSFORMS.build(dict(type='PackPanopticInputs'))(results)
    sample = packed['data_samples']
    assert packed['inputs'].shape == (3, 6, 8)
    panoptic = sample.gt_panoptic_seg.sem_seg
    assert panoptic.dtype == torch.int64 and panoptic.shape == (1, 6, 8)
    np.testing.assert_array_equal(panoptic[0].numpy(), ID_MAP)
    np.testing.assert_array_equal(sample.gt_sem_seg.sem_seg[0].numpy(),
                                  SEM_MAP)
    assert sample.gt_instances.labels.tolist() == [0, 1, 2]
    assert sample.ignored_instances.labels.tolist() == [0]
    np.testing.assert_array_equal(
        sample.ignored_instances.masks.masks[0], ID_MAP == CROWD)
    assert sample.seg_map_path == png_path
    assert [s['id'] for s in sample.segments_info] == [
        5, 9, 1001, 1002, CROWD, 4242
    ]


def test_pack_refuses_flipped_panoptic(png_path):
    flip = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0))
    results = LoadPanopticAnnotations()(ours_results(png_path))
    results['img'] = np.zeros((6, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match='with_panoptic_seg=False'):
        PackPanopticInputs()(flip(copy.deepcopy(results)))

    # training pipelines leave gt_panoptic_seg out
    results = LoadPanopticAnnotations(with_panoptic_seg=False)(
        ours_results(png_path))
    results['img'] = np.zeros((6, 8, 3), dtype=np.uint8)
    sample = PackPanopticInputs()(flip(results))['data_samples']
    assert 'gt_panoptic_seg' not in sample
    np.testing.assert_array_equal(sample.gt_sem_seg.sem_seg[0].numpy(),
                                  SEM_MAP[:, ::-1])


def test_resize_before_loading_keeps_original_size(png_path):
    """mmdet's test pipelines resize first: ground truth stays at the
    original size and is packed."""
    results = ours_results(png_path)
    results['img'] = np.zeros((6, 8, 3), dtype=np.uint8)
    results = TRANSFORMS.build(
        dict(type='Resize', scale=(16, 12), keep_ratio=True))(results)
    results = LoadPanopticAnnotations()(results)
    packed = PackPanopticInputs()(results)
    assert packed['inputs'].shape == (3, 12, 16)
    assert packed['data_samples'].gt_panoptic_seg.shape == (6, 8)


def test_repeated_segment_id(png_path):
    results = ours_results(png_path)
    results['segments_info'][1]['id'] = 5
    with pytest.raises(ValueError, match='repeat a segment id'):
        LoadPanopticAnnotations()(results)
