# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Segments of a panoptic prediction -> COCO panoptic id map and
``segments_info`` (the format of the COCO panoptic JSON and test
servers)."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .segment_boxes import areas_and_boxes_of_ids, segment_ids_of_index


def coco_panoptic_segments(
    segment_index: np.ndarray,
    labels: np.ndarray,
    category_ids: Optional[Sequence[int]] = None
) -> Tuple[np.ndarray, List[Dict]]:
    """Number the segments of a map 1..N and describe them COCO-style.

    Segment ``k`` gets the COCO id ``k + 1``; pixels of no segment (VOID)
    get id 0. Predictions are never crowd, so ``iscrowd`` is 0.

    Args:
        segment_index (np.ndarray): (H, W) integer map, ``k`` in ``[0, N)``
            for pixels of segment ``k``, negative for VOID.
        labels (np.ndarray): (N, ) contiguous class label of each segment.
        category_ids (Sequence[int], optional): Dataset category id of each
            label (e.g. COCO's 1..200). ``category_id`` is the label itself
            when not given.

    Returns:
        tuple[np.ndarray, list[dict]]:

        - id_map: (H, W) int64 COCO segment ids (encode it with
          :func:`~mmpanoptic_plus.structures.ids_to_rgb` or write it with
          :func:`~mmpanoptic_plus.structures.write_panoptic_ids`);
        - segments_info: one JSON-ready dict per segment, in order:
          ``id``, ``category_id``, ``area`` (pixels), ``bbox`` (``[x, y, w,
          h]``, ``w``/``h`` counting pixels) and ``iscrowd``.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    id_map = segment_ids_of_index(segment_index)
    areas, boxes = areas_and_boxes_of_ids(id_map, len(labels))
    if category_ids is None:
        category_of_segment = labels.tolist()
    else:
        category_of_segment = [int(category_ids[label]) for label in labels]
    segments_info = [
        dict(
            id=k + 1,
            category_id=category,
            area=area,
            bbox=box,
            iscrowd=0) for k, (category, area, box) in enumerate(
                zip(category_of_segment, areas.tolist(), boxes.tolist()))
    ]
    return id_map, segments_info
