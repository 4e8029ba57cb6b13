# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Convert PASCAL VOC 2012 (+ SBD) class and object annotations to COCO
panoptic.

    python tools/dataset_converters/voc_panoptic.py data/VOCdevkit/VOC2012 \\
        --sbd-root data/benchmark_RELEASE/dataset --nproc 8

Input::

    VOC2012/JPEGImages/<stem>.jpg                (every image, SBD's too)
    VOC2012/SegmentationClass/<stem>.png         palette PNG: 0 background,
                                                 1..20 classes, 255 void
    VOC2012/SegmentationObject/<stem>.png        palette PNG: 0 none,
                                                 1..N instances, 255 void
    VOC2012/ImageSets/Segmentation/{train,val}.txt   (1,464 / 1,449 stems)
    <sbd-root>/cls/<stem>.mat                    GTcls.Segmentation (H, W)
    <sbd-root>/inst/<stem>.mat                   GTinst.Segmentation (H, W)
                                                 and GTinst.Categories (N, 1)
    <sbd-root>/{train,val}.txt                   (8,498 / 2,857 stems)

The PNGs are read as palette indices (PIL mode ``P``), not as colours. SBD is
the "Semantic Boundaries Dataset" (benchmark.tgz unpacked: its ``dataset``
folder); its images are VOC2011 trainval images, all in VOC2012's
JPEGImages, so ``JPEGImages`` serves both.

Output (where ``configs/_base_/datasets/voc_panoptic.py`` looks)::

    <out-dir>/voc_panoptic_{train_aug,val}.json
    <out-dir>/voc_panoptic_{train_aug,val}/<stem>.png

Splits (every list an input, see ``--voc-lists`` and ``--sbd-lists``):

- ``val``: VOC's ``val.txt``, 1,449 images, VOC annotations.
- ``train_aug``: (SBD train + SBD val + VOC train) minus VOC val, the usual
  "augmented" recipe of DeepLab and of PSS (Sec. 4.1: 10,582 images). An
  image VOC annotates (its ``train.txt``) takes VOC's annotation, the others
  SBD's: VOC's masks are drawn finely with a void band on uncertain
  boundaries, as the val set that is evaluated is, whereas SBD's are coarser
  crowd-sourced polygons without void.
- ``train``: VOC's ``train.txt`` alone (1,464 images, no SBD needed).

Per image: category ids are the VOC label values (things 1..20 in VOC order,
background 0), things first in ``categories``. Segments are background (one
stuff segment, id 1 when present), then one thing segment per instance in
instance-index order, ids 1..N; ``area`` and ``bbox`` are those of the
written PNG, ``iscrowd`` 0. VOID (id 0): the 255 band of either map (it
also covers VOC's "difficult" objects) and thing-class pixels of no
instance. An instance whose pixels carry several classes, or the background
class, contradicts itself and is an error, as is an SBD instance whose
``GTinst.Categories`` entry differs from its pixels' class.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from mmpanoptic_plus.datasets.voc_panoptic import (NUM_VOC_THINGS,
                                                   VOC_BACKGROUND, VOC_VOID,
                                                   voc_panoptic_categories)
from mmpanoptic_plus.datasets.panoptic_conversion import \
    write_coco_panoptic_split
from mmpanoptic_plus.structures import (coco_panoptic_segments,
                                        write_panoptic_ids)

SPLITS = ('train_aug', 'val', 'train')
VOC, SBD = 'voc', 'sbd'
# Instance pixels get the code INSTANCE_CODE_BASE + instance index, the
# background the code BACKGROUND_CODE: one np.unique numbers all segments,
# background first.
INSTANCE_CODE_BASE = 256
BACKGROUND_CODE = 1
# Values of (instance, class) pairs: instance * CLASS_CODE_BASE + class.
CLASS_CODE_BASE = 256


def voc_to_panoptic(
        semantic: np.ndarray,
        instance: np.ndarray,
        name: str = 'image',
        instance_categories: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, List[dict]]:
    """Panoptic id map and ``segments_info`` of one image.

    Args:
        semantic (np.ndarray): (H, W) VOC class values: 0 background,
            1..20 objects, 255 void.
        instance (np.ndarray): (H, W) instance indices: 0 none, 1..254 an
            instance, 255 void.
        name (str): What to call the image in error messages.
        instance_categories (np.ndarray, optional): (N, ) class value of
            instance ``k`` at index ``k - 1`` (SBD's ``GTinst.Categories``),
            checked against the class map. Defaults to None (VOC: the class
            map is the only source).

    Returns:
        tuple[np.ndarray, list[dict]]: (H, W) int64 segment ids (0: VOID)
        and one COCO ``segments_info`` entry per segment (``id``,
        ``category_id``, ``area``, ``bbox`` as ``[x, y, w, h]``,
        ``iscrowd`` = 0).

    Raises:
        ValueError: shapes differ, a class value outside 0..20 and 255, an
            instance with several classes or on background, a category
            disagreeing with ``instance_categories``.
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 2 or semantic.shape != instance.shape:
        raise ValueError(
            f'{name}: the class map {semantic.shape} and the instance map '
            f'{instance.shape} must both be (H, W) of the same size')
    semantic = semantic.astype(np.int64)
    instance = instance.astype(np.int64)
    unknown = np.unique(semantic[(semantic > NUM_VOC_THINGS)
                                 & (semantic != VOC_VOID)])
    if unknown.size:
        raise ValueError(
            f'{name}: class values {unknown.tolist()} are not VOC labels '
            f'(0..{NUM_VOC_THINGS}, {VOC_VOID} void)')
    if instance.min(initial=0) < 0 or instance.max(initial=0) > VOC_VOID:
        raise ValueError(f'{name}: instance indices must lie in '
                         f'0..{VOC_VOID}')

    void = (semantic == VOC_VOID) | (instance == VOC_VOID)
    is_instance = (instance > 0) & ~void
    is_background = (semantic == VOC_BACKGROUND) & (instance == 0) & ~void

    # class of each instance, from the distinct (instance, class) pairs
    pairs = np.unique(instance[is_instance] * CLASS_CODE_BASE +
                      semantic[is_instance])
    pair_instance, pair_class = np.divmod(pairs, CLASS_CODE_BASE)
    several = np.unique(pair_instance[1:][np.diff(pair_instance) == 0])
    if several.size:
        raise ValueError(f'{name}: instances {several.tolist()} have pixels '
                         'of several classes in the class map')
    on_background = pair_class == VOC_BACKGROUND
    if on_background.any():
        raise ValueError(
            f'{name}: instances {pair_instance[on_background].tolist()} lie '
            'on background pixels of the class map')
    if instance_categories is not None:
        _check_categories(pair_instance, pair_class,
                          np.asarray(instance_categories).reshape(-1), name)

    code = np.zeros(semantic.shape, dtype=np.int64)  # VOID
    code[is_background] = BACKGROUND_CODE
    code[is_instance] = INSTANCE_CODE_BASE + instance[is_instance]
    codes, segment_index = np.unique(code, return_inverse=True)
    segment_index = segment_index.reshape(code.shape)
    if codes[0] == 0:  # VOID pixels: index -1
        codes, segment_index = codes[1:], segment_index - 1
    # codes and pair_instance are both sorted: instances map one to one
    category = np.full(len(codes), VOC_BACKGROUND, dtype=np.int64)
    category[codes >= INSTANCE_CODE_BASE] = pair_class
    return coco_panoptic_segments(segment_index, category)


def _check_categories(pair_instance: np.ndarray, pair_class: np.ndarray,
                      instance_categories: np.ndarray, name: str) -> None:
    """Raise if ``instance_categories[k - 1]`` is not instance k's class."""
    beyond = pair_instance > len(instance_categories)
    if beyond.any():
        raise ValueError(
            f'{name}: instances {pair_instance[beyond].tolist()} have no '
            f'entry in GTinst.Categories ({len(instance_categories)} '
            'entries)')
    listed = instance_categories[pair_instance - 1].astype(np.int64)
    differ = listed != pair_class
    if differ.any():
        raise ValueError(
            f'{name}: instances {pair_instance[differ].tolist()} are '
            f'classes {listed[differ].tolist()} in GTinst.Categories but '
            f'{pair_class[differ].tolist()} in the class map')


def read_voc_png(path: str, what: str) -> np.ndarray:
    """(H, W) uint8 label indices of a VOC palette PNG.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a one-channel (palette or grey) PNG: a colour
            rendering's RGB values are not labels.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} "{path}" not found')
    with Image.open(path) as image:
        if image.mode not in ('P', 'L'):
            raise ValueError(
                f'{what} "{path}" is a mode-{image.mode} image; VOC '
                'annotations are palette PNGs (mode P) whose indices are '
                'the labels')
        # np.asarray of a mode-P image gives the indices, not the colours
        return np.asarray(image, dtype=np.uint8)


def read_sbd_mat(path: str, key: str, what: str) -> Tuple[np.ndarray, dict]:
    """``Segmentation`` (H, W) of SBD's ``GTcls`` / ``GTinst`` struct, and
    the struct's other fields.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no ``key`` struct with a 2-D ``Segmentation``.
    """
    from scipy.io import loadmat
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} "{path}" not found')
    mat = loadmat(path)
    struct = mat.get(key)
    if struct is None or struct.dtype.names is None or \
            'Segmentation' not in struct.dtype.names:
        raise ValueError(f'{what} "{path}" has no "{key}.Segmentation" '
                         '(an SBD cls/*.mat or inst/*.mat is expected)')
    fields = {field: struct[field][0, 0] for field in struct.dtype.names}
    segmentation = fields.pop('Segmentation')
    if segmentation.ndim != 2:
        raise ValueError(f'{what} "{path}": {key}.Segmentation has shape '
                         f'{segmentation.shape}, not (H, W)')
    return segmentation, fields


def read_annotation(stem: str, source: str, voc_root: str,
                    sbd_root: Optional[str]) -> Tuple[np.ndarray, ...]:
    """(class map, instance map, instance categories or None) of one image
    from VOC's PNGs (``source='voc'``) or SBD's .mat files (``'sbd'``)."""
    if source == VOC:
        semantic = read_voc_png(
            osp.join(voc_root, 'SegmentationClass', stem + '.png'),
            'VOC class annotation')
        instance = read_voc_png(
            osp.join(voc_root, 'SegmentationObject', stem + '.png'),
            'VOC object annotation')
        return semantic, instance, None
    semantic, _ = read_sbd_mat(
        osp.join(sbd_root, 'cls', stem + '.mat'), 'GTcls',
        'SBD class annotation')
    instance, fields = read_sbd_mat(
        osp.join(sbd_root, 'inst', stem + '.mat'), 'GTinst',
        'SBD instance annotation')
    return semantic, instance, fields.get('Categories')


def convert_image(task: Tuple[str, str, str, Optional[str], str,
                              str]) -> Tuple[dict, dict]:
    """Convert one image and write its panoptic PNG.

    Args:
        task (tuple[str]): Stem, source (``'voc'`` / ``'sbd'``), VOC root,
            SBD root, image folder and output PNG folder.

    Returns:
        tuple[dict, dict]: Its ``images`` and ``annotations`` entries.
    """
    stem, source, voc_root, sbd_root, image_dir, png_dir = task
    image_file = osp.join(image_dir, stem + '.jpg')
    if not osp.isfile(image_file):
        raise FileNotFoundError(f'image "{image_file}" not found')
    with Image.open(image_file) as image:  # reads the header only
        width, height = image.size
    semantic, instance, categories = read_annotation(
        stem, source, voc_root, sbd_root)
    if semantic.shape != (height, width):
        raise ValueError(f'{stem}: {source.upper()} annotation size '
                         f'{semantic.shape} differs from the image size '
                         f'{(height, width)}')
    id_map, segments_info = voc_to_panoptic(
        semantic, instance, name=f'{stem} ({source.upper()})',
        instance_categories=categories)
    write_panoptic_ids(osp.join(png_dir, stem + '.png'), id_map)
    image_info = dict(
        id=stem, file_name=stem + '.jpg', height=height, width=width)
    annotation = dict(
        image_id=stem, file_name=stem + '.png', segments_info=segments_info)
    return image_info, annotation


def read_list(path: str, what: str) -> List[str]:
    """Stems of an image-set file (one per line, blank lines skipped)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} "{path}" not found')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def split_sources(split: str, voc_train: Sequence[str],
                  voc_val: Sequence[str],
                  sbd_stems: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """Sorted ``(stem, source)`` of a split (see the module docstring).

    Args:
        split (str): ``'train_aug'``, ``'val'`` or ``'train'``.
        voc_train (Sequence[str]): VOC ``train.txt`` stems.
        voc_val (Sequence[str]): VOC ``val.txt`` stems.
        sbd_stems (Sequence[str]): SBD ``train.txt`` + ``val.txt`` stems
            (``train_aug`` only).

    Returns:
        list[tuple[str, str]]: ``source`` is ``'voc'`` where VOC annotates
        the image (VOC wins over SBD), else ``'sbd'``.
    """
    if split == 'val':
        return [(stem, VOC) for stem in sorted(set(voc_val))]
    if split == 'train':
        return [(stem, VOC) for stem in sorted(set(voc_train))]
    voc_annotated = set(voc_train)
    stems = (set(sbd_stems) | voc_annotated) - set(voc_val)
    return [(stem, VOC if stem in voc_annotated else SBD)
            for stem in sorted(stems)]


def _check_folders(voc_root: str, sbd_root: Optional[str],
                   sources: Sequence[str]) -> None:
    folders = [(osp.join(voc_root, 'JPEGImages'), 'VOC image')]
    if VOC in sources:
        folders += [(osp.join(voc_root, 'SegmentationClass'),
                     'VOC class annotation'),
                    (osp.join(voc_root, 'SegmentationObject'),
                     'VOC object annotation')]
    if SBD in sources:
        folders += [(osp.join(sbd_root, 'cls'), 'SBD class annotation'),
                    (osp.join(sbd_root, 'inst'), 'SBD instance annotation')]
    for folder, what in folders:
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{what} folder "{folder}" not found')


def convert_voc_panoptic(voc_root: str,
                         sbd_root: Optional[str] = None,
                         out_dir: Optional[str] = None,
                         splits: Sequence[str] = ('train_aug', 'val'),
                         voc_lists: Optional[Sequence[str]] = None,
                         sbd_lists: Optional[Sequence[str]] = None,
                         nproc: int = 1) -> Dict[str, str]:
    """Write the COCO panoptic JSONs and PNGs of PASCAL VOC 2012.

    Args:
        voc_root (str): The ``VOCdevkit/VOC2012`` folder.
        sbd_root (str, optional): SBD's ``benchmark_RELEASE/dataset``
            folder; needed for ``train_aug``.
        out_dir (str, optional): Output folder. Defaults to ``voc_root``.
        splits (Sequence[str]): Among ``'train_aug'``, ``'val'``,
            ``'train'``. Defaults to ``('train_aug', 'val')``.
        voc_lists (Sequence[str], optional): VOC's (train, val) image-set
            files. Defaults to ``ImageSets/Segmentation/{train,val}.txt``.
        sbd_lists (Sequence[str], optional): SBD image-set files whose
            union joins ``train_aug``. Defaults to SBD's ``train.txt`` and
            ``val.txt``.
        nproc (int): Worker processes. Defaults to 1.

    Returns:
        dict[str, str]: JSON path of each split.
    """
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f'splits must be among {list(SPLITS)}, got '
                         f'{list(splits)}')
    if not osp.isdir(voc_root):
        raise FileNotFoundError(f'VOC2012 root "{voc_root}" not found')
    voc_lists = voc_lists or [
        osp.join(voc_root, 'ImageSets', 'Segmentation', f'{name}.txt')
        for name in ('train', 'val')
    ]
    if len(voc_lists) != 2:
        raise ValueError('voc_lists must be the (train, val) files')
    voc_train = read_list(voc_lists[0], 'VOC train list')
    voc_val = read_list(voc_lists[1], 'VOC val list')
    sbd_stems: List[str] = []
    if 'train_aug' in splits:
        if sbd_root is None or not osp.isdir(sbd_root):
            raise FileNotFoundError(
                f'SBD root "{sbd_root}" not found: train_aug needs SBD '
                '(benchmark_RELEASE/dataset, holding cls/, inst/, '
                'train.txt, val.txt)')
        sbd_lists = sbd_lists or [
            osp.join(sbd_root, f'{name}.txt') for name in ('train', 'val')
        ]
        for path in sbd_lists:
            sbd_stems += read_list(path, 'SBD list')

    out_dir = out_dir or voc_root
    image_dir = osp.join(voc_root, 'JPEGImages')
    outputs = {}
    for split in splits:
        sources = split_sources(split, voc_train, voc_val, sbd_stems)
        _check_folders(voc_root, sbd_root, {source for _, source in sources})
        png_dir = osp.join(out_dir, f'voc_panoptic_{split}')
        os.makedirs(png_dir, exist_ok=True)
        tasks = [(stem, source, voc_root, sbd_root, image_dir, png_dir)
                 for stem, source in sources]
        json_path = osp.join(out_dir, f'voc_panoptic_{split}.json')
        write_coco_panoptic_split(convert_image, tasks,
                                  voc_panoptic_categories(), json_path, nproc)
        outputs[split] = json_path
    return outputs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert PASCAL VOC 2012 (+ SBD for train_aug) to COCO '
        'panoptic format (20 things, background the one stuff class)')
    parser.add_argument('voc_root', help='the VOCdevkit/VOC2012 folder')
    parser.add_argument(
        '--sbd-root',
        help="SBD's benchmark_RELEASE/dataset folder (for train_aug)")
    parser.add_argument(
        '--out-dir', help='output folder (default: VOC_ROOT)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train_aug', 'val'],
        choices=SPLITS,
        help='splits')
    parser.add_argument(
        '--voc-lists',
        nargs=2,
        metavar=('TRAIN', 'VAL'),
        help='VOC train and val image sets (default: '
        'VOC_ROOT/ImageSets/Segmentation/{train,val}.txt)')
    parser.add_argument(
        '--sbd-lists',
        nargs='+',
        help='SBD image sets joining train_aug (default: SBD_ROOT/'
        '{train,val}.txt)')
    parser.add_argument('--nproc', type=int, default=1, help='processes')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        outputs = convert_voc_panoptic(
            args.voc_root,
            args.sbd_root,
            args.out_dir,
            splits=args.splits,
            voc_lists=args.voc_lists,
            sbd_lists=args.sbd_lists,
            nproc=args.nproc)
    except (FileNotFoundError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for split, path in outputs.items():
        with open(path) as f:
            num_images = len(json.load(f)['images'])
        print(f'{split}: {path} ({num_images} images)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
