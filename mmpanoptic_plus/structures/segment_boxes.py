# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Pixel counts and tight COCO boxes of all segments of a map at once."""
from typing import Tuple

import numpy as np


def segment_ids_of_index(segment_index: np.ndarray) -> np.ndarray:
    """1-based segment ids of an index map: ``k + 1`` for segment ``k``,
    0 for pixels of no segment (negative indices).

    Args:
        segment_index (np.ndarray): (H, W) integer map.

    Returns:
        np.ndarray: (H, W) int64 ids.
    """
    segment_index = np.asarray(segment_index).astype(np.int64, copy=False)
    return np.where(segment_index >= 0, segment_index + 1, 0)


def areas_and_boxes_of_ids(
        id_map: np.ndarray,
        num_segments: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel count and tight box of the segments ``1..K`` of an id map.

    Three ``np.bincount`` passes (pixels, row codes, column codes) for all
    segments together, instead of a mask per segment.

    Args:
        id_map (np.ndarray): (H, W) integer map, ``k`` in ``[1, K]`` for
            pixels of segment ``k``, 0 for pixels of no segment.
        num_segments (int): K.

    Returns:
        tuple[np.ndarray, np.ndarray]:

        - areas: (K, ) int64 pixel counts.
        - boxes: (K, 4) int64 COCO boxes ``[x, y, w, h]`` (``w`` and ``h``
          count pixels, so a single pixel has ``w = h = 1``); all zeros for
          a segment without pixels.

    Raises:
        ValueError: an id outside ``[0, K]``.
    """
    id_map = np.asarray(id_map).astype(np.int64, copy=False)
    if id_map.ndim != 2:
        raise ValueError(f'expected an (H, W) map, got shape {id_map.shape}')
    if id_map.size and (id_map.min() < 0 or id_map.max() > num_segments):
        raise ValueError(f'segment ids must lie in [0, {num_segments}], got '
                         f'[{id_map.min()}, {id_map.max()}]')
    height, width = id_map.shape
    num_codes = num_segments + 1
    areas = np.bincount(id_map.ravel(), minlength=num_codes)[1:]
    # Which rows / columns each segment touches: one bincount per axis.
    row_code = id_map * height + np.arange(height)[:, None]
    col_code = id_map * width + np.arange(width)[None, :]
    in_rows = np.bincount(
        row_code.ravel(), minlength=num_codes * height).reshape(
            num_codes, height)[1:] > 0
    in_cols = np.bincount(
        col_code.ravel(), minlength=num_codes * width).reshape(
            num_codes, width)[1:] > 0
    y0 = in_rows.argmax(axis=1)
    y1 = height - in_rows[:, ::-1].argmax(axis=1)
    x0 = in_cols.argmax(axis=1)
    x1 = width - in_cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int64)
    boxes[areas == 0] = 0
    return areas.astype(np.int64), boxes


def segment_areas_and_boxes(
        segment_index: np.ndarray,
        num_segments: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel count and tight box of every segment of an index map.

    Args:
        segment_index (np.ndarray): (H, W) integer map, ``k`` in
            ``[0, num_segments)`` for pixels of segment ``k``, negative for
            pixels of no segment.
        num_segments (int): K, the number of segments.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``areas`` (K, ) and ``boxes`` (K, 4),
        as in :func:`areas_and_boxes_of_ids`.
    """
    return areas_and_boxes_of_ids(
        segment_ids_of_index(segment_index), num_segments)
