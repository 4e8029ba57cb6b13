# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""coco_panoptic_segments and segment_areas_and_boxes against hand-computed
values and a naive per-segment loop."""
import numpy as np
import pytest

from mmpanoptic_plus.structures import (areas_and_boxes_of_ids,
                                        coco_panoptic_segments,
                                        segment_areas_and_boxes)

# -1 VOID, -2 another "no segment" code; segment 2 has two disjoint parts,
# segment 3 is absent
HAND_INDEX = np.array([
    [-1, 0, 0, -1, 2],
    [-1, 0, 0, 1, -1],
    [-2, -1, 1, 1, -1],
    [2, -1, -1, -1, -1],
])
HAND_LABELS = np.array([2, 0, 1, 3])
CATEGORY_IDS = [11, 17, 23, 5]


def naive_coco(segment_index, labels, category_ids):
    id_map = np.zeros(segment_index.shape, np.int64)
    info = []
    for k, label in enumerate(labels):
        ys, xs = np.nonzero(segment_index == k)
        id_map[ys, xs] = k + 1
        box = [0, 0, 0, 0]
        if len(ys):
            box = [
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1)
            ]
        category = int(label if category_ids is None else category_ids[label])
        info.append(
            dict(id=k + 1, category_id=category, area=len(ys), bbox=box,
                 iscrowd=0))
    return id_map, info


def test_hand_built_map():
    id_map, info = coco_panoptic_segments(HAND_INDEX, HAND_LABELS,
                                          CATEGORY_IDS)
    np.testing.assert_array_equal(
        id_map,
        [[0, 1, 1, 0, 3], [0, 1, 1, 2, 0], [0, 0, 2, 2, 0], [3, 0, 0, 0, 0]])
    assert id_map.dtype == np.int64
    assert info == [
        dict(id=1, category_id=23, area=4, bbox=[1, 0, 2, 2], iscrowd=0),
        dict(id=2, category_id=11, area=3, bbox=[2, 1, 2, 2], iscrowd=0),
        dict(id=3, category_id=17, area=2, bbox=[0, 0, 5, 4], iscrowd=0),
        dict(id=4, category_id=5, area=0, bbox=[0, 0, 0, 0], iscrowd=0),
    ]
    # JSON-ready: plain Python ints, in COCO's key order
    for segment in info:
        assert list(segment) == ['id', 'category_id', 'area', 'bbox',
                                 'iscrowd']
        assert all(type(v) is int for v in segment['bbox'])
        assert type(segment['area']) is int
        assert type(segment['category_id']) is int


def test_category_is_label_without_mapping():
    _, info = coco_panoptic_segments(HAND_INDEX, HAND_LABELS)
    assert [s['category_id'] for s in info] == HAND_LABELS.tolist()


@pytest.mark.parametrize('category_ids', [None, list(range(100, 108))])
def test_random_maps_match_naive_loop(category_ids):
    rng = np.random.default_rng(1)
    for _ in range(5):
        num_segments = int(rng.integers(0, 12))
        segment_index = rng.integers(-2, num_segments, size=(9, 13))
        labels = rng.integers(0, 8, size=num_segments)
        id_map, info = coco_panoptic_segments(segment_index, labels,
                                              category_ids)
        expected_map, expected_info = naive_coco(segment_index, labels,
                                                 category_ids)
        np.testing.assert_array_equal(id_map, expected_map)
        assert info == expected_info


def test_areas_and_boxes():
    areas, boxes = segment_areas_and_boxes(HAND_INDEX, 4)
    np.testing.assert_array_equal(areas, [4, 3, 2, 0])
    np.testing.assert_array_equal(
        boxes, [[1, 0, 2, 2], [2, 1, 2, 2], [0, 0, 5, 4], [0, 0, 0, 0]])
    # the same on 1-based ids, from narrow unsigned input
    ids = np.where(HAND_INDEX >= 0, HAND_INDEX + 1, 0).astype(np.uint8)
    areas_ids, boxes_ids = areas_and_boxes_of_ids(ids, 4)
    np.testing.assert_array_equal(areas_ids, areas)
    np.testing.assert_array_equal(boxes_ids, boxes)
    assert areas.dtype == boxes.dtype == np.int64


def test_out_of_range_index_is_an_error():
    with pytest.raises(ValueError, match=r'\[0, 2\]'):
        segment_areas_and_boxes(HAND_INDEX, 2)
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        areas_and_boxes_of_ids(np.zeros((2, 2, 2), np.int64), 1)
