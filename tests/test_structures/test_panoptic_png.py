# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import cv2
import numpy as np
import pytest
from cityscapesscripts.evaluation.evalPanopticSemanticLabeling import rgb2id
from PIL import Image

from mmpanoptic_plus.structures import (decode_png_id_runs, ids_to_rgb,
                                        panoptic_png, read_panoptic_ids,
                                        read_panoptic_runs, rgb_to_ids,
                                        runs_to_id_map, write_panoptic_ids)


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


def test_hand_made_pixels_and_byte_boundaries():
    # id = R + 256 G + 256^2 B, checked on hand-computed colours.
    rgb = np.array([[[0, 0, 0], [255, 0, 0], [0, 1, 0], [255, 255, 0]],
                    [[0, 0, 1], [255, 255, 255], [1, 2, 3], [7, 0, 48]]],
                   dtype=np.uint8)
    expected = np.array([[0, 255, 256, 65535],
                         [65536, 256**3 - 1, 1 + 2 * 256 + 3 * 65536,
                          7 + 48 * 65536]])
    ids = rgb_to_ids(rgb)
    assert ids.dtype == np.uint32 and ids.shape == (2, 4)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(ids_to_rgb(expected), rgb)
    # A reversed (non-contiguous) view, as cv2.imread(...)[..., ::-1] gives.
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_array_equal(rgb_to_ids(bgr[..., ::-1]), expected)
    # Other integer dtypes in [0, 255] decode the same.
    np.testing.assert_array_equal(rgb_to_ids(rgb.astype(np.int64)), expected)


@pytest.mark.parametrize('boundary', [256, 65536])
def test_round_trip_across_byte_boundaries(tmp_path, boundary):
    id_map = np.arange(boundary - 6, boundary + 6).reshape(3, 4)
    rgb = ids_to_rgb(id_map)
    np.testing.assert_array_equal(rgb_to_ids(rgb), id_map)
    write_panoptic_ids(tmp_path / 'ids.png', id_map)
    np.testing.assert_array_equal(read_panoptic_ids(tmp_path / 'ids.png'),
                                  id_map)
    # the channel that carries at the boundary: G at 256, B at 65536
    channel = 1 if boundary == 256 else 2
    assert rgb[1, 2].tolist() == [0] * channel + [1] + [0] * (2 - channel)
    assert rgb[1, 1].tolist() == [255] * channel + [0] * (3 - channel)


def test_rgb_to_ids_errors():
    with pytest.raises(ValueError, match='3 channels'):
        rgb_to_ids(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r'\[0, 255\]'):
        rgb_to_ids(np.full((1, 1, 3), 256))
    with pytest.raises(ValueError, match='fit in an RGB PNG'):
        ids_to_rgb(np.array([[-1]]))


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / 'nowhere' / 'gone.png'
    with pytest.raises(FileNotFoundError, match='nowhere/gone.png'):
        read_panoptic_ids(path)
    # through mmengine's file backends too
    with pytest.raises(FileNotFoundError):
        read_panoptic_ids(path, backend_args=dict(backend='local'))


def _cv2_ids(path):
    """cv2's decoding, packed with plain integer arithmetic."""
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.uint32)
    return bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]


def _blocky_ids(rng, shape, num_segments):
    """Random rectangles of random 24-bit ids over VOID; with 300 segments
    a block of 300 distinct ids is really present."""
    height, width = shape
    id_map = np.zeros(shape, np.int64)
    for seg_id in rng.choice(np.arange(1, 256**3), num_segments, False):
        y, x = rng.integers(0, height), rng.integers(0, width)
        h = rng.integers(1, height // 2 + 2)
        w = rng.integers(1, width // 2 + 2)
        id_map[y:y + h, x:x + w] = seg_id
    if num_segments > 256:
        id_map[:30, :10] = np.arange(1, 301).reshape(30, 10) * 4099
    return id_map


@pytest.fixture(params=['libspng', 'cv2'])
def general_decoder(request, monkeypatch):
    """Run a test with libspng as the general decoder (counting its calls)
    and with the cv2 fallback."""
    calls = []
    if request.param == 'cv2':
        monkeypatch.setattr(panoptic_png, '_spng_decode', None)
    else:
        spng_decode = pytest.importorskip('imagecodecs').spng_decode

        def counted(data):
            calls.append(len(data))
            return spng_decode(data)

        monkeypatch.setattr(panoptic_png, '_spng_decode', counted)
    return request.param, calls


@pytest.mark.parametrize('num_segments', [5, 300])
@pytest.mark.parametrize('mode', ['RGB', 'RGBA'])
def test_pil_written_pngs_equal_cv2(tmp_path, general_decoder, num_segments,
                                    mode):
    decoder, calls = general_decoder
    rng = np.random.default_rng(num_segments)
    id_map = _blocky_ids(rng, (64, 90), num_segments)
    pixels = ids_to_rgb(id_map)
    if mode == 'RGBA':  # alpha varies and is ignored
        alpha = rng.integers(0, 256, (64, 90, 1)).astype(np.uint8)
        pixels = np.concatenate([pixels, alpha], -1)
    path = tmp_path / 'pil.png'
    Image.fromarray(pixels, mode).save(path)
    data = path.read_bytes()
    # PIL's adaptive filtering: not a None/Sub-only file
    assert decode_png_id_runs(data) is None
    expected = _cv2_ids(path)
    np.testing.assert_array_equal(expected, id_map)
    runs = read_panoptic_runs(path)
    assert runs.starts[0] == 0 and (np.diff(runs.starts) > 0).all()
    np.testing.assert_array_equal(runs_to_id_map(runs), expected)
    np.testing.assert_array_equal(read_panoptic_ids(path), expected)
    assert len(calls) == (2 if decoder == 'libspng' else 0)


def test_palette_and_16_bit_fall_back_to_cv2(tmp_path, general_decoder):
    decoder, calls = general_decoder
    rng = np.random.default_rng(4)
    index_map = (_blocky_ids(rng, (40, 50), 20) % 7).astype(np.uint8)
    palette = rng.integers(0, 256, (7, 3)).astype(np.uint8)
    image = Image.fromarray(index_map, 'P')
    image.putpalette(palette.ravel().tolist())
    image.save(tmp_path / 'palette.png')
    expected = _cv2_ids(tmp_path / 'palette.png')
    colours = palette.astype(np.uint32)
    np.testing.assert_array_equal(
        expected, (colours[:, 0] + 256 * colours[:, 1] +
                   65536 * colours[:, 2])[index_map])
    np.testing.assert_array_equal(
        runs_to_id_map(read_panoptic_runs(tmp_path / 'palette.png')),
        expected)
    np.testing.assert_array_equal(
        read_panoptic_ids(tmp_path / 'palette.png'), expected)
    deep = rng.integers(0, 2**16, (6, 5, 3)).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    for read in (read_panoptic_runs, read_panoptic_ids):
        with pytest.raises(ValueError, match='not a panoptic id PNG'):
            read(tmp_path / 'deep.png')
    assert calls == []
