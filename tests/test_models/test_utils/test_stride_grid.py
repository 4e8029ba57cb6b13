# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Stride grid coordinates: hand values, mmdet's point generator, and the
grid_sample normalisation that puts cell centres where grid_sample reads
them."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator

from mmpanoptic_plus.models.utils import (grid_sample_coordinates,
                                          stride_grid_coordinates)


def test_hand_values_and_dtype():
    xs, ys = stride_grid_coordinates(2, 3, 8)
    assert xs.tolist() == [4., 12., 20.] and ys.tolist() == [4., 12.]
    assert xs.dtype == torch.float32
    xs, ys = stride_grid_coordinates(3, 1, 4, dtype=torch.long)
    assert xs.tolist() == [2] and ys.tolist() == [2, 6, 10]
    assert ys.dtype == torch.long


@pytest.mark.parametrize('stride', [4, 8, 16, 128])
def test_matches_mmdet_point_generator(stride):
    height, width = 5, 7
    xs, ys = stride_grid_coordinates(height, width, stride)
    points = MlvlPointGenerator([stride], offset=0.5).grid_priors(
        [(height, width)], device='cpu')[0]  # (h * w, 2), row-major
    expected_x = xs.repeat(height)
    expected_y = ys.repeat_interleave(width)
    assert torch.equal(points[:, 0], expected_x)
    assert torch.equal(points[:, 1], expected_y)


def test_grid_sample_coordinates_hit_cell_centres():
    # sampling a map at its own cell centres returns the map exactly
    gen = torch.Generator().manual_seed(0)
    level = torch.randn(1, 2, 3, 5, generator=gen)
    xs, ys = stride_grid_coordinates(3, 5, 16)
    gx = grid_sample_coordinates(xs, 16, 5)
    gy = grid_sample_coordinates(ys, 16, 3)
    # cell j's centre is (2 j + 1) / W - 1
    torch.testing.assert_close(gx, (2 * torch.arange(5.) + 1) / 5 - 1)
    grid = torch.stack((gx[None].expand(3, 5), gy[:, None].expand(3, 5)),
                       -1)[None]
    sampled = F.grid_sample(level, grid, align_corners=False)
    torch.testing.assert_close(sampled, level)


def test_level_grid_points_equal_mmdet_point_generator_without_warning():
    import warnings

    from mmdet.models.task_modules.prior_generators import MlvlPointGenerator

    from mmpanoptic_plus.models.utils import level_grid_points
    sizes, strides = [(5, 7), (3, 4), (1, 1)], [8, 16, 128]
    expected = MlvlPointGenerator(strides, offset=0.5).grid_priors(
        sizes, dtype=torch.float64, device='cpu')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        points = level_grid_points(sizes, strides, dtype=torch.float64)
    for got, want in zip(points, expected):
        assert got.dtype == torch.float64
        assert torch.equal(got, want)
    # cell (i, j) = (2, 3) of the 8-stride level is row 2 * 7 + 3
    assert points[0][2 * 7 + 3].tolist() == [3 * 8 + 4, 2 * 8 + 4]
    with pytest.raises(ValueError, match='2 feature map sizes for 3'):
        level_grid_points(sizes[:2], strides)
