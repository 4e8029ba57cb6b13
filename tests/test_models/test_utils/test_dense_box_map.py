# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dense box map against a naive per-pixel loop: levelness argmax with and
without the background channel, forced levels, all levels (appendix B), and
anchoring ltrb maps on their grid."""
import numpy as np
import pytest
import torch

from mmpanoptic_plus.models.utils import (anchor_ltrb_on_grid,
                                          build_dense_boxes,
                                          sample_level_regressions)


def random_outputs(seed):
    """Levels at strides 8, 16 and 32 of a 32x48 padded input."""
    gen = torch.Generator().manual_seed(seed)
    strides = (8, 16, 32)
    preds = [
        torch.rand(2, 4, -(-32 // s), -(-48 // s), generator=gen,
                   dtype=torch.float64) * 20 for s in strides
    ]
    levelness = torch.randn(2, 4, 8, 12, generator=gen, dtype=torch.float64)
    return strides, preds, levelness


def naive_dense(preds, strides, levelness, include_background, forced):
    """(B, 4, h, w) boxes and (B, h, w) validity, one pixel at a time."""
    level_ltrb = sample_level_regressions(preds, strides, (8, 12)).numpy()
    batch, _, h, w = levelness.shape
    boxes = np.zeros((batch, 4, h, w))
    valid = np.zeros((batch, h, w), dtype=bool)
    for b in range(batch):
        for y in range(h):
            for x in range(w):
                logits = levelness[b, :, y, x].tolist()
                if include_background:
                    channel = int(np.argmax(logits))
                    level, ok = max(channel - 1, 0), channel > 0
                else:
                    level, ok = int(np.argmax(logits[1:])), True
                if forced is not None and forced[b, y, x] >= 0:
                    level, ok = int(forced[b, y, x]), True
                left, top, right, bottom = level_ltrb[b, level, :, y, x]
                px, py = 4 * x + 2, 4 * y + 2
                boxes[b, :, y, x] = (px - left, py - top, px + right,
                                     py + bottom)
                valid[b, y, x] = ok
    return boxes, valid


@pytest.mark.parametrize('include_background', [True, False])
@pytest.mark.parametrize('with_forced', [False, True])
def test_levelness_choice_matches_naive(include_background, with_forced):
    strides, preds, levelness = random_outputs(0)
    forced = None
    if with_forced:
        gen = torch.Generator().manual_seed(9)
        forced = torch.randint(-1, 3, (2, 8, 12), generator=gen)
    boxes, valid = build_dense_boxes(
        preds, strides, levelness, include_background=include_background,
        forced_levels=forced)
    assert boxes.shape == (2, 1, 4, 8, 12) and valid.dtype == torch.bool
    expected_boxes, expected_valid = naive_dense(preds, strides, levelness,
                                                 include_background, forced)
    np.testing.assert_allclose(boxes[:, 0].numpy(), expected_boxes,
                               atol=1e-9)
    np.testing.assert_array_equal(valid.numpy(), expected_valid)
    # the case is not degenerate: background wins at some pixels
    assert (levelness.argmax(1) == 0).any()
    if include_background and not with_forced:
        assert not valid.all() and valid.any()


def test_all_levels_without_levelness():
    strides, preds, levelness = random_outputs(1)
    boxes, valid = build_dense_boxes(
        preds, strides, size=(8, 12), use_levelness=False)
    assert boxes.shape == (2, 3, 4, 8, 12) and bool(valid.all())
    for level in range(3):
        forced = torch.full((2, 8, 12), level)
        expected, _ = naive_dense(preds, strides, levelness, True, forced)
        np.testing.assert_allclose(boxes[:, level].numpy(), expected,
                                   atol=1e-9)
    with pytest.raises(ValueError, match='size'):
        build_dense_boxes(preds, strides, use_levelness=False)
    with pytest.raises(ValueError, match='needs levelness_logits'):
        build_dense_boxes(preds, strides)
    with pytest.raises(ValueError, match='levelness logits must be'):
        build_dense_boxes(preds, strides, levelness[:, :3])


def test_anchor_ltrb_on_grid_hand_values():
    ltrb = torch.zeros(1, 1, 4, 2, 3)
    ltrb[0, 0, :, 1, 2] = torch.tensor([1., 2., 3., 4.])
    boxes = anchor_ltrb_on_grid(ltrb, 8)
    # cell (1, 2) of a stride-8 map sits at (20, 12)
    assert boxes[0, 0, :, 1, 2].tolist() == [19., 10., 23., 16.]
    # zero distances: the degenerate box at the cell itself
    assert boxes[0, 0, :, 0, 0].tolist() == [4., 4., 4., 4.]
    # without the candidate axis
    assert torch.equal(anchor_ltrb_on_grid(ltrb[:, 0], 8), boxes[:, 0])
