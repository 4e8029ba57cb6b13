# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Turn panoptic predictions into COCO panoptic PNG + ``segments_info``."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from mmpanoptic_plus.datasets.panoptic_utils import (id_to_rgb,
                                                     segment_areas_and_boxes)
from mmpanoptic_plus.visualization.panoptic_drawing import (
    split_panoptic_values, to_numpy_map)


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
    values, inverse = np.unique(pan_seg, return_inverse=True)
    inverse = inverse.reshape(pan_seg.shape)
    labels, _, is_void = split_panoptic_values(values, num_classes,
                                               instance_offset)
    # position among the non-void values -> COCO id (1-based); void -> 0
    segment_ids = np.cumsum(~is_void) * ~is_void
    id_map = segment_ids[inverse]
    num_segments = int((~is_void).sum())
    areas, boxes = segment_areas_and_boxes(id_map - 1, num_segments)

    segments_info = []
    for index, label in enumerate(labels[~is_void].tolist()):
        segments_info.append({
            'id': index + 1,
            'category_id':
            int(category_ids[label]) if category_ids is not None else label,
            'category_name': classes[label],
            'label': label,
            'isthing': label < num_things,
            'iscrowd': 0,
            'area': int(areas[index]),
            'bbox': [int(v) for v in boxes[index]],
        })
    return id_to_rgb(id_map), segments_info
