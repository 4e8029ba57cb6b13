# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import numpy as np
import pytest

from mmpanoptic_plus.evaluation.functional import (FIRST_SEGMENT_INDEX,
                                                   VOID_INDEX, segment_bboxes,
                                                   split_panoptic_map)


def naive_split(panoptic_map, num_classes):
    values = [v for v in np.unique(panoptic_map) if v % 1000 != num_classes]
    index = np.full(panoptic_map.shape, VOID_INDEX)
    for i, value in enumerate(values):
        index[panoptic_map == value] = FIRST_SEGMENT_INDEX + i
    return index, np.array(values), np.array(values) % 1000


@pytest.mark.parametrize('max_instance', [5, 1 << 13])
def test_split_matches_naive(max_instance):
    # 1 << 13 instances exceed the bincount range: the sort fallback.
    rng = np.random.default_rng(0)
    num_classes = 7
    labels = rng.integers(0, num_classes + 1, size=(9, 11))
    instances = rng.integers(0, max_instance, size=(9, 11))
    panoptic_map = labels + 1000 * instances
    index, values, seg_labels = split_panoptic_map(panoptic_map, num_classes)
    exp_index, exp_values, exp_labels = naive_split(panoptic_map, num_classes)
    np.testing.assert_array_equal(index, exp_index)
    np.testing.assert_array_equal(values, exp_values)
    np.testing.assert_array_equal(seg_labels, exp_labels)


def test_split_void_ignore_and_errors():
    panoptic_map = np.array([[3, 1003, 255], [0, 2000, 3]])
    index, values, labels = split_panoptic_map(
        panoptic_map, num_classes=3, ignore_index=255)
    # 3 and 1003 have label 3 == num_classes (VOID), 255 is ignore_index.
    np.testing.assert_array_equal(
        index, [[VOID_INDEX, VOID_INDEX, VOID_INDEX], [2, 3, VOID_INDEX]])
    np.testing.assert_array_equal(values, [0, 2000])
    np.testing.assert_array_equal(labels, [0, 0])
    with pytest.raises(ValueError, match='above the 3 classes'):
        split_panoptic_map(panoptic_map, num_classes=3)
    with pytest.raises(ValueError, match='negative'):
        split_panoptic_map(np.array([[-1]]), num_classes=3)


def test_segment_bboxes():
    index = np.full((5, 6), VOID_INDEX)
    index[1:3, 2:5] = FIRST_SEGMENT_INDEX  # x 2..4, y 1..2
    index[4, 0] = FIRST_SEGMENT_INDEX + 1
    index[0, 5] = FIRST_SEGMENT_INDEX + 1  # disjoint pixels: x 0..5, y 0..4
    boxes = segment_bboxes(index, 3)  # segment 2 is absent
    np.testing.assert_array_equal(boxes,
                                  [[2, 1, 3, 2], [0, 0, 6, 5], [0, 0, 0, 0]])
