# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Segment look-ups in COCO-format panoptic id maps.

The id-PNG codec (``id = R + 256 G + 256^2 B``, 0 is void) and the segment
areas/boxes live in :mod:`mmpanoptic_plus.structures`; their dataset-side
names are re-exported here.
"""
import numpy as np

from mmpanoptic_plus.structures import ids_to_rgb as id_to_rgb
from mmpanoptic_plus.structures import rgb_to_ids as rgb_to_id
from mmpanoptic_plus.structures import segment_areas_and_boxes

__all__ = [
    'VOID_ID', 'lookup_segments', 'rgb_to_id', 'id_to_rgb',
    'segment_areas_and_boxes'
]

VOID_ID = 0


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
