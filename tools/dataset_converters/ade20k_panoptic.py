# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Convert ADE20K scene parsing + instance annotations to COCO panoptic.

    python tools/dataset_converters/ade20k_panoptic.py \\
        data/ADEChallengeData2016 --nproc 8

Input (``ADEChallengeData2016``, plus the instance track's
``annotations_instance.tar`` of the Places Challenge 2017 unpacked into it)::

    images/{training,validation}/<stem>.jpg
    annotations/{training,validation}/<stem>.png
        (H, W) SceneParse150 ids, 0 = other
    annotations_instance/{training,validation}/<stem>.png
        RGB: R the instance-track category (1..100), G the instance id

Output (the names MaskFormer's ``prepare_ade20k_pan_seg.py`` uses, where
``configs/_base_/datasets/ade20k_panoptic.py`` looks)::

    <out-dir>/ade20k_panoptic_{train,val}.json
    <out-dir>/ade20k_panoptic_{train,val}/<stem>.png

The 150 classes split as MaskFormer's: the 100 categories of the instance
track are things, the other 50 stuff
(:mod:`mmpanoptic_plus.datasets.ade20k_panoptic`). Per image:

- a stuff segment for each stuff class of the semantic map (value 0,
  "other", is VOID);
- a thing segment for each instance id (G > 0) of the instance map, its
  category the SceneParse150 class of its R value; things are laid over
  stuff where the two maps overlap (as in MaskFormer);
- thing-class pixels of the semantic map that no instance covers are VOID.

Category ids are SceneParse150 ids minus one (0..149), as in MaskFormer's
JSON. Segment ids are 1..N (stuff by class id, then things by instance id);
``area`` and ``bbox`` are those of the written PNG. MaskFormer's script
counts a stuff segment's area and box before things are laid over it, so its
JSON can disagree with its own PNG there (and lists stuff segments that
things cover entirely); the PNG contents are the same. mmdet's
``ade20k2coco.py`` computes the x of thing boxes wrongly: use this one.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from mmpanoptic_plus.datasets.ade20k_panoptic import (
    ADE20K_CLASSES, ADE20K_INSTANCE_TO_SCENE_PARSING, ade20k_categories,
    ade20k_category_id)
from mmpanoptic_plus.datasets.panoptic_conversion import \
    write_coco_panoptic_split
from mmpanoptic_plus.structures import (coco_panoptic_segments,
                                        write_panoptic_ids)

#: output split name -> ADE20K folder name
SPLITS = {'train': 'training', 'val': 'validation'}
NUM_SCENE_PARSING_CLASSES = len(ADE20K_CLASSES)  # 150
NUM_INSTANCE_CLASSES = len(ADE20K_INSTANCE_TO_SCENE_PARSING)  # 100
# Thing pixels get the code INSTANCE_CODE_BASE + instance id, stuff pixels
# their SceneParse150 id (< base): one np.unique numbers all segments,
# stuff first.
INSTANCE_CODE_BASE = 256

# SceneParse150 id -> is stuff (index 0, "other", is not)
_IS_STUFF = ~np.isin(
    np.arange(NUM_SCENE_PARSING_CLASSES + 1),
    (0, ) + ADE20K_INSTANCE_TO_SCENE_PARSING)
# instance-track category (R value) -> SceneParse150 id (index 0: none)
_INSTANCE_TO_SCENE_PARSING = np.array(
    (0, ) + ADE20K_INSTANCE_TO_SCENE_PARSING, dtype=np.int64)


def ade20k_to_panoptic(semantic: np.ndarray,
                       instance_rgb: np.ndarray,
                       name: str = 'image') -> Tuple[np.ndarray, List[dict]]:
    """Panoptic id map and ``segments_info`` of one image.

    Args:
        semantic (np.ndarray): (H, W) SceneParse150 ids, 0..150.
        instance_rgb (np.ndarray): (H, W, 3) instance annotation in RGB
            order: R the instance-track category (1..100, 0 for none), G the
            instance id (0 for none, unique in the image whatever its
            category).
        name (str): What to call the image in error messages.

    Returns:
        tuple[np.ndarray, list[dict]]: (H, W) int64 segment ids (0: VOID)
        and one COCO ``segments_info`` entry per segment (``id``,
        ``category_id``, ``area``, ``bbox`` as ``[x, y, w, h]``,
        ``iscrowd`` = 0).

    Raises:
        ValueError: shapes differ, a semantic value above 150, an R value
            above 100, an instance without category or with several.
    """
    semantic = np.asarray(semantic)
    instance_rgb = np.asarray(instance_rgb)
    if instance_rgb.ndim != 3 or instance_rgb.shape[2] != 3 or \
            semantic.shape != instance_rgb.shape[:2]:
        raise ValueError(
            f'{name}: the semantic map {semantic.shape} and the RGB instance '
            f'map {instance_rgb.shape} must be (H, W) and (H, W, 3)')
    semantic = semantic.astype(np.int64)
    category = instance_rgb[..., 0].astype(np.int64)
    instance = instance_rgb[..., 1].astype(np.int64)
    unknown = np.unique(semantic[semantic > NUM_SCENE_PARSING_CLASSES])
    if unknown.size:
        raise ValueError(
            f'{name}: semantic class ids {unknown.tolist()} are not among '
            f'the SceneParse150 ids 0..{NUM_SCENE_PARSING_CLASSES}')

    # category of each instance, from the distinct (instance, R) pairs
    pairs = np.unique(instance * INSTANCE_CODE_BASE + category)
    pair_instance, pair_category = np.divmod(pairs, INSTANCE_CODE_BASE)
    keep = pair_instance > 0
    pair_instance, pair_category = pair_instance[keep], pair_category[keep]
    several = np.unique(pair_instance[1:][np.diff(pair_instance) == 0])
    if several.size:
        raise ValueError(f'{name}: instances {several.tolist()} have pixels '
                         'of several categories (R values)')
    bad = (pair_category < 1) | (pair_category > NUM_INSTANCE_CLASSES)
    if bad.any():
        raise ValueError(
            f'{name}: instances {pair_instance[bad].tolist()} have '
            f'instance-track categories {pair_category[bad].tolist()}, not '
            f'among 1..{NUM_INSTANCE_CLASSES}')

    code = np.where(_IS_STUFF[semantic], semantic, 0)
    code = np.where(instance > 0, INSTANCE_CODE_BASE + instance, code)
    codes, segment_index = np.unique(code, return_inverse=True)
    segment_index = segment_index.reshape(code.shape)
    if codes[0] == 0:  # VOID pixels: index -1
        codes, segment_index = codes[1:], segment_index - 1
    scene_parsing_id = codes.copy()
    is_thing = codes >= INSTANCE_CODE_BASE
    # codes and pair_instance are both sorted: things map one to one
    scene_parsing_id[is_thing] = _INSTANCE_TO_SCENE_PARSING[pair_category]
    return coco_panoptic_segments(
        segment_index, ade20k_category_id(scene_parsing_id))


def _read(path: str, flags: int, what: str) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} "{path}" not found')
    array = cv2.imread(path, flags)
    if array is None:
        raise ValueError(f'cannot decode {what} "{path}"')
    return array


def convert_image(task: Tuple[str, str, str, str, str]) -> Tuple[dict, dict]:
    """Convert one image and write its panoptic PNG.

    Args:
        task (tuple[str]): Stem, image folder, semantic folder, instance
            folder and output PNG folder.

    Returns:
        tuple[dict, dict]: Its ``images`` and ``annotations`` entries.
    """
    stem, image_dir, semantic_dir, instance_dir, png_dir = task
    image_file = osp.join(image_dir, stem + '.jpg')
    with Image.open(image_file) as image:  # reads the header only
        width, height = image.size
    semantic = _read(
        osp.join(semantic_dir, stem + '.png'), cv2.IMREAD_UNCHANGED,
        'semantic annotation')
    instance_bgr = _read(
        osp.join(instance_dir, stem + '.png'), cv2.IMREAD_COLOR,
        'instance annotation')
    if semantic.ndim != 2:
        raise ValueError(f'{stem}: the semantic annotation must be a '
                         f'one-channel PNG, got shape {semantic.shape}')
    if semantic.shape != (height, width):
        raise ValueError(f'{stem}: annotation size {semantic.shape} differs '
                         f'from the image size {(height, width)}')
    id_map, segments_info = ade20k_to_panoptic(
        semantic, instance_bgr[..., ::-1], name=stem)
    write_panoptic_ids(osp.join(png_dir, stem + '.png'), id_map)
    image_info = dict(
        id=stem, file_name=stem + '.jpg', height=height, width=width)
    annotation = dict(
        image_id=stem, file_name=stem + '.png', segments_info=segments_info)
    return image_info, annotation


def find_stems(image_dir: str, semantic_dir: str,
               instance_dir: str) -> List[str]:
    """Sorted stems of the ``*.jpg`` of a split; every folder must exist."""
    for folder, what in ((image_dir, 'image'),
                         (semantic_dir, 'semantic annotation'),
                         (instance_dir, 'instance annotation')):
        if not osp.isdir(folder):
            hint = (' (the instance track\'s annotations_instance.tar, '
                    'unpacked into the dataset root)'
                    if 'instance' in what else '')
            raise FileNotFoundError(
                f'{what} folder "{folder}" not found{hint}')
    stems = sorted(
        osp.splitext(name)[0] for name in os.listdir(image_dir)
        if name.endswith('.jpg'))
    if not stems:
        raise FileNotFoundError(f'no "*.jpg" in "{image_dir}"')
    return stems


def convert_ade20k_panoptic(ade20k_root: str,
                            out_dir: Optional[str] = None,
                            splits: Sequence[str] = ('train', 'val'),
                            nproc: int = 1) -> Dict[str, str]:
    """Write the COCO panoptic JSONs and PNGs of ADE20K.

    Args:
        ade20k_root (str): The ``ADEChallengeData2016`` folder.
        out_dir (str, optional): Output folder. Defaults to ``ade20k_root``.
        splits (Sequence[str]): Among ``'train'``, ``'val'``.
            Defaults to both.
        nproc (int): Worker processes. Defaults to 1.

    Returns:
        dict[str, str]: JSON path of each split.
    """
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f'splits must be among {sorted(SPLITS)}, got '
                         f'{list(splits)}')
    if not osp.isdir(ade20k_root):
        raise FileNotFoundError(f'ADE20K root "{ade20k_root}" not found')
    out_dir = out_dir or ade20k_root
    outputs = {}
    for split in splits:
        folder = SPLITS[split]
        image_dir = osp.join(ade20k_root, 'images', folder)
        semantic_dir = osp.join(ade20k_root, 'annotations', folder)
        instance_dir = osp.join(ade20k_root, 'annotations_instance', folder)
        stems = find_stems(image_dir, semantic_dir, instance_dir)
        png_dir = osp.join(out_dir, f'ade20k_panoptic_{split}')
        os.makedirs(png_dir, exist_ok=True)
        tasks = [(stem, image_dir, semantic_dir, instance_dir, png_dir)
                 for stem in stems]
        json_path = osp.join(out_dir, f'ade20k_panoptic_{split}.json')
        write_coco_panoptic_split(convert_image, tasks, ade20k_categories(),
                                  json_path, nproc)
        outputs[split] = json_path
    return outputs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert ADE20K scene parsing + instance annotations to '
        'COCO panoptic format (150 classes: 100 things, 50 stuff)')
    parser.add_argument(
        'ade20k_root', help='the ADEChallengeData2016 folder')
    parser.add_argument(
        '--out-dir', help='output folder (default: ADE20K_ROOT)')
    parser.add_argument('--nproc', type=int, default=1, help='processes')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'val'],
        choices=sorted(SPLITS),
        help='splits')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        outputs = convert_ade20k_panoptic(
            args.ade20k_root, args.out_dir, args.splits, args.nproc)
    except (FileNotFoundError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for split, path in outputs.items():
        print(f'{split}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
