# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The run-length id maps and the None/Sub PNG decoder, against cv2's
general decoding of the same files."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from mmpanoptic_plus.structures import (decode_png_id_runs, id_map_to_runs,
                                        read_panoptic_ids, read_panoptic_runs,
                                        runs_to_id_map, write_panoptic_ids)
from mmpanoptic_plus.structures import panoptic_id_runs

FILTERS = dict(
    none=cv2.IMWRITE_PNG_FILTER_NONE,
    sub=cv2.IMWRITE_PNG_FILTER_SUB,
    up=cv2.IMWRITE_PNG_FILTER_UP,
    avg=cv2.IMWRITE_PNG_FILTER_AVG,
    paeth=cv2.IMWRITE_PNG_FILTER_PAETH)


def naive_ids(path):
    """cv2's decoding, packed with plain integer arithmetic."""
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.uint32)
    return bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]


def blocky_map(rng, shape, num_segments, void_fraction=0.1):
    """Piecewise constant map: random rectangles of random 24-bit ids
    (>256 distinct ids when asked) over VOID, plus scattered VOID pixels."""
    height, width = shape
    ids = rng.choice(np.arange(1, 256**3), num_segments, replace=False)
    id_map = np.zeros(shape, np.int64)
    for seg_id in ids:
        y, x = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(1, height // 2 + 2), rng.integers(1, width // 2 + 2)
        id_map[y:y + h, x:x + w] = seg_id
    id_map[rng.random(shape) < void_fraction * 0.1] = 0
    return id_map


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', crc)


def handmade_png(pixels: np.ndarray, row_filters) -> bytes:
    """A PNG of (H, W, 3 or 4) uint8 pixels with a chosen filter (0 None,
    1 Sub, 2 Up) per row, written from the specification."""
    height, width, channels = pixels.shape
    rows = []
    previous = np.zeros(width * channels, np.uint8)
    for row, kind in zip(pixels.reshape(height, -1), row_filters):
        if kind == 0:
            filtered = row.copy()
        elif kind == 1:
            filtered = row.copy()
            filtered[channels:] -= row[:-channels]
        else:
            filtered = row - previous
        rows.append(bytes([kind]) + filtered.tobytes())
        previous = row
    header = struct.pack('>IIBBBBB', width, height, 8,
                         2 if channels == 3 else 6, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header) +
            png_chunk(b'IDAT', zlib.compress(b''.join(rows))) +
            png_chunk(b'IEND', b''))


@pytest.mark.parametrize('shape', [(1, 1), (1, 7), (9, 1), (37, 53)])
@pytest.mark.parametrize('num_segments', [3, 300])
def test_runs_round_trip_dense_maps(shape, num_segments):
    rng = np.random.default_rng(num_segments + shape[1])
    id_map = blocky_map(rng, shape, num_segments)
    runs = id_map_to_runs(id_map)
    assert runs.starts[0] == 0 and (np.diff(runs.starts) > 0).all()
    assert (runs.lengths() > 0).all() and runs.lengths().sum() == id_map.size
    np.testing.assert_array_equal(runs_to_id_map(runs), id_map)
    # maximal runs: a naive scan over the flattened map
    flat = id_map.ravel().tolist()
    naive = [0] + [i for i in range(1, len(flat)) if flat[i] != flat[i - 1]]
    assert runs.starts.tolist() == naive


@pytest.mark.parametrize('png_filter, fast', [('sub', True), ('none', True),
                                              ('up', False), ('avg', False),
                                              ('paeth', False)])
@pytest.mark.parametrize('num_segments', [5, 300])
def test_decoder_equals_cv2_for_every_filter(tmp_path, png_filter, fast,
                                             num_segments):
    rng = np.random.default_rng(num_segments)
    id_map = blocky_map(rng, (48, 70), num_segments)
    if num_segments == 300:  # >256 distinct ids really present
        id_map[:30, :10] = np.arange(1, 301).reshape(30, 10) * 4099
    path = tmp_path / f'{png_filter}.png'
    bgr = np.stack([(id_map >> s) & 255 for s in (16, 8, 0)], -1)
    assert cv2.imwrite(
        str(path), bgr.astype(np.uint8),
        [cv2.IMWRITE_PNG_FILTER, FILTERS[png_filter]])
    expected = naive_ids(path)
    np.testing.assert_array_equal(expected, id_map)
    runs = decode_png_id_runs(path.read_bytes())
    assert (runs is not None) == fast
    if fast:
        assert runs.shape == id_map.shape
        assert (np.diff(runs.starts) > 0).all() and runs.starts[0] == 0
        np.testing.assert_array_equal(runs_to_id_map(runs), expected)
    # Both readers give the same ids on either path.
    np.testing.assert_array_equal(read_panoptic_ids(path), expected)
    np.testing.assert_array_equal(runs_to_id_map(read_panoptic_runs(path)),
                                  expected)


def test_written_ids_take_the_fast_path(tmp_path):
    rng = np.random.default_rng(3)
    id_map = blocky_map(rng, (33, 65), 40)
    write_panoptic_ids(tmp_path / 'ids.png', id_map)
    runs = decode_png_id_runs((tmp_path / 'ids.png').read_bytes())
    assert runs is not None
    np.testing.assert_array_equal(runs_to_id_map(runs), id_map)


@pytest.mark.parametrize('channels', [3, 4])
def test_mixed_none_and_sub_rows_and_alpha(channels):
    rng = np.random.default_rng(channels)
    id_map = blocky_map(rng, (24, 31), 12)
    pixels = np.stack([(id_map >> s) & 255 for s in (0, 8, 16)],
                      -1).astype(np.uint8)
    if channels == 4:  # alpha varies and is ignored
        alpha = rng.integers(0, 256, (24, 31, 1)).astype(np.uint8)
        pixels = np.concatenate([pixels, alpha], -1)
    filters = rng.integers(0, 2, 24)
    data = handmade_png(pixels, filters)
    runs = decode_png_id_runs(data)
    assert runs is not None
    np.testing.assert_array_equal(runs_to_id_map(runs), id_map)
    # an Up row anywhere sends the file to the general decoder
    filters[5] = 2
    assert decode_png_id_runs(handmade_png(pixels, filters)) is None


def test_zlib_fallback_equals_libdeflate(tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    id_map = blocky_map(rng, (40, 50), 30)
    write_panoptic_ids(tmp_path / 'ids.png', id_map)
    data = (tmp_path / 'ids.png').read_bytes()
    with_default = decode_png_id_runs(data)
    monkeypatch.setattr(panoptic_id_runs, '_libdeflate', None)
    with_zlib = decode_png_id_runs(data)
    for runs in (with_default, with_zlib):
        np.testing.assert_array_equal(runs_to_id_map(runs), id_map)


def test_malformed_files_go_to_the_general_decoder(tmp_path):
    rng = np.random.default_rng(9)
    id_map = blocky_map(rng, (20, 30), 10)
    write_panoptic_ids(tmp_path / 'ids.png', id_map)
    data = (tmp_path / 'ids.png').read_bytes()
    assert decode_png_id_runs(data) is not None
    idat = data.index(b'IDAT')
    corrupt = bytearray(data)
    corrupt[idat + 10] ^= 0xFF  # chunk CRC no longer matches
    truncated = data[:idat + 20]
    no_signature = b'x' + data[1:]
    for bad in (bytes(corrupt), truncated, no_signature, b''):
        assert decode_png_id_runs(bad) is None
    for name, bad in (('corrupt', bytes(corrupt)), ('truncated', truncated)):
        (tmp_path / f'{name}.png').write_bytes(bad)
        with pytest.raises(ValueError, match='Cannot decode'):
            read_panoptic_runs(tmp_path / f'{name}.png')
        with pytest.raises(ValueError, match='Cannot decode'):
            read_panoptic_ids(tmp_path / f'{name}.png')
    with pytest.raises(FileNotFoundError):
        read_panoptic_runs(tmp_path / 'missing.png')


@pytest.mark.parametrize('shape', [(1, 1), (1, 7), (9, 1), (37, 53)])
@pytest.mark.parametrize('num_segments', [3, 300])
@pytest.mark.parametrize('channels', [3, 4])
@pytest.mark.parametrize('channel_order', ['rgb', 'bgr'])
def test_image_to_id_runs_equals_runs_of_packed_ids(shape, num_segments,
                                                    channels, channel_order):
    rng = np.random.default_rng(num_segments + shape[1] + channels)
    id_map = blocky_map(rng, shape, num_segments)
    shifts = (0, 8, 16) if channel_order == 'rgb' else (16, 8, 0)
    pixels = np.stack([(id_map >> s) & 255 for s in shifts],
                      -1).astype(np.uint8)
    if channels == 4:  # alpha varies on its own and is ignored
        alpha = rng.integers(0, 256, shape + (1, )).astype(np.uint8)
        pixels = np.concatenate([pixels, alpha], -1)
    runs = panoptic_id_runs.image_to_id_runs(pixels, channel_order)
    # naive maximal runs: a scan over the flattened map
    flat = id_map.ravel().tolist()
    naive = [0] + [i for i in range(1, len(flat)) if flat[i] != flat[i - 1]]
    assert runs.shape == shape
    assert runs.starts.tolist() == naive
    assert runs.ids.tolist() == [flat[i] for i in naive]
    assert runs.ids.dtype == np.uint32


def test_image_to_id_runs_hand_case_and_errors():
    # one byte of one channel changes at a time, across a row end
    pixels = np.array([[[1, 0, 0], [1, 0, 0], [1, 0, 1]],
                       [[1, 0, 1], [1, 2, 1], [1, 2, 1]]], np.uint8)
    runs = panoptic_id_runs.image_to_id_runs(pixels)
    assert runs.starts.tolist() == [0, 2, 4]
    assert runs.ids.tolist() == [1, 1 + 65536, 1 + 512 + 65536]
    with pytest.raises(ValueError, match='uint8'):
        panoptic_id_runs.image_to_id_runs(pixels[..., :2])
    with pytest.raises(ValueError, match='channel_order'):
        panoptic_id_runs.image_to_id_runs(pixels, 'rbg')


def test_up_row_among_the_first_rows_is_seen_early(monkeypatch):
    rng = np.random.default_rng(11)
    id_map = blocky_map(rng, (12, 9), 6)
    pixels = np.stack([(id_map >> s) & 255 for s in (0, 8, 16)],
                      -1).astype(np.uint8)
    filters = np.ones(12, np.int64)
    filters[1] = 2
    inflated = []
    monkeypatch.setattr(panoptic_id_runs, '_inflate',
                        lambda *args: inflated.append(args))
    # Up in row 1: rejected from the first rows, the image is not inflated
    assert decode_png_id_runs(handmade_png(pixels, filters)) is None
    assert inflated == []
