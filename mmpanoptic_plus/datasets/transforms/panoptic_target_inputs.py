# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""What the panoptic target transforms read from ``LoadPanopticAnnotations``'
results, checked once for all of them."""
from typing import Sequence, Tuple

import numpy as np


def read_semantic_and_instances(
        results: dict, transform_name: str, required_keys: Sequence[str],
        loader_args: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The semantic map, the instance masks and the crowd flags of one
    image, checked to belong together.

    Args:
        results (dict): Transform results after ``LoadPanopticAnnotations``
            (and any geometric augmentation).
        transform_name (str): The calling transform, named in errors.
        required_keys (Sequence[str]): Keys that must be present (not None).
        loader_args (str): The ``LoadPanopticAnnotations`` arguments the
            error message suggests.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``gt_seg_map`` (H, W),
        the masks (N, H, W) (``BitmapMasks`` or polygons rasterised) and the
        crowd flags (N,) bool.

    Raises:
        KeyError: A required key is missing.
        ValueError: The masks do not match the semantic map's size, or the
            flags do not match the masks.
    """
    for key in required_keys:
        if results.get(key) is None:
            raise KeyError(
                f'{transform_name} needs "{key}" in the results: run '
                f'LoadPanopticAnnotations ({loader_args}) before it')
    semantic = np.asarray(results['gt_seg_map'])
    gt_masks = results['gt_masks']
    masks = getattr(gt_masks, 'masks', None)
    if masks is None:  # e.g. PolygonMasks
        masks = gt_masks.to_ndarray()
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[1:] != semantic.shape:
        raise ValueError(
            f'gt_masks of shape {masks.shape} do not match gt_seg_map of '
            f'shape {semantic.shape}; a transform changed one but not '
            f'the other ({results.get("img_path")})')
    crowd = np.asarray(results['gt_ignore_flags'], dtype=bool)
    return semantic, masks, crowd
