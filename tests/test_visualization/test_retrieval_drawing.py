# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Retrieval pictures: the 3x3 context box and crop, the t-SNE plot."""
import numpy as np

from mmpanoptic_plus.visualization import (context_box, context_crop,
                                           plot_prototype_tsne,
                                           resolve_palette)


def test_context_box_is_the_clipped_3x3_neighbourhood():
    assert context_box((10, 20, 14, 30), 100, 100) == (6, 10, 18, 40)
    assert context_box((0, 0, 4, 6), 10, 8) == (0, 0, 8, 10)


def test_context_crop_holds_the_neighbourhood_and_the_box():
    image = np.arange(20 * 30 * 3, dtype=np.int64).reshape(20, 30, 3)
    image = (image % 251).astype(np.uint8)
    crop = context_crop(image, (10, 5, 14, 9), box_color=(1, 2, 3))
    assert crop.shape == (12, 12, 3)  # rows 1-12, columns 6-17
    # the box outline (1 px: the crop is small) at crop rows/cols 4..7
    np.testing.assert_array_equal(crop[4, 4:8], [[1, 2, 3]] * 4)
    np.testing.assert_array_equal(crop[4:8, 7], [[1, 2, 3]] * 4)
    # elsewhere the image, untouched (and the input is not drawn on)
    np.testing.assert_array_equal(crop[0], image[1, 6:18])
    np.testing.assert_array_equal(crop[5:7, 5:7], image[6:8, 11:13])
    assert not (image[5, 10:14] == [1, 2, 3]).all()


def test_tsne_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(12, 4))
    out_file = str(tmp_path / 'tsne.png')
    points = plot_prototype_tsne(
        prototypes, np.array([0, 1, 2] * 4), ['a', 'b', 'c'],
        resolve_palette(None, 3), out_file,
        is_query=np.arange(12) < 6)
    assert points.shape == (12, 2)
    assert (tmp_path / 'tsne.png').stat().st_size > 1000
