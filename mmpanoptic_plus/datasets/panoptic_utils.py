# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Small array helpers for COCO-format panoptic id maps.

A COCO panoptic PNG stores a segment id per pixel as
``id = R + 256 * G + 256 ** 2 * B`` (0 is void). panopticapi has ``rgb2id``
but is not installable, so the conversions are written here (vectorized).
"""
from typing import Tuple

import numpy as np

# One codec for the whole project: the evaluation side owns the PNG reader and
# writer, and the inverse of rgb_to_id lives next to them.
from mmpanoptic_plus.evaluation.functional.panoptic_io import \
    ids_to_rgb as id_to_rgb  # noqa: F401
from mmpanoptic_plus.evaluation.functional.panoptic_maps import \
    segment_bboxes
from mmpanoptic_plus.evaluation.functional.panoptic_quality import \
    FIRST_SEGMENT_INDEX

VOID_ID = 0


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Convert an RGB panoptic PNG to segment ids.

    Args:
        rgb (np.ndarray): (H, W, 3) array in RGB channel order.

    Returns:
        np.ndarray: (H, W) int64 segment ids.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError('a panoptic PNG must have 3 channels (RGB), got an '
                         f'array of shape {rgb.shape}')
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def lookup_segments(id_map: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
    """Index of each pixel's segment id in ``segment_ids``.

    Args:
        id_map (np.ndarray): (H, W) integer segment ids.
        segment_ids (np.ndarray): (K, ) distinct integer ids.

    Returns:
        np.ndarray: (H, W) int64 array holding, for each pixel, the position
        ``k`` with ``segment_ids[k] == id_map[y, x]``, or -1 when the pixel's
        id is not listed (void or unknown ids).
    """
    segment_ids = np.asarray(segment_ids, dtype=np.int64).reshape(-1)
    index = np.full(id_map.shape, -1, dtype=np.int64)
    if segment_ids.size == 0:
        return index
    order = np.argsort(segment_ids, kind='stable')
    sorted_ids = segment_ids[order]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        raise ValueError(f'segment ids must be distinct, got {segment_ids}')
    pos = np.searchsorted(sorted_ids, id_map).clip(max=sorted_ids.size - 1)
    hit = sorted_ids[pos] == id_map
    index[hit] = order[pos[hit]]
    return index


def segment_areas_and_boxes(
        segment_index: np.ndarray,
        num_segments: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel count and tight box of every segment of an index map.

    Args:
        segment_index (np.ndarray): (H, W) integer map, ``k`` in
            ``[0, num_segments)`` for pixels of segment ``k``, negative for
            pixels of no segment (see :func:`lookup_segments`).
        num_segments (int): K, the number of segments.

    Returns:
        tuple[np.ndarray, np.ndarray]:

        - areas: (K, ) int64 pixel counts.
        - boxes: (K, 4) int64 COCO boxes ``[x, y, w, h]`` (``w`` and ``h``
          count pixels, so a single pixel has ``w = h = 1``); all zeros for
          a segment without pixels.
    """
    segment_index = np.asarray(segment_index, dtype=np.int64)
    hit = segment_index >= 0
    areas = np.bincount(
        segment_index[hit], minlength=num_segments).astype(np.int64)
    # the box computation of the metric: it numbers segments from
    # FIRST_SEGMENT_INDEX, with the slot below it for "no segment"
    dense = np.where(hit, segment_index + FIRST_SEGMENT_INDEX,
                     FIRST_SEGMENT_INDEX - 1)
    return areas, segment_bboxes(dense, num_segments)
