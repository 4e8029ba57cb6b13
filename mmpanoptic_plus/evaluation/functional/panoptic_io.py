# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Reading and writing COCO panoptic id PNGs.

A COCO panoptic PNG stores the segment id of every pixel in its colour:
``id = R + 256 * G + 256 ** 2 * B``; id 0 is VOID.
"""
import os
import os.path as osp
import sys
from typing import Optional, Union

import cv2
import numpy as np

# An id PNG holds 24-bit ids.
MAX_PANOPTIC_ID = 256**3 - 1


def _decode_bgr(path: str, backend_args: Optional[dict]) -> np.ndarray:
    """Decode an image file without any colour conversion (cv2 channel
    order, i.e. BGR or BGRA), with a clear error when it cannot be read."""
    if backend_args is None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'Panoptic PNG not found: {path}')
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    else:
        # Remote or custom storage goes through mmengine's file backends.
        from mmengine.fileio import get
        buffer = np.frombuffer(get(path, backend_args=backend_args), np.uint8)
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'Cannot decode the panoptic PNG {path}: the file '
                         'is corrupt or not an image.')
    return image


def read_panoptic_ids(path: Union[str, os.PathLike],
                      backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a COCO panoptic PNG as a map of segment ids.

    Args:
        path (str | PathLike): Path of an 8-bit RGB (or RGBA, alpha ignored
            as by ``panopticapi.utils.rgb2id``) PNG.
        backend_args (dict, optional): mmengine file backend arguments, for
            files that are not on the local disk. Defaults to None.

    Returns:
        np.ndarray: Segment ids, shape (H, W), dtype uint32.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be decoded, or is not an 8-bit image
            with 3 or 4 channels.
    """
    path = os.fspath(path)
    image = _decode_bgr(path, backend_args)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(
            f'{path} is not a panoptic id PNG: expected 8-bit RGB, got '
            f'dtype {image.dtype} with shape {image.shape}.')
    # One pass: BGR(A) -> RGBA makes each pixel the 4 bytes R, G, B, A; read
    # as a little-endian uint32 that is R + 256 G + 256^2 B + 256^3 A, and
    # the mask drops A. Faster than three widened multiply-adds.
    code = cv2.COLOR_BGR2RGBA if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    rgba = np.ascontiguousarray(cv2.cvtColor(image, code))
    packed = rgba.view(np.uint32)[..., 0]
    if sys.byteorder != 'little':
        packed = packed.byteswap()
    return packed & np.uint32(MAX_PANOPTIC_ID)


def ids_to_rgb(id_map: np.ndarray) -> np.ndarray:
    """Encode segment ids as RGB colours (inverse of the PNG id rule).

    Args:
        id_map (np.ndarray): Integer segment ids in [0, 256**3), shape (H, W).

    Returns:
        np.ndarray: RGB image, shape (H, W, 3), dtype uint8.
    """
    id_map = np.asarray(id_map)
    if id_map.size and (id_map.min() < 0 or id_map.max() > MAX_PANOPTIC_ID):
        raise ValueError('Panoptic segment ids must lie in '
                         f'[0, {MAX_PANOPTIC_ID}] to fit in an RGB PNG.')
    ids = id_map.astype(np.uint32)
    shifts = np.array([0, 8, 16], dtype=np.uint32)
    return ((ids[..., None] >> shifts) & np.uint32(255)).astype(np.uint8)


def write_panoptic_ids(path: Union[str, os.PathLike],
                       id_map: np.ndarray) -> None:
    """Write a map of segment ids as a COCO panoptic PNG.

    Args:
        path (str | PathLike): Output file; its folder is created if needed.
        id_map (np.ndarray): Integer segment ids in [0, 256**3), shape (H, W).
    """
    path = os.fspath(path)
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    # cv2 writes BGR.
    bgr = np.ascontiguousarray(ids_to_rgb(id_map)[..., ::-1])
    if not cv2.imwrite(path, bgr):
        raise OSError(f'Could not write the panoptic PNG {path}.')
