# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Per-pixel instance ownership against naive loops: mask reads at points
(outside the extent included) and the 1 + first-instance index map, for
BitmapMasks, ndarrays (flipped views too) and tensors."""
import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks

from mmpanoptic_plus.models.utils import (as_mask_tensor, instance_index_map,
                                          masks_at_points)


def random_masks(seed, num=5, height=9, width=11):
    rng = np.random.default_rng(seed)
    return (rng.random((num, height, width)) < 0.3).astype(np.uint8)


def test_masks_at_points_matches_naive():
    masks = random_masks(0)
    xs = torch.tensor([0, 10, 3, 11, -1, 5, 7])
    ys = torch.tensor([0, 8, 4, 2, 3, 9, -2])
    got = masks_at_points(masks, xs, ys)
    assert got.shape == (5, 7) and got.dtype == torch.bool
    for n in range(5):
        for p, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
            inside = 0 <= x < 11 and 0 <= y < 9
            assert bool(got[n, p]) == (inside and bool(masks[n, y, x]))
    # points 3 (x = 11), 4 (x = -1), 5 (y = 9), 6 (y = -2) are outside
    assert not got[:, 3:].any()


@pytest.mark.parametrize('kind', ['bitmap', 'ndarray', 'tensor', 'flipped'])
def test_input_kinds_agree(kind):
    masks = random_masks(1)
    xs = torch.arange(11).repeat(9)
    ys = torch.arange(9).repeat_interleave(11)
    expected = torch.from_numpy(masks.reshape(5, -1)).bool()
    if kind == 'bitmap':
        given = BitmapMasks(masks, 9, 11)
    elif kind == 'tensor':
        given = torch.from_numpy(masks)
    elif kind == 'flipped':  # negative strides, as np.flip leaves them
        given = np.ascontiguousarray(masks[:, :, ::-1])[:, :, ::-1]
        given.flags.writeable = False
        assert given.strides[2] < 0
    else:
        given = masks
    assert torch.equal(masks_at_points(given, xs, ys), expected)
    assert torch.equal(instance_index_map(given),
                       instance_index_map(torch.from_numpy(masks)))
    with pytest.raises(TypeError, match='masks must be'):
        as_mask_tensor(masks[0])


def test_instance_index_map_first_wins_like_naive():
    masks = random_masks(2)  # overlapping at random
    index = instance_index_map(masks)
    assert index.dtype == torch.int64 and index.shape == (9, 11)
    expected = np.zeros((9, 11), dtype=np.int64)
    for y in range(9):
        for x in range(11):
            for n in range(5):
                if masks[n, y, x]:
                    expected[y, x] = n + 1
                    break
    np.testing.assert_array_equal(index.numpy(), expected)
    assert (masks.sum(0) > 1).any()  # overlaps were tested
    assert (expected == 0).any()
    empty = instance_index_map(np.zeros((0, 4, 6), dtype=bool))
    assert torch.equal(empty, torch.zeros(4, 6, dtype=torch.long))
