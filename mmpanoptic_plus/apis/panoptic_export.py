# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Turn panoptic predictions into COCO panoptic PNG + ``segments_info``."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmpanoptic_plus.evaluation.functional import (FIRST_SEGMENT_INDEX,
                                                   split_panoptic_map)
from mmpanoptic_plus.structures import (INSTANCE_OFFSET,
                                        coco_panoptic_segments, ids_to_rgb)
from mmpanoptic_plus.visualization.panoptic_drawing import to_numpy_map


def panoptic_to_coco_segments(
    pan_seg: Union[np.ndarray, torch.Tensor],
    classes: Sequence[str],
    thing_classes: Sequence[str],
    instance_offset: int = INSTANCE_OFFSET,
    category_ids: Optional[Sequence[int]] = None
) -> Tuple[np.ndarray, List[Dict]]:
    """Convert an encoded panoptic map to a COCO panoptic id PNG and JSON.

    Every distinct non-void value of ``pan_seg`` becomes one segment; the
    segments get ids ``1..N`` in increasing order of their encoded value
    (so by label, then instance id); void becomes id 0.

    Args:
        pan_seg (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``
            map holding ``label + instance_id * instance_offset``, void =
            ``len(classes)`` (``pred_panoptic_seg.sem_seg``).
        classes (Sequence[str]): All class names, things first.
        thing_classes (Sequence[str]): The thing class names; they must be
            the first ``len(thing_classes)`` of ``classes``.
        instance_offset (int): The encoding's offset (mmdet's 1000).
        category_ids (Sequence[int], optional): Dataset category id of each
            label (e.g. COCO's 1..200); ``category_id`` is the label when
            not given.

    Returns:
        tuple:

        - id_png (np.ndarray): uint8 ``(H, W, 3)`` RGB image with
          ``id = R + 256 G + 256^2 B``; write it as RGB (``cv2`` wants the
          channels reversed).
        - segments_info (list[dict]): one dict per segment, JSON-ready:
          ``id``, ``category_id``, ``category_name``, ``label``, ``isthing``,
          ``iscrowd`` (always 0), ``area`` (pixels) and ``bbox``
          (``[x, y, w, h]``, ``w``/``h`` counting pixels).
    """
    classes = list(classes)
    thing_classes = list(thing_classes)
    num_classes = len(classes)
    num_things = len(thing_classes)
    if classes[:num_things] != thing_classes:
        raise ValueError('classes must list the thing classes first, in the '
                         f'order of thing_classes; got classes {classes} and '
                         f'thing_classes {thing_classes}')
    if category_ids is not None and len(category_ids) != num_classes:
        raise ValueError(f'{len(category_ids)} category_ids given for '
                         f'{num_classes} classes')

    pan_seg = to_numpy_map(pan_seg)
    # segments in increasing order of their encoded value, VOID below
    # FIRST_SEGMENT_INDEX
    index_map, _, labels = split_panoptic_map(
        pan_seg, num_classes, instance_offset=instance_offset)
    id_map, coco_segments = coco_panoptic_segments(
        index_map.astype(np.int64) - FIRST_SEGMENT_INDEX, labels,
        category_ids)

    segments_info = []
    for label, segment in zip(labels.tolist(), coco_segments):
        segments_info.append({
            'id': segment['id'],
            'category_id': segment['category_id'],
            'category_name': classes[label],
            'label': label,
            'isthing': label < num_things,
            'iscrowd': segment['iscrowd'],
            'area': segment['area'],
            'bbox': segment['bbox'],
        })
    return ids_to_rgb(id_map), segments_info
