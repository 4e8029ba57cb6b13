# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""encode_panoptic / split_panoptic on hand-computed values, numpy and
torch."""
import numpy as np
import pytest
import torch

from mmpanoptic_plus.structures import (INSTANCE_OFFSET, encode_panoptic,
                                        split_panoptic)

# label, instance id, encoded value (offset 1000); label 4 is VOID for 4
# classes, instance id 0 is stuff / crowd
HAND_CASES = [
    (0, 0, 0),
    (3, 0, 3),
    (0, 1, 1000),
    (2, 7, 7002),
    (4, 0, 4),  # VOID
    (4, 12, 12004),  # VOID inside an instance id: still splits back
    (999, 2, 2999),
    (1, 5000, 5000001),
]


def test_offset_is_mmdets():
    from mmdet.evaluation.functional import INSTANCE_OFFSET as MMDET_OFFSET
    assert INSTANCE_OFFSET == MMDET_OFFSET == 1000


def test_numpy_hand_values():
    labels, ids, values = map(np.array, zip(*HAND_CASES))
    encoded = encode_panoptic(labels, ids)
    assert isinstance(encoded, np.ndarray) and encoded.dtype == np.int64
    np.testing.assert_array_equal(encoded, values)
    split_labels, split_ids = split_panoptic(values)
    np.testing.assert_array_equal(split_labels, labels)
    np.testing.assert_array_equal(split_ids, ids)
    assert split_labels.dtype == values.dtype


def test_torch_hand_values():
    labels, ids, values = (torch.tensor(column)
                           for column in zip(*HAND_CASES))
    encoded = encode_panoptic(labels, ids)
    assert isinstance(encoded, torch.Tensor) and encoded.dtype == torch.int64
    assert encoded.tolist() == values.tolist()
    split_labels, split_ids = split_panoptic(values)
    assert split_labels.tolist() == labels.tolist()
    assert split_ids.tolist() == ids.tolist()
    assert split_labels.dtype == values.dtype


def test_narrow_dtypes_do_not_overflow():
    # uint8 labels times 1000 would wrap without the int64 promotion
    labels = np.array([[200, 7]], np.uint8)
    ids = np.array([[300, 0]], np.int32)
    np.testing.assert_array_equal(
        encode_panoptic(labels, ids), [[300200, 7]])
    encoded = encode_panoptic(torch.from_numpy(labels), 300)
    assert encoded.dtype == torch.int64
    assert encoded.tolist() == [[300200, 300007]]


def test_mixed_scalar_and_custom_offset():
    assert encode_panoptic(3, torch.tensor([0, 2]), 256).tolist() == [3, 515]
    np.testing.assert_array_equal(encode_panoptic(np.arange(3), 1, 10),
                                  [10, 11, 12])
    labels, ids = split_panoptic(np.array([3, 515]), 256)
    np.testing.assert_array_equal(labels, [3, 3])
    np.testing.assert_array_equal(ids, [0, 2])


@pytest.mark.parametrize('to', [np.asarray, torch.as_tensor])
def test_round_trip_matches_naive_loop(to):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, INSTANCE_OFFSET, size=(5, 7))
    ids = rng.integers(0, 300, size=(5, 7))
    encoded = encode_panoptic(to(labels), to(ids))
    for y in range(5):
        for x in range(7):
            value = int(encoded[y, x])
            assert value == labels[y, x] + ids[y, x] * INSTANCE_OFFSET
            assert divmod(value, INSTANCE_OFFSET) == (ids[y, x], labels[y, x])
    split_labels, split_ids = split_panoptic(encoded)
    np.testing.assert_array_equal(np.asarray(split_labels), labels)
    np.testing.assert_array_equal(np.asarray(split_ids), ids)
