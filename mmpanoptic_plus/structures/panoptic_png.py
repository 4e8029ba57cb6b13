# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The COCO panoptic id-PNG codec.

A COCO panoptic PNG stores the segment id of every pixel in its colour:
``id = R + 256 * G + 256 ** 2 * B``; id 0 is VOID. panopticapi's
``rgb2id``/``id2rgb`` are not installable, so the codec is written here,
once, for the datasets, evaluation, apis and tools.
"""
import os
import os.path as osp
import sys
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from .panoptic_id_runs import (PanopticIdRuns, _png_header_and_data,
                               decode_png_id_runs, image_to_id_runs,
                               runs_to_id_map)

try:  # libspng (imagecodecs): ~2x faster than cv2's libpng on Paeth rows
    from imagecodecs import spng_decode as _spng_decode
except ImportError:  # pragma: no cover - exercised when not installed
    _spng_decode = None

#: Largest id an 8-bit RGB PNG can hold (24 bits).
MAX_PANOPTIC_ID = 256**3 - 1


def _pack_rgba(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 R, G, B, A -> (H, W) uint32 ``R + 256 G + 256^2 B``.

    The 4 bytes of a pixel read as one little-endian uint32 are
    ``R + 256 G + 256^2 B + 256^3 A``; masking drops A. One pass, faster than
    three widened multiply-adds.
    """
    packed = np.ascontiguousarray(rgba).view(np.uint32)[..., 0]
    if sys.byteorder != 'little':
        packed = packed.byteswap()
    return packed & np.uint32(MAX_PANOPTIC_ID)


def rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """Decode an RGB panoptic image (as an array) to segment ids.

    Args:
        rgb (np.ndarray): (H, W, 3) array in RGB channel order, uint8 (or
            another integer dtype with values in [0, 255]).

    Returns:
        np.ndarray: (H, W) uint32 segment ids ``R + 256 G + 256^2 B``.

    Raises:
        ValueError: not 3 channels, or channel values outside [0, 255].
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError('a panoptic PNG must have 3 channels (RGB), got an '
                         f'array of shape {rgb.shape}')
    if rgb.dtype != np.uint8:
        if rgb.dtype.kind not in 'iu' or (rgb.size and
                                          (rgb.min() < 0 or rgb.max() > 255)):
            raise ValueError('panoptic RGB values must be integers in '
                             f'[0, 255], got dtype {rgb.dtype}')
        rgb = rgb.astype(np.uint8)
    # cv2 needs a contiguous input (e.g. not the view img[..., ::-1]).
    return _pack_rgba(
        cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA))


def ids_to_rgb(id_map: np.ndarray) -> np.ndarray:
    """Encode segment ids as RGB colours (inverse of :func:`rgb_to_ids`).

    Args:
        id_map (np.ndarray): Integer segment ids in [0, 256**3), shape (H, W).

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), dtype uint8.

    Raises:
        ValueError: an id outside [0, 256**3).
    """
    id_map = np.asarray(id_map)
    if id_map.size and (id_map.min() < 0 or id_map.max() > MAX_PANOPTIC_ID):
        raise ValueError('Panoptic segment ids must lie in '
                         f'[0, {MAX_PANOPTIC_ID}] to fit in an RGB PNG.')
    ids = id_map.astype(np.uint32)
    shifts = np.array([0, 8, 16], dtype=np.uint32)
    return ((ids[..., None] >> shifts) & np.uint32(255)).astype(np.uint8)


def _read_bytes(path: str, backend_args: Optional[dict]) -> bytes:
    """The file's bytes, with a clear error when it does not exist."""
    if backend_args is None and '://' not in path:
        if not osp.isfile(path):
            raise FileNotFoundError(f'Panoptic PNG not found: {path}')
        with open(path, 'rb') as f:
            return f.read()
    # Remote or custom storage goes through mmengine's file backends
    # (without backend_args, chosen by the URI prefix).
    from mmengine.fileio import get
    return get(path, backend_args=backend_args)


def _spng_decodable(data: bytes) -> bool:
    """Whether libspng takes the file: a well-formed (chunk CRCs, IHDR,
    IEND), non-interlaced 8-bit RGB or RGBA PNG. Palette, grey, 16-bit,
    interlaced and malformed files stay with cv2, whose output and errors
    the tests pin."""
    if _spng_decode is None:
        return False
    parsed = _png_header_and_data(data)
    if parsed is None:
        return False
    _, _, bit_depth, colour_type, _, _, interlace = parsed[0]
    return bit_depth == 8 and colour_type in (2, 6) and interlace == 0


def _decode_image(data: bytes, path: str) -> Tuple[np.ndarray, str]:
    """General decoder: (H, W, 3 or 4) uint8 pixels and their channel order.

    libspng when it is installed and takes the file (:func:`_spng_decode`
    with no flags: no gamma, no tRNS expansion), else cv2
    (``IMREAD_UNCHANGED``: no EXIF rotation, no bit-depth or colour
    conversion). Both give the stored bytes.
    """
    if _spng_decodable(data):
        try:
            return _spng_decode(data), 'rgb'
        except Exception:  # noqa: BLE001 - cv2 then reports the error
            pass
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'Cannot decode the panoptic PNG {path}: the file '
                         'is corrupt or not an image.')
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(
            f'{path} is not a panoptic id PNG: expected 8-bit RGB, got '
            f'dtype {image.dtype} with shape {image.shape}.')
    return image, 'bgr'


def _decode_ids(data: bytes, path: str) -> np.ndarray:
    """General decoder (:func:`_decode_image`), then one packing pass."""
    image, channel_order = _decode_image(data, path)
    channels = image.shape[2]
    if channel_order == 'rgb':
        code = cv2.COLOR_RGB2RGBA if channels == 3 else None
    else:
        code = cv2.COLOR_BGR2RGBA if channels == 3 else cv2.COLOR_BGRA2RGBA
    return _pack_rgba(image if code is None else cv2.cvtColor(image, code))


def read_panoptic_runs(path: Union[str, os.PathLike],
                       backend_args: Optional[dict] = None) -> PanopticIdRuns:
    """Read a COCO panoptic PNG as runs of segment ids.

    PNGs whose rows are filtered with ``None`` / ``Sub`` (those OpenCV and
    :func:`write_panoptic_ids` write) are decoded straight into runs by
    :func:`decode_png_id_runs`; any other PNG (PIL's adaptive ``Up`` /
    ``Paeth`` rows) by the general decoder of :func:`read_panoptic_ids`,
    whose pixels :func:`image_to_id_runs` cuts into runs. Both give the
    same ids.

    Args:
        path (str | PathLike): Path of an 8-bit RGB (or RGBA, alpha
            ignored) PNG.
        backend_args (dict, optional): mmengine file backend arguments (see
            :func:`read_panoptic_ids`).

    Returns:
        PanopticIdRuns: The id map, shape (H, W), in run-length form.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, or is not an 8-bit image
            with 3 or 4 channels.
    """
    path = os.fspath(path)
    data = _read_bytes(path, backend_args)
    runs = decode_png_id_runs(data)
    if runs is None:
        runs = image_to_id_runs(*_decode_image(data, path))
    return runs


def read_panoptic_ids(path: Union[str, os.PathLike],
                      backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a COCO panoptic PNG as a map of segment ids.

    PNGs with ``None`` / ``Sub`` rows only (OpenCV's, ours) are decoded
    into runs (:func:`decode_png_id_runs`) and expanded, 3x faster than
    cv2; others are decoded with libspng when ``imagecodecs`` is installed
    and the file is a well-formed non-interlaced 8-bit RGB(A) PNG, else
    with cv2 (``IMREAD_UNCHANGED``: no EXIF rotation, no bit-depth or
    colour conversion), and packed in one pass. All give the same ids.

    Args:
        path (str | PathLike): Path of an 8-bit RGB (or RGBA, alpha ignored
            as by ``panopticapi.utils.rgb2id``) PNG.
        backend_args (dict, optional): mmengine file backend arguments, for
            files that are not on the local disk (a path with a URI prefix
            such as ``s3://`` is read through mmengine even without them).
            Defaults to None.

    Returns:
        np.ndarray: Segment ids, shape (H, W), dtype uint32.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, or is not an 8-bit image
            with 3 or 4 channels.
    """
    path = os.fspath(path)
    data = _read_bytes(path, backend_args)
    runs = decode_png_id_runs(data)
    if runs is not None:
        return runs_to_id_map(runs)
    return _decode_ids(data, path)


def write_panoptic_ids(path: Union[str, os.PathLike],
                       id_map: np.ndarray) -> None:
    """Write a map of segment ids as a COCO panoptic PNG.

    Args:
        path (str | PathLike): Output file; its folder is created if needed.
        id_map (np.ndarray): Integer segment ids in [0, 256**3), shape (H, W).

    Raises:
        ValueError: an id outside [0, 256**3).
        OSError: the file could not be written.
    """
    path = os.fspath(path)
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    # cv2 writes BGR.
    bgr = np.ascontiguousarray(ids_to_rgb(id_map)[..., ::-1])
    if not cv2.imwrite(path, bgr):
        raise OSError(f'Could not write the panoptic PNG {path}.')
