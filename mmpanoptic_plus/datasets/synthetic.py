# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Generator of the synthetic panoptic set (COCO panoptic format).

Layout written under ``out_dir``::

    train/<id>.png, val/<id>.png                  RGB images
    annotations/panoptic_{train,val}.json         COCO panoptic JSON
    annotations/panoptic_{train,val}/<id>.png     id PNGs (same stem)

Scene: sky above a random smooth horizon, ground below (each with its own
colour and texture noise per image), 0-8 discs / squares / triangles of
10-80 px (at 256x256; scaled with the image) in random colours, later shapes
occluding earlier ones, sometimes one crowd segment (a cluster of small
shapes of one class, ``iscrowd=1``), and a void frame around the image.
Ground truth keeps only visible pixels; shapes left with fewer than
``MIN_SEGMENT_AREA`` pixels are dropped (their pixels become void).
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from mmpanoptic_plus.structures import write_panoptic_ids
from .panoptic_utils import VOID_ID, lookup_segments, segment_areas_and_boxes

SYNTHETIC_CATEGORIES = (
    dict(id=1, name='disc', isthing=1, color=[220, 20, 60],
         supercategory='shape'),
    dict(id=2, name='square', isthing=1, color=[0, 0, 142],
         supercategory='shape'),
    dict(id=3, name='triangle', isthing=1, color=[250, 170, 30],
         supercategory='shape'),
    dict(id=4, name='sky', isthing=0, color=[70, 130, 180],
         supercategory='background'),
    dict(id=5, name='ground', isthing=0, color=[152, 118, 84],
         supercategory='background'),
)
DISC, SQUARE, TRIANGLE, SKY, GROUND = 1, 2, 3, 4, 5
THING_CATEGORY_IDS = (DISC, SQUARE, TRIANGLE)

VOID_FRAME = 3  # px of void around the image
MIN_SEGMENT_AREA = 16  # shapes with fewer visible pixels are dropped
MAX_THINGS = 8
CROWD_PROB = 0.35  # chance that an image has one crowd segment
SAME_AS_PREVIOUS_PROB = 0.3  # shape copies class+colour of the previous one
REFERENCE_SIZE = 256  # shape sizes below are in px at this image size
THING_SIZE = (10, 80)
CROWD_PART_SIZE = (5, 10)
_SPLIT_CODES = {'train': 0, 'val': 1}


def _scaled_range(size_range: Tuple[int, int], scale: float,
                  floor: int) -> Tuple[int, int]:
    low = max(floor, int(round(size_range[0] * scale)))
    high = max(low, int(round(size_range[1] * scale)))
    return low, high


def _shape_mask(category_id: int, center: Tuple[float, float], size: int,
                angle: float, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of one shape drawn with cv2 (no anti-aliasing, so
    the image and the ground truth agree pixel for pixel)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cx, cy = center
    if category_id == DISC:
        cv2.circle(mask, (int(round(cx)), int(round(cy))),
                   max(1, size // 2), 1, thickness=-1, lineType=cv2.LINE_8)
        return mask
    if category_id == SQUARE:
        corners = cv2.boxPoints(((cx, cy), (size, size), angle))
    else:  # equilateral triangle of side ``size``
        radius = size / np.sqrt(3.0)
        theta = np.deg2rad(angle) + np.arange(3) * 2 * np.pi / 3
        corners = np.stack(
            [cx + radius * np.cos(theta), cy + radius * np.sin(theta)], 1)
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1,
                 lineType=cv2.LINE_8)
    return mask


def _contrasting_colour(rng: np.random.Generator,
                        avoid: Sequence[np.ndarray]) -> np.ndarray:
    """A random RGB colour, redrawn (a few times) while it is close to one
    of ``avoid`` so that shapes stay visible on the background."""
    colour = rng.uniform(0, 255, size=3)
    for _ in range(20):
        if min(np.linalg.norm(colour - a) for a in avoid) >= 80:
            break
        colour = rng.uniform(0, 255, size=3)
    return colour


def _background(rng: np.random.Generator, height: int, width: int,
                noise: np.ndarray) -> Tuple[np.ndarray, np.ndarray, list]:
    """Sky over a smooth random horizon, ground below.

    Args:
        noise (np.ndarray): (H, W, 3) float32 standard normal texture field.

    Returns:
        tuple: image (H, W, 3) float32, id map (H, W) int64, and the two
        background mean colours.
    """
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)[:, None]
    freqs = rng.uniform(0.5, 3.0, size=(3, 1))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 1))
    amplitudes = rng.uniform(0, 0.05 * height, size=(3, 1))
    horizon = rng.uniform(0.35, 0.65) * height + (
        amplitudes * np.sin(2 * np.pi * freqs * xs / width + phases)).sum(0)
    is_sky = ys < horizon[None, :]
    id_map = np.where(is_sky, SKY, GROUND).astype(np.int64)

    sky_colour = rng.uniform([60, 110, 170], [170, 200, 255])
    ground_colour = rng.uniform([50, 60, 20], [170, 150, 90])
    # sky: vertical brightness gradient + fine noise (sigma 5)
    sky = (sky_colour + ((ys / height - 0.5) * rng.uniform(-40, 40))[..., None]
           ).astype(np.float32)  # (H, 1, 3)
    # ground: blotchy low-frequency texture + coarser noise (sigma 10)
    ground = ground_colour.astype(np.float32) + cv2.resize(
        rng.normal(0, 18, (8, 8, 3)).astype(np.float32), (width, height),
        interpolation=cv2.INTER_CUBIC)
    image = np.where(is_sky[..., None], sky, ground)
    image += noise * np.where(is_sky, np.float32(5),
                              np.float32(10))[..., None]
    return image, id_map, [sky_colour, ground_colour]


def render_scene(rng: np.random.Generator, height: int,
                 width: int) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """Draw one synthetic scene.

    Args:
        rng (np.random.Generator): Source of randomness.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple:

        - image: (H, W, 3) uint8 RGB.
        - id_map: (H, W) int64 segment ids, 0 for void.
        - segments: list of dict ``id``, ``category_id``, ``iscrowd``,
          ``area``, ``bbox`` ([x, y, w, h]) of the visible segments.
    """
    scale = min(height, width) / REFERENCE_SIZE
    thing_low, thing_high = _scaled_range(THING_SIZE, scale, floor=6)
    part_low, part_high = _scaled_range(CROWD_PART_SIZE, scale, floor=3)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32)
    image, id_map, backgrounds = _background(rng, height, width, noise)
    segments = [
        dict(id=SKY, category_id=SKY, iscrowd=0),
        dict(id=GROUND, category_id=GROUND, iscrowd=0)
    ]

    # --- plan the things (and where the crowd goes in the drawing order)
    plans = []
    for k in range(int(rng.integers(0, MAX_THINGS + 1))):
        size = int(rng.integers(thing_low, thing_high + 1))
        if plans and rng.random() < SAME_AS_PREVIOUS_PROB:
            # a neighbour of the same class and colour: only shape and
            # extent separate the two instances
            prev = plans[-1]
            category_id, colour = prev['category_id'], prev['colour']
            direction = rng.uniform(0, 2 * np.pi)
            distance = (prev['size'] + size) / 2 * rng.uniform(0.6, 1.1)
            center = (prev['center'][0] + distance * np.cos(direction),
                      prev['center'][1] + distance * np.sin(direction))
        else:
            category_id = int(rng.choice(THING_CATEGORY_IDS))
            colour = _contrasting_colour(rng, backgrounds)
            center = (rng.uniform(0, width), rng.uniform(0, height))
        plans.append(
            dict(
                id=category_id * 1000 + k + 1,
                category_id=category_id,
                colour=colour,
                center=center,
                size=size,
                parts=[(category_id, center, size, rng.uniform(0, 360))],
                iscrowd=0))
    if rng.random() < CROWD_PROB:
        category_id = int(rng.choice(THING_CATEGORY_IDS))
        cluster_center = np.array([rng.uniform(0, width),
                                   rng.uniform(0, height)])
        spread = 3 * part_high
        parts = [(category_id,
                  tuple(cluster_center + rng.normal(0, spread / 2, size=2)),
                  int(rng.integers(part_low, part_high + 1)),
                  rng.uniform(0, 360))
                 for _ in range(int(rng.integers(4, 9)))]
        crowd = dict(
            id=category_id,  # crowd ids are the bare category id, as in
            category_id=category_id,  # Cityscapes
            colour=_contrasting_colour(rng, backgrounds),
            parts=parts,
            iscrowd=1)
        plans.insert(int(rng.integers(0, len(plans) + 1)), crowd)

    # --- draw: later shapes overwrite (occlude) earlier ones
    for plan in plans:
        mask = np.zeros((height, width), dtype=np.uint8)
        for category_id, center, size, angle in plan['parts']:
            mask |= _shape_mask(category_id, center, size, angle, height,
                                width)
        mask = mask.astype(bool)
        id_map[mask] = plan['id']
        # shapes: flat colour + fine noise (sigma 4)
        image[mask] = plan['colour'] + 4 * noise[mask]
        segments.append(
            dict(
                id=plan['id'],
                category_id=plan['category_id'],
                iscrowd=plan['iscrowd']))

    # --- ground truth: void frame, then drop what is (almost) invisible
    id_map[:VOID_FRAME] = VOID_ID
    id_map[-VOID_FRAME:] = VOID_ID
    id_map[:, :VOID_FRAME] = VOID_ID
    id_map[:, -VOID_FRAME:] = VOID_ID
    segment_ids = np.array([s['id'] for s in segments], dtype=np.int64)
    areas, _ = segment_areas_and_boxes(
        lookup_segments(id_map, segment_ids), len(segments))
    is_thing = np.array([s['category_id'] in THING_CATEGORY_IDS
                         for s in segments])
    dropped = np.where(is_thing, areas < MIN_SEGMENT_AREA, areas == 0)
    id_map[np.isin(id_map, segment_ids[dropped])] = VOID_ID
    segments = [s for s, d in zip(segments, dropped) if not d]

    segment_ids = segment_ids[~dropped]
    areas, boxes = segment_areas_and_boxes(
        lookup_segments(id_map, segment_ids), len(segments))
    for segment, area, box in zip(segments, areas, boxes):
        segment['area'] = int(area)
        segment['bbox'] = [int(v) for v in box]
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image, id_map, segments


def _write_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f'cannot write "{path}"')


def generate_synthetic_panoptic(out_dir: str,
                                num_train: int,
                                num_val: int,
                                size: Tuple[int, int] = (256, 256),
                                seed: int = 0) -> Dict[str, str]:
    """Write the synthetic panoptic set (layout in the module docstring).

    Deterministic: the same arguments give byte-identical files. Image
    ``i`` of a split is drawn from ``np.random.default_rng([seed, split,
    i])`` (split 0 for train, 1 for val: the val split uses a seed derived
    from ``seed``); a val image that equals a train image byte for byte is
    redrawn.

    Args:
        out_dir (str): Root folder (created if needed).
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        size (tuple[int, int]): (height, width). Defaults to (256, 256).
        seed (int): Seed. Defaults to 0.

    Returns:
        dict[str, str]: Path of the annotation JSON of each split.
    """
    height, width = (int(v) for v in size)
    if min(height, width) <= 2 * VOID_FRAME + 4:
        raise ValueError(f'image size {size} is too small for the '
                         f'{VOID_FRAME} px void frame')
    if num_train < 0 or num_val < 0:
        raise ValueError('image counts must be >= 0')
    train_digests = set()
    ann_files = {}
    for split, count in (('train', num_train), ('val', num_val)):
        img_dir = osp.join(out_dir, split)
        seg_dir = osp.join(out_dir, 'annotations', f'panoptic_{split}')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(seg_dir, exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            attempt = 0
            while True:
                rng = np.random.default_rng(
                    [seed, _SPLIT_CODES[split], index, attempt])
                image, id_map, segments = render_scene(rng, height, width)
                digest = hashlib.sha1(image.tobytes()).hexdigest()
                if split == 'train':
                    train_digests.add(digest)
                    break
                if digest not in train_digests:
                    break
                attempt += 1
            image_id = index + 1
            file_name = f'{image_id:06d}.png'
            _write_png(osp.join(img_dir, file_name), image)
            write_panoptic_ids(osp.join(seg_dir, file_name), id_map)
            images.append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    height=height,
                    width=width))
            annotations.append(
                dict(
                    image_id=image_id,
                    file_name=file_name,
                    segments_info=segments))
        ann_file = osp.join(out_dir, 'annotations', f'panoptic_{split}.json')
        with open(ann_file, 'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=[dict(c) for c in SYNTHETIC_CATEGORIES]), f)
        ann_files[split] = ann_file
    return ann_files
