# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Pure, vectorized helpers that turn panoptic maps into pictures.

A *panoptic map* here is an integer array ``(H, W)`` in mmdet's encoding:
``label + instance_id * INSTANCE_OFFSET``; stuff (and crowd) segments have
instance id 0, thing instances ids >= 1, and void is the label
``num_classes``. Each distinct value is one segment.

None of these functions loops over pixels; colouring is one look-up-table
indexing for the whole image.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmdet.visualization.palette import get_palette

from mmpanoptic_plus.structures import (INSTANCE_OFFSET, encode_panoptic,
                                        split_panoptic)

ArrayLike = Union[np.ndarray, torch.Tensor]
ColorType = Tuple[int, int, int]

# Offsets added to a class colour to tell apart the instances of one class:
# row r is used for the r-th instance of a class in an image (row 0, the
# first instance or the crowd/stuff segment, keeps the class colour). In
# channel 0 every row has a different magnitude, so after the reflection in
# ``_apply_offsets`` (c + d, or c - d where c + d leaves [0, 255]) two rows
# can never give the same colour: instances 0..NUM_INSTANCE_COLORS-1 of one
# class always get pairwise distinct colours, whatever the class colour.
NUM_INSTANCE_COLORS = 64
_MIN_OFFSET = 24


def _make_instance_offsets() -> np.ndarray:
    # A fixed seed: colours are deterministic across runs and processes.
    rng = np.random.default_rng(20240607)
    num_rows = NUM_INSTANCE_COLORS - 1
    magnitudes = np.stack([
        _MIN_OFFSET + rng.permutation(num_rows) for _ in range(3)], axis=1)
    signs = rng.choice(np.array([-1, 1]), size=(num_rows, 3))
    offsets = np.zeros((NUM_INSTANCE_COLORS, 3), dtype=np.int64)
    offsets[1:] = magnitudes * signs
    return offsets


INSTANCE_COLOR_OFFSETS = _make_instance_offsets()


def to_numpy_map(pan_map: ArrayLike) -> np.ndarray:
    """Return a panoptic/segment-id map as an int64 array ``(H, W)``.

    Args:
        pan_map (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``.

    Returns:
        np.ndarray: int64 array of shape ``(H, W)``.
    """
    if isinstance(pan_map, torch.Tensor):
        pan_map = pan_map.detach().cpu().numpy()
    pan_map = np.asarray(pan_map)
    if pan_map.ndim == 3 and pan_map.shape[0] == 1:
        pan_map = pan_map[0]
    if pan_map.ndim != 2:
        raise ValueError('A panoptic map must have shape (H, W) or (1, H, W), '
                         f'got {tuple(pan_map.shape)}')
    if not np.issubdtype(pan_map.dtype, np.integer):
        raise ValueError('A panoptic map must hold integers, got dtype '
                         f'{pan_map.dtype}')
    return pan_map.astype(np.int64, copy=False)


def resolve_palette(palette: Optional[Union[str, Sequence]],
                    num_classes: int) -> np.ndarray:
    """Colour table for ``num_classes`` classes.

    Args:
        palette (str | Sequence | None): A list of ``(R, G, B)`` tuples (as
            in ``dataset_meta['palette']``), or a name understood by mmdet's
            :func:`get_palette` (``'random'``, ``'coco'``, ...). ``None``
            gives mmdet's deterministic random palette.
        num_classes (int): Number of classes.

    Returns:
        np.ndarray: uint8 array ``(num_classes, 3)``, RGB.
    """
    if palette is None:
        palette = 'random'
    if isinstance(palette, np.ndarray):
        palette = [tuple(color) for color in palette.tolist()]
    if isinstance(palette, (list, tuple)) and len(palette) == 3 and all(
            np.isscalar(c) for c in palette):
        # one colour for every class
        palette = tuple(int(c) for c in palette)
    elif isinstance(palette, (list, tuple)):
        palette = list(palette)
        if len(palette) < num_classes:
            raise ValueError(f'The palette has {len(palette)} colours but '
                             f'there are {num_classes} classes')
    colors = np.asarray(get_palette(palette, num_classes)[:num_classes],
                        dtype=np.int64)
    if colors.shape != (num_classes, 3) or colors.min(initial=0) < 0 or \
            colors.max(initial=0) > 255:
        raise ValueError('palette colours must be (R, G, B) triples in '
                         '[0, 255]')
    return colors.astype(np.uint8)


def _rank_within_label(labels: np.ndarray,
                       instance_ids: np.ndarray) -> np.ndarray:
    """Rank of each segment among the segments of its label, by instance id.

    Args:
        labels (np.ndarray): ``(N,)`` labels of distinct segments.
        instance_ids (np.ndarray): ``(N,)`` their instance ids.

    Returns:
        np.ndarray: ``(N,)`` 0-based ranks.
    """
    order = np.lexsort((instance_ids, labels))
    sorted_labels = labels[order]
    group_start = np.searchsorted(sorted_labels, sorted_labels, side='left')
    ranks = np.empty_like(order)
    ranks[order] = np.arange(len(order)) - group_start
    return ranks


def _apply_offsets(base_colors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Add offsets to colours, reflecting instead of clipping.

    Clipping would map different offsets to the same colour near 0 and 255;
    reflecting (``c - d`` where ``c + d`` leaves the range) keeps them apart.
    """
    base = base_colors.astype(np.int64)
    shifted = base + offsets
    out_of_range = (shifted < 0) | (shifted > 255)
    shifted = np.where(out_of_range, base - offsets, shifted)
    return np.clip(shifted, 0, 255).astype(np.uint8)


def split_panoptic_values(
        values: np.ndarray,
        num_classes: int,
        instance_offset: int = INSTANCE_OFFSET
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split encoded panoptic values into labels, instance ids and void flag.

    Args:
        values (np.ndarray): Encoded values, any shape.
        num_classes (int): Number of classes; the label ``num_classes`` is
            void.
        instance_offset (int): The encoding's offset.

    Returns:
        tuple[np.ndarray]: labels, instance ids and a boolean void mask, each
        of the shape of ``values``.

    Raises:
        ValueError: On negative values or labels above ``num_classes``: the
            map was not made for these classes.
    """
    if values.size and values.min() < 0:
        raise ValueError('Panoptic values must be >= 0, got '
                         f'{int(values.min())}')
    labels, instance_ids = split_panoptic(values, instance_offset)
    if values.size and labels.max() > num_classes:
        bad = np.unique(labels[labels > num_classes])
        raise ValueError(
            f'The panoptic map holds labels {bad.tolist()} but there are only '
            f'{num_classes} classes (void = {num_classes}); are the classes '
            'those the model was trained with?')
    is_void = labels == num_classes
    return labels, instance_ids, is_void


def panoptic_segment_colors(values: np.ndarray,
                            num_classes: int,
                            palette: Optional[Union[str, Sequence]] = None,
                            void_color: ColorType = (0, 0, 0),
                            instance_offset: int = INSTANCE_OFFSET
                            ) -> np.ndarray:
    """Colour of each distinct panoptic value.

    Stuff segments (instance id 0) take their class colour. The instances of
    a thing class are ranked by instance id; the r-th takes the class colour
    shifted by :data:`INSTANCE_COLOR_OFFSETS` ``[r % 64]`` (so the first
    keeps the class colour and up to 64 instances of a class get distinct
    colours).

    Args:
        values (np.ndarray): ``(N,)`` distinct encoded values.
        num_classes (int): Number of classes (void label).
        palette (str | Sequence | None): See :func:`resolve_palette`.
        void_color (tuple): RGB colour of void.
        instance_offset (int): The encoding's offset.

    Returns:
        np.ndarray: uint8 ``(N, 3)`` RGB colours.
    """
    class_colors = resolve_palette(palette, num_classes)
    labels, instance_ids, is_void = split_panoptic_values(
        values, num_classes, instance_offset)
    ranks = _rank_within_label(labels, instance_ids)
    safe_labels = np.where(is_void, 0, labels)
    base = class_colors[safe_labels] if num_classes else np.zeros(
        (len(values), 3), dtype=np.uint8)
    colors = _apply_offsets(
        base, INSTANCE_COLOR_OFFSETS[ranks % NUM_INSTANCE_COLORS])
    colors[is_void] = np.asarray(void_color, dtype=np.uint8)
    return colors


def panoptic_to_rgb(pan_map: ArrayLike,
                    num_classes: int,
                    palette: Optional[Union[str, Sequence]] = None,
                    void_color: ColorType = (0, 0, 0),
                    instance_offset: int = INSTANCE_OFFSET) -> np.ndarray:
    """Colour a panoptic map: stuff by class, things by instance.

    Args:
        pan_map (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``
            encoded panoptic map (``label + id * instance_offset``, void =
            ``num_classes``).
        num_classes (int): Number of classes.
        palette (str | Sequence | None): Class colours, see
            :func:`resolve_palette`.
        void_color (tuple): RGB colour for void pixels.
        instance_offset (int): The encoding's offset (mmdet's 1000).

    Returns:
        np.ndarray: uint8 image ``(H, W, 3)``, RGB.
    """
    pan_map = to_numpy_map(pan_map)
    values, inverse = np.unique(pan_map, return_inverse=True)
    lut = panoptic_segment_colors(values, num_classes, palette, void_color,
                                  instance_offset)
    return lut[inverse.reshape(pan_map.shape)]


def panoptic_boundaries(pan_map: ArrayLike) -> np.ndarray:
    """Pixels that touch (4-connectivity) a pixel of another segment.

    Both sides of every boundary are marked, so an outline is two pixels
    wide and symmetric; the image border is not a boundary.

    Args:
        pan_map (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``
            map of segment values (any integer encoding).

    Returns:
        np.ndarray: bool ``(H, W)``.
    """
    pan_map = to_numpy_map(pan_map)
    boundary = np.zeros(pan_map.shape, dtype=bool)
    horizontal = pan_map[:, 1:] != pan_map[:, :-1]
    vertical = pan_map[1:, :] != pan_map[:-1, :]
    boundary[:, 1:] |= horizontal
    boundary[:, :-1] |= horizontal
    boundary[1:, :] |= vertical
    boundary[:-1, :] |= vertical
    return boundary


def segment_label_points(
        pan_map: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A point deep inside each segment, where its label text can go.

    The point is the segment's pixel farthest (L2) from any boundary or the
    image border, found for all segments at once: one distance transform and
    one sort by (segment, distance).

    Args:
        pan_map (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``.

    Returns:
        tuple[np.ndarray]: ``values`` ``(N,)`` (the distinct values, sorted),
        ``points`` ``(N, 2)`` int ``(x, y)`` and ``areas`` ``(N,)`` pixel
        counts.
    """
    pan_map = to_numpy_map(pan_map)
    height, width = pan_map.shape
    interior = ~panoptic_boundaries(pan_map)
    # a zero frame makes the image border count as a boundary
    framed = np.zeros((height + 2, width + 2), dtype=np.uint8)
    framed[1:-1, 1:-1] = interior
    distance = cv2.distanceTransform(framed, cv2.DIST_L2, 5)[1:-1, 1:-1]
    values, inverse, areas = np.unique(
        pan_map, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # sorted by segment, then by distance: the last of each run is the max
    order = np.lexsort((distance.reshape(-1), inverse))
    best_flat = order[np.cumsum(areas) - 1]
    points = np.stack([best_flat % width, best_flat // width], axis=1)
    return values, points.astype(np.int64), areas.astype(np.int64)


def segment_ids_to_panoptic(seg_ids: ArrayLike,
                            segments_info: Sequence[Dict],
                            num_classes: int,
                            instance_offset: int = INSTANCE_OFFSET
                            ) -> np.ndarray:
    """Encode a raw segment-id map (COCO panoptic PNG ids) like predictions.

    Thing segments that are not crowd become ``label + k * instance_offset``
    with ``k = 1, 2, ...`` in the order of ``segments_info``; stuff and crowd
    segments become ``label``; id 0 and ids missing from ``segments_info``
    become void (``num_classes``).

    Args:
        seg_ids (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)`` ids
            (``R + 256 G + 256^2 B``).
        segments_info (Sequence[dict]): Dicts with ``'id'``, ``'category'``
            (contiguous label), ``'is_thing'`` and optionally ``'iscrowd'``.
        num_classes (int): Number of classes.
        instance_offset (int): The encoding's offset.

    Returns:
        np.ndarray: int64 ``(H, W)`` encoded panoptic map.
    """
    seg_ids = to_numpy_map(seg_ids)
    labels, is_instance = [], []
    for info in segments_info:
        label = int(info['category'])
        if not 0 <= label < num_classes:
            raise ValueError(f'Segment {info["id"]} has category {label}, '
                             f'outside [0, {num_classes})')
        # 'is_thing' in our data samples, 'isthing' in raw COCO categories
        is_thing = info.get('is_thing', info.get('isthing', False))
        labels.append(label)
        is_instance.append(bool(is_thing and not info.get('iscrowd', False)))
    # instances numbered 1, 2, ... in annotation order; 0 for the others
    is_instance = np.array(is_instance, dtype=bool)
    instance_ids = np.cumsum(is_instance) * is_instance
    encoded = encode_panoptic(
        np.array(labels, dtype=np.int64), instance_ids, instance_offset)
    encoded_by_id = {
        int(info['id']): value
        for info, value in zip(segments_info, encoded.tolist())
    }
    ids, inverse = np.unique(seg_ids, return_inverse=True)
    # one dictionary look-up per distinct id, then one LUT indexing
    lut = np.array([encoded_by_id.get(int(i), num_classes) for i in ids],
                   dtype=np.int64)
    return lut[inverse.reshape(seg_ids.shape)]


def class_names_from_meta(dataset_meta: Dict) -> List[str]:
    """All class names, things first, from a ``dataset_meta`` dict.

    Args:
        dataset_meta (dict): With ``classes``, or ``thing_classes`` and
            ``stuff_classes``.

    Returns:
        list[str]: Class names.
    """
    classes = dataset_meta.get('classes')
    if classes is None and ('thing_classes' in dataset_meta
                            or 'stuff_classes' in dataset_meta):
        classes = list(dataset_meta.get('thing_classes', ())) + list(
            dataset_meta.get('stuff_classes', ()))
    if classes is None:
        raise ValueError(
            'dataset_meta gives no class names: it needs "classes" or '
            '"thing_classes" + "stuff_classes" to draw panoptic maps')
    return list(classes)
