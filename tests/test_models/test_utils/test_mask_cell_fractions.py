# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""mask_cell_fractions against a naive loop over cells, with thin masks that
no cell centre hits, masks larger and smaller than the grid, and BitmapMasks
input."""
import numpy as np
import torch
from mmdet.structures.mask import BitmapMasks

from mmpanoptic_plus.models.utils import mask_cell_fractions


def naive(mask, stride, size):
    out = np.zeros(size)
    for i in range(size[0]):
        for j in range(size[1]):
            cell = mask[i * stride:(i + 1) * stride,
                        j * stride:(j + 1) * stride]
            out[i, j] = cell.sum() / stride**2  # pixels beyond: 0
    return out


def test_fractions_equal_a_naive_loop_and_sum_to_the_area():
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 22, 30)) > 0.6).astype(np.uint8)
    masks[2] = 0
    masks[2, 5:17, 9:12] = 1  # 3 px wide: columns 9-11, centres at 10
    masks[2, :, 10] = 0  # ... and now no centre (x = 4 j + 2) is inside
    for size in ((6, 8), (4, 5), (7, 9)):  # exact, cropping, padding
        got = mask_cell_fractions(BitmapMasks(masks, 22, 30), 4, size)
        assert got.shape == (3, ) + size and got.dtype == torch.float32
        for k in range(3):
            np.testing.assert_allclose(
                got[k].numpy(), naive(masks[k], 4, size), rtol=0, atol=1e-7)
    full = mask_cell_fractions(torch.from_numpy(masks), 4, (6, 8))
    assert float(full[2].sum()) * 16 == masks[2].sum() == 24
    assert float(full[2].max()) == 0.5  # 4 rows x 2 columns of a cell
