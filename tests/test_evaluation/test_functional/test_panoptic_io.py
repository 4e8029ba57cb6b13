# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import numpy as np
import pytest
from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import rgb2id
from PIL import Image

from mmpanoptic_plus.evaluation.functional import (ids_to_rgb,
                                                   read_panoptic_ids,
                                                   write_panoptic_ids)


def test_read_matches_reference_decoding(fixtures_dir):
    paths = [
        path for path in sorted(fixtures_dir.glob('*/**/*.png'))
        if 'leftImg8bit' not in str(path)  # photos, not panoptic PNGs
    ]
    assert len(paths) == 3
    for path in paths:
        expected = rgb2id(np.array(Image.open(path), dtype=np.uint32))
        ids = read_panoptic_ids(path)
        assert ids.dtype == np.uint32
        np.testing.assert_array_equal(ids, expected)
        assert (ids > 0).any()


def test_write_read_round_trip_and_rgba(tmp_path):
    rng = np.random.default_rng(0)
    id_map = rng.integers(0, 256**3, size=(7, 9))
    path = tmp_path / 'sub' / 'ids.png'
    write_panoptic_ids(path, id_map)  # creates the folder
    np.testing.assert_array_equal(read_panoptic_ids(path), id_map)
    # Same colours as PIL reads them (R is the low byte).
    np.testing.assert_array_equal(
        rgb2id(np.array(Image.open(path), dtype=np.uint32)), id_map)
    rgb = ids_to_rgb(id_map)
    rgba = np.concatenate([rgb, np.full((7, 9, 1), 200, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / 'rgba.png')
    np.testing.assert_array_equal(
        read_panoptic_ids(tmp_path / 'rgba.png'), id_map)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        read_panoptic_ids(tmp_path / 'missing.png')
    (tmp_path / 'broken.png').write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='Cannot decode'):
        read_panoptic_ids(tmp_path / 'broken.png')
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / 'gray.png')
    with pytest.raises(ValueError, match='not a panoptic id PNG'):
        read_panoptic_ids(tmp_path / 'gray.png')
    with pytest.raises(ValueError, match='fit in an RGB PNG'):
        ids_to_rgb(np.array([[256**3]]))
