# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic id maps as runs, and a PNG decoder that produces them directly.

A panoptic id map is piecewise constant: a 1024x2048 map of ~60 segments
has ~2M pixels but only ~10-20k places where the id changes along a row.
:class:`PanopticIdRuns` stores only those places (row-major run starts and
the id of each run), which is all the PQ intersection table needs.

:func:`decode_png_id_runs` decodes a COCO panoptic PNG straight into runs
when every row uses the PNG filter ``None`` or ``Sub`` (OpenCV, hence
:func:`write_panoptic_ids`, writes ``Sub`` only). A ``Sub`` row stores each
byte minus the same channel of the pixel to its left, so in a piecewise
constant map it is zero except where the id changes: the ids are the
per-channel running sums (mod 256) of the few non-zero bytes. Inflating
(libdeflate when the ``deflate`` package is installed, else zlib) and
finding the non-zero bytes are the only passes over the pixels; no RGB
image is built. Other PNGs (``Up``/``Average``/``Paeth`` rows, as PIL and
libpng's adaptive filtering write; palette, 16-bit, interlaced; anything
malformed) are left to the general decoder: the function returns None.
PNG layout and filters: PNG specification (ISO/IEC 15948), Sec. 7, 9, 11.2.

Why ``Up``/``Paeth`` rows are not decoded here: a ``Paeth`` byte is the
difference to one of its left, upper or upper-left neighbours, chosen from
their decoded values, so every row depends on the decoded row above and on
its own decoded bytes to the left at each place where the row above
changes; in numpy that is a loop over rows (~1000 steps per Cityscapes
map), slower than a C decoder. The general decoder's image is cut into
runs by :func:`image_to_id_runs` instead.
"""
import struct
import zlib
from typing import NamedTuple, Optional, Tuple

import numpy as np

try:  # libdeflate inflates these files ~6x faster than zlib
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - exercised when not installed
    _libdeflate = None

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Bytes per pixel of 8-bit truecolour (2) and truecolour + alpha (6).
_BYTES_PER_PIXEL = {2: 3, 6: 4}
_FILTER_NONE, _FILTER_SUB = 0, 1
# Rows whose filter types are looked at before inflating a whole PNG.
_PEEK_ROWS = 4


class PanopticIdRuns(NamedTuple):
    """A panoptic id map in run-length form.

    Run i covers the row-major pixels ``[starts[i], starts[i + 1])`` (the
    last one up to ``H * W``) and holds id ``ids[i]``. Runs are not
    necessarily maximal (two adjacent runs may hold the same id) but are
    never empty.

    Attributes:
        shape (tuple[int, int]): (H, W) of the map.
        starts (np.ndarray): Run starts, shape (R,), int64, strictly
            increasing, ``starts[0] == 0``.
        ids (np.ndarray): Id of each run, shape (R,), uint32.
    """
    shape: Tuple[int, int]
    starts: np.ndarray
    ids: np.ndarray

    @property
    def num_pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def lengths(self) -> np.ndarray:
        """Pixels in each run, shape (R,), int64."""
        return np.diff(self.starts, append=self.num_pixels)


def id_map_to_runs(id_map: np.ndarray) -> PanopticIdRuns:
    """Run-length form of a dense id map (maximal runs, row-major; a run
    may continue from the end of a row to the start of the next).

    Args:
        id_map (np.ndarray): Segment ids in [0, 2**32), shape (H, W).

    Returns:
        PanopticIdRuns: The same map.
    """
    if id_map.ndim != 2:
        raise ValueError(f'An id map must be (H, W), got {id_map.shape}.')
    flat = id_map.ravel()
    if flat.size == 0:
        return PanopticIdRuns(id_map.shape, np.zeros(0, np.int64),
                              np.zeros(0, np.uint32))
    starts = np.flatnonzero(flat[1:] != flat[:-1])
    starts += 1
    starts = np.concatenate([np.zeros(1, np.int64), starts])
    return PanopticIdRuns(id_map.shape, starts, flat[starts].astype(np.uint32))


def runs_to_id_map(runs: PanopticIdRuns) -> np.ndarray:
    """Dense id map of runs (inverse of :func:`id_map_to_runs`).

    Returns:
        np.ndarray: Segment ids, shape (H, W), uint32.
    """
    return np.repeat(runs.ids, runs.lengths()).reshape(runs.shape)


def image_to_id_runs(image: np.ndarray,
                     channel_order: str = 'rgb') -> PanopticIdRuns:
    """Run-length form of a decoded RGB(A) panoptic PNG image.

    Equal to ``id_map_to_runs`` of the packed ids, without packing every
    pixel: one XOR of the bytes with those of the pixel to the left, then
    only the few non-zero bytes are read, and only run starts are packed.

    Args:
        image (np.ndarray): (H, W, C) uint8 pixels, C = 3 or 4 (the 4th
            channel, alpha, is ignored as by ``panopticapi.utils.rgb2id``).
        channel_order (str): 'rgb' (the order of the PNG, e.g. libspng's
            output) or 'bgr' (OpenCV's). Defaults to 'rgb'.

    Returns:
        PanopticIdRuns: Maximal runs of ``R + 256 G + 256^2 B`` (row-major;
        a run may continue from the end of a row to the next one).
    """
    if (image.ndim != 3 or image.shape[2] not in (3, 4)
            or image.dtype != np.uint8):
        raise ValueError('expected (H, W, 3 or 4) uint8 pixels, got '
                         f'{image.dtype} {image.shape}')
    if channel_order not in ('rgb', 'bgr'):
        raise ValueError(f'channel_order must be rgb or bgr, not '
                         f'{channel_order!r}')
    height, width, channels = image.shape
    if height * width == 0:
        return id_map_to_runs(np.zeros((height, width), np.uint32))
    flat = np.ascontiguousarray(image).reshape(-1)
    # Byte k + C differs from byte k where pixel (k + C) // C differs from
    # the pixel before it in that channel.
    positions = _nonzero_bytes(np.bitwise_xor(flat[channels:],
                                              flat[:-channels]))
    if channels == 4:
        positions = positions[(positions & 3) != 3]  # alpha changes
    pixel = positions // channels + 1
    starts = np.concatenate(
        [np.zeros(1, np.int64), pixel[_first_of_groups(pixel)]])
    colours = image.reshape(-1, channels)[starts].astype(np.uint32)
    red, blue = (0, 2) if channel_order == 'rgb' else (2, 0)
    ids = colours[:, red] | (colours[:, 1] << 8) | (colours[:, blue] << 16)
    return PanopticIdRuns((height, width), starts, ids)


def _png_header_and_data(data: bytes) -> Optional[Tuple[tuple, bytes]]:
    """IHDR fields and the concatenated IDAT bytes of a well-formed PNG
    (signature, chunk lengths and CRCs, IHDR first, IEND present); None for
    anything else, which the general decoder then handles or rejects."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    view = memoryview(data)
    pos, header, parts = len(_PNG_SIGNATURE), None, []
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from('>I4s', data, pos)
        end = pos + 12 + length
        if end > len(data):
            return None
        body = view[pos + 8:end - 4]
        crc = zlib.crc32(body, zlib.crc32(kind))
        if crc != struct.unpack_from('>I', data, end - 4)[0]:
            return None
        if header is None:
            if kind != b'IHDR' or length != 13:
                return None
            header = struct.unpack_from('>IIBBBBB', data, pos + 8)
        elif kind == b'IDAT':
            parts.append(body)
        elif kind == b'IEND':
            return header, b''.join(parts)
        pos = end
    return None


def _inflate(compressed: bytes, size: int) -> Optional[np.ndarray]:
    """Inflate a zlib stream that must hold exactly ``size`` bytes."""
    try:
        if _libdeflate is not None:
            raw = _libdeflate.zlib_decompress(compressed, size)
        else:
            raw = zlib.decompress(compressed, bufsize=max(size, 1))
    except (zlib.error, ValueError, getattr(_libdeflate, 'DeflateError',
                                            zlib.error)):
        return None
    if len(raw) != size:
        return None
    return np.frombuffer(raw, np.uint8)


def _nonzero_bytes(buffer: np.ndarray) -> np.ndarray:
    """Positions of the non-zero bytes of a mostly zero uint8 buffer.

    Scans it as 64-bit words (8 bytes per test, then only the non-zero
    words byte by byte): ~5x faster than ``np.flatnonzero`` on the bytes.
    """
    num_words = len(buffer) // 8
    words = buffer[:num_words * 8]
    word_pos = np.flatnonzero(words.view(np.uint64) != 0)
    in_words = np.flatnonzero(words.reshape(-1, 8)[word_pos])
    positions = word_pos[in_words >> 3] * 8 + (in_words & 7)
    tail = np.flatnonzero(buffer[num_words * 8:]) + num_words * 8
    return np.concatenate([positions, tail])


def _first_of_groups(keys: np.ndarray) -> np.ndarray:
    """Mask of the first element of each group of equal consecutive keys."""
    first = np.empty(len(keys), bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return first


def _early_rows_filtered_otherwise(compressed: bytes, stride: int,
                                   height: int) -> bool:
    """Whether one of the first few rows uses a filter other than None /
    Sub, read by inflating only those rows.

    libpng's adaptive filtering (PIL's PNGs) picks ``Up`` or ``Paeth`` for
    the second row of a piecewise constant map, so such files are sent to
    the general decoder without inflating the whole image (~1 ms at
    1024x2048). False when unsure (short or corrupt stream): the full check
    decides then.
    """
    num_rows = min(height, _PEEK_ROWS)
    try:
        head = zlib.decompressobj().decompress(compressed,
                                               num_rows * stride)
    except zlib.error:
        return False
    filters = np.frombuffer(head, np.uint8)[::stride]
    return bool((filters[:num_rows] > _FILTER_SUB).any())


def decode_png_id_runs(data: bytes) -> Optional[PanopticIdRuns]:
    """Decode a COCO panoptic PNG (``id = R + 256 G + 256^2 B``) to runs,
    when its rows are all filtered with ``None`` or ``Sub``.

    Args:
        data (bytes): The PNG file's bytes.

    Returns:
        PanopticIdRuns | None: The id map (alpha ignored, as by
        ``panopticapi.utils.rgb2id``); None when the file is not a
        well-formed, non-interlaced 8-bit RGB(A) PNG with only ``None`` /
        ``Sub`` rows: decode it with the general decoder then.
    """
    parsed = _png_header_and_data(data)
    if parsed is None:
        return None
    (width, height, bit_depth, colour_type, compression, filter_method,
     interlace), compressed = parsed
    bpp = _BYTES_PER_PIXEL.get(colour_type)
    if (bpp is None or bit_depth != 8 or compression != 0
            or filter_method != 0 or interlace != 0 or width == 0
            or height == 0):
        return None
    stride = 1 + width * bpp
    if _early_rows_filtered_otherwise(compressed, stride, height):
        return None
    raw = _inflate(compressed, height * stride)
    if raw is None:
        return None
    filters = raw[::stride]
    if (filters > _FILTER_SUB).any():
        return None
    none_rows = np.flatnonzero(filters == _FILTER_NONE)
    if none_rows.size:
        # Re-filter the few unfiltered rows with Sub: byte minus the same
        # byte of the pixel to its left (uint8 arithmetic wraps mod 256).
        raw = raw.copy()
        rows = raw.reshape(height, stride)
        pixels = rows[none_rows, 1:]
        pixels[:, bpp:] -= rows[none_rows, 1:-bpp]
        rows[none_rows, 1:] = pixels

    positions = _nonzero_bytes(raw)
    row, column = np.divmod(positions, stride)
    is_pixel_byte = column > 0  # column 0 is the row's filter type
    column -= 1
    pixel, channel = np.divmod(column, bpp)
    is_pixel_byte &= channel < 3  # alpha is ignored
    positions = positions[is_pixel_byte]
    channel = channel[is_pixel_byte]
    pixel_key = row[is_pixel_byte] * width + pixel[is_pixel_byte]

    # Per-channel deltas of every pixel where some channel changes.
    first = _first_of_groups(pixel_key)
    change_of_byte = np.cumsum(first) - 1
    change_pos = pixel_key[first]  # row-major pixel index, increasing
    deltas = np.zeros((len(change_pos), 3), np.int64)
    deltas[change_of_byte, channel] = raw[positions]
    # Within a row a channel is the running sum of its deltas (mod 256);
    # every row starts from 0.
    sums = np.cumsum(deltas, axis=0)
    change_row = change_pos // width
    row_first = np.flatnonzero(_first_of_groups(change_row))
    before_row = np.zeros((len(row_first), 3), np.int64)
    before_row[1:] = sums[row_first[1:] - 1]
    sums -= np.repeat(before_row, np.diff(row_first, append=len(sums)),
                      axis=0)
    sums &= 255
    change_ids = (sums[:, 0] | (sums[:, 1] << 8) | (sums[:, 2] << 16))

    # A row whose first pixel has no change starts with id 0 (VOID).
    row_starts = np.arange(height, dtype=np.int64) * width
    starts_with_change = np.zeros(height, bool)
    starts_with_change[change_row[change_pos == change_row * width]] = True
    void_starts = row_starts[~starts_with_change]
    starts = np.concatenate([void_starts, change_pos])
    ids = np.concatenate([np.zeros(len(void_starts), np.int64), change_ids])
    # Two increasing sequences: the stable sort merges them in one pass.
    order = np.argsort(starts, kind='stable')
    return PanopticIdRuns((height, width), starts[order],
                          ids[order].astype(np.uint32))
