# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Level resampling against a naive per-pixel bilinear reference (cells at
s * j + s / 2, border clamped) and against F.interpolate where the grids
align."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.utils import (output_sample_coordinates,
                                          resample_to_grid,
                                          resample_to_output,
                                          sample_level_regressions,
                                          sample_on_stride_grid)


def naive_bilinear(level_map: np.ndarray, stride: int, x: float, y: float):
    """Border-clamped bilinear sample of a (C, H, W) map whose cell (i, j)
    sits at image (stride * j + stride / 2, stride * i + stride / 2)."""
    _, height, width = level_map.shape
    u = min(max(x / stride - 0.5, 0.0), width - 1)
    v = min(max(y / stride - 0.5, 0.0), height - 1)
    u0, v0 = int(math.floor(u)), int(math.floor(v))
    u1, v1 = min(u0 + 1, width - 1), min(v0 + 1, height - 1)
    fu, fv = u - u0, v - v0
    return ((1 - fu) * (1 - fv) * level_map[:, v0, u0] +
            fu * (1 - fv) * level_map[:, v0, u1] +
            (1 - fu) * fv * level_map[:, v1, u0] +
            fu * fv * level_map[:, v1, u1])


def naive_on_grid(level_map, stride, size, out_stride):
    out = np.zeros((level_map.shape[0], *size))
    for i in range(size[0]):
        for j in range(size[1]):
            x = out_stride * j + out_stride // 2
            y = out_stride * i + out_stride // 2
            out[:, i, j] = naive_bilinear(level_map, stride, x, y)
    return out


@pytest.mark.parametrize('stride,level_size', [(8, (4, 6)), (64, (1, 2)),
                                               (128, (1, 1)), (16, (3, 4))])
def test_sample_on_stride_grid_matches_naive(stride, level_size):
    # a 32x48 padded input: stride 64 / 128 levels rounded up
    gen = torch.Generator().manual_seed(stride)
    feat = torch.randn(2, 3, *level_size, generator=gen, dtype=torch.float64)
    out = sample_on_stride_grid(feat, stride, (8, 12), 4)
    assert out.shape == (2, 3, 8, 12)
    for b in range(2):
        np.testing.assert_allclose(
            out[b].numpy(),
            naive_on_grid(feat[b].numpy(), stride, (8, 12), 4),
            atol=1e-9)


def test_resample_to_grid_matches_interpolate_alignment():
    feat = torch.randn(1, 2, 3, 5)
    # exact: 3 * 16 == 12 * 4
    exact = resample_to_grid(feat, 16, (12, 20), 4)
    torch.testing.assert_close(
        exact,
        F.interpolate(feat, size=(12, 20), mode='bilinear',
                      align_corners=False))
    # rounded up level (2 cells of stride 64 for a 96-pixel input): cell
    # centres at 32 and 96; output pixel x = 4j + 2. Pixel 50 lies 18/64 of
    # the way from cell 0 to cell 1.
    feat = torch.tensor([[[[0.0, 64.0]]]])
    out = resample_to_grid(feat, 64, (1, 24), 4)
    xs = torch.arange(24) * 4 + 2.0
    torch.testing.assert_close(out[0, 0, 0], (xs - 32).clamp(0, 64))
    # same grid: the map itself
    assert resample_to_grid(feat, 4, (1, 2), 4) is feat


def test_sample_level_regressions_matches_naive_and_checks_shapes():
    gen = torch.Generator().manual_seed(1)
    strides = (8, 16, 32)
    # a 32x48 input: the stride-32 level has 1x2 cells
    preds = [
        torch.rand(2, 4, -(-32 // s), -(-48 // s), generator=gen,
                   dtype=torch.float64) * 20 for s in strides
    ]
    sampled = sample_level_regressions(preds, strides, (8, 12))
    assert sampled.shape == (2, 3, 4, 8, 12)
    for level, (pred, stride) in enumerate(zip(preds, strides)):
        for b in range(2):
            np.testing.assert_allclose(
                sampled[b, level].numpy(),
                naive_on_grid(pred[b].numpy(), stride, (8, 12), 4),
                atol=1e-9)
    with pytest.raises(ValueError, match='strides'):
        sample_level_regressions(preds, strides[:2], (8, 12))
    with pytest.raises(ValueError, match=r'\(B, 4, H_l, W_l\)'):
        sample_level_regressions([preds[0][:, :3]], (8, ), (8, 12))


def test_output_sample_coordinates_hand_values():
    # 3 output pixels over a 6-pixel valid extent: centres at 1, 3, 5;
    # on a stride-2 map of 4 cells (8 input pixels): 2 x / 8 - 1
    coords = output_sample_coordinates(3, 6, 4, 2, None, torch.float64)
    torch.testing.assert_close(
        coords, torch.tensor([1., 3., 5.], dtype=torch.float64) / 4 - 1)


def test_resample_to_output_matches_naive():
    gen = torch.Generator().manual_seed(5)
    maps = torch.rand(2, 8, 12, generator=gen, dtype=torch.float64)
    img_shape, out_shape = (30, 45), (61, 89)
    out = resample_to_output(maps, img_shape, out_shape)
    expected = np.zeros((2, *out_shape))
    for i in range(out_shape[0]):
        for j in range(out_shape[1]):
            y_in = (i + 0.5) * img_shape[0] / out_shape[0]
            x_in = (j + 0.5) * img_shape[1] / out_shape[1]
            expected[:, i, j] = naive_bilinear(maps.numpy(), 4, x_in, y_in)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-9)
