# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The split loop that the COCO-panoptic dataset converters share (ADE20K,
PASCAL VOC): convert every image, then write the split's JSON."""
import json
from typing import Callable, List, Sequence, Tuple

from mmengine.utils import track_parallel_progress, track_progress


def write_coco_panoptic_split(convert_image: Callable[..., Tuple[dict,
                                                                 dict]],
                              tasks: Sequence[tuple], categories: List[dict],
                              json_path: str, nproc: int = 1) -> dict:
    """Convert one split image by image and write its COCO panoptic JSON.

    Args:
        convert_image (Callable): ``convert_image(task) -> (image_info,
            annotation)``; it writes the image's id PNG itself. A
            module-level function, so that ``nproc > 1`` can pickle it.
        tasks (Sequence[tuple]): One argument tuple per image, in the order
            of the JSON's ``images``.
        categories (list[dict]): The JSON's ``categories``.
        json_path (str): Where the JSON goes.
        nproc (int): Worker processes (1: in this process). Defaults to 1.

    Returns:
        dict: The written JSON (``images``, ``annotations``,
        ``categories``).
    """
    tasks = list(tasks)
    if nproc > 1:
        results = track_parallel_progress(
            convert_image, tasks, nproc, keep_order=True)
    else:
        results = track_progress(convert_image, tasks)
    panoptic = dict(
        images=[image_info for image_info, _ in results],
        annotations=[annotation for _, annotation in results],
        categories=categories)
    with open(json_path, 'w') as f:
        json.dump(panoptic, f)
    return panoptic
