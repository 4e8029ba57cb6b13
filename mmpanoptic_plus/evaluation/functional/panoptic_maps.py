# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Conversions of label-encoded panoptic maps (``label + instance_id *
INSTANCE_OFFSET``, the encoding of ``pred_panoptic_seg``)."""
from typing import Optional, Tuple

import numpy as np

from mmpanoptic_plus.structures import (INSTANCE_OFFSET,
                                        segment_areas_and_boxes,
                                        split_panoptic)
from .panoptic_quality import FIRST_SEGMENT_INDEX, VOID_INDEX, index_dtype

# Largest value for which the segments are found with np.bincount and a
# lookup table; larger values (unusual instance ids) fall back to a sort.
_MAX_BINCOUNT_VALUE = 1 << 22


def split_panoptic_map(
    panoptic_map: np.ndarray,
    num_classes: int,
    ignore_index: Optional[int] = None,
    instance_offset: int = INSTANCE_OFFSET,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a label-encoded panoptic map into segments.

    Each distinct value ``label + instance_id * instance_offset`` is one
    segment; values whose label is ``num_classes`` (or ``ignore_index``, as
    mmdet's ``CocoPanopticMetric`` allows) are VOID.

    Args:
        panoptic_map (np.ndarray): Non-negative integer map, shape (H, W).
        num_classes (int): Number of classes C; label C is VOID.
        ignore_index (int, optional): Another label meaning VOID.
        instance_offset (int): Defaults to 1000.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]:

        - index_map: dense indices, shape (H, W), in the layout of
          :func:`index_segment_ids` (VOID_INDEX, FIRST_SEGMENT_INDEX + i);
        - values: the encoded value of each segment, shape (N,), int64,
          increasing;
        - labels: the class label of each segment, shape (N,), int64.

    Raises:
        ValueError: negative values, or labels above ``num_classes`` that
            are not ``ignore_index``.
    """
    if panoptic_map.dtype.kind not in 'iu':
        raise TypeError('A panoptic map must be integer, got '
                        f'{panoptic_map.dtype}.')
    if panoptic_map.size == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros(panoptic_map.shape, np.uint8), empty, empty
    if panoptic_map.dtype.kind == 'i' and panoptic_map.min() < 0:
        raise ValueError('A panoptic map must not hold negative values.')
    max_value = int(panoptic_map.max())
    use_lut = max_value < _MAX_BINCOUNT_VALUE
    if use_lut:
        present = np.flatnonzero(np.bincount(panoptic_map.ravel()))
    else:
        present, inverse = np.unique(panoptic_map, return_inverse=True)
    present = present.astype(np.int64)
    labels, _ = split_panoptic(present, instance_offset)
    is_void = labels == num_classes
    if ignore_index is not None:
        is_void |= labels == ignore_index
    invalid = ~is_void & (labels > num_classes)
    if invalid.any():
        raise ValueError(
            f'Panoptic map value {int(present[invalid][0])} has label '
            f'{int(labels[invalid][0])}, above the {num_classes} classes '
            f'(VOID is {num_classes}); there are only {num_classes} classes: '
            'are they those the model was trained with?')
    is_segment = ~is_void
    num_segments = int(is_segment.sum())
    # Dense code of every present value: VOID or FIRST_SEGMENT_INDEX + i.
    codes = np.full(
        len(present), VOID_INDEX,
        index_dtype(num_segments + FIRST_SEGMENT_INDEX))
    codes[is_segment] = np.arange(FIRST_SEGMENT_INDEX,
                                  FIRST_SEGMENT_INDEX + num_segments)
    if use_lut:
        lut = np.zeros(max_value + 1, codes.dtype)
        lut[present] = codes
        index_map = np.take(lut, panoptic_map)
    else:
        index_map = codes[inverse].reshape(panoptic_map.shape)
    return index_map, present[is_segment], labels[is_segment]


def segment_bboxes(index_map: np.ndarray, num_segments: int) -> np.ndarray:
    """Tight boxes of the segments of a dense index map.

    Args:
        index_map (np.ndarray): Dense indices (``FIRST_SEGMENT_INDEX + i``
            for segment i, lower codes for no segment), shape (H, W).
        num_segments (int): Number of segments N.

    Returns:
        np.ndarray: COCO boxes ``[x, y, w, h]``, shape (N, 4), int64; all
        zero for a segment absent from the map.
    """
    # int64 first: the dense codes may be unsigned.
    segment_index = index_map.astype(np.int64) - FIRST_SEGMENT_INDEX
    return segment_areas_and_boxes(segment_index, num_segments)[1]
