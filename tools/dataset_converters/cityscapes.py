# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Create Cityscapes panoptic annotations with cityscapesscripts.

    python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8

writes, for each split and id type (both by default), exactly what
cityscapesscripts' ``csCreatePanopticImgs`` writes (with and without
``--use-train-id``)::

    <out-dir>/cityscapes_panoptic_<split>_trainId.json   (+ folder of PNGs)
    <out-dir>/cityscapes_panoptic_<split>.json           (+ folder of PNGs)

``<out-dir>`` defaults to ``CITYSCAPES_ROOT/gtFine``, where
``configs/_base_/datasets/cityscapes_panoptic.py`` looks.

The conversion itself is ``cityscapesscripts.preparation.
createPanopticImgs.convert2panoptic``. It converts a whole split in one call
and prints its own progress, so this script runs it on chunks of files
(symlinked into temporary gtFine trees), in ``--nproc`` processes with a
progress bar, and concatenates the chunks' JSONs in file order: the result
equals one ``convert2panoptic`` call per split and id type.
"""
import argparse
import contextlib
import glob
import io
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.utils import track_parallel_progress, track_progress

ID_TYPES = {'train': True, 'label': False}  # name -> useTrainId


def _convert2panoptic():
    try:
        from cityscapesscripts.preparation.createPanopticImgs import \
            convert2panoptic
    except ImportError:
        raise ImportError('this converter needs cityscapesscripts: '
                          'pip install cityscapesscripts') from None
    return convert2panoptic


def find_instance_files(gtfine_dir: str, split: str) -> List[str]:
    """Sorted ``*_instanceIds.png`` of a split (the files and order
    convert2panoptic uses)."""
    split_dir = osp.join(gtfine_dir, split)
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'split folder "{split_dir}" not found')
    files = sorted(
        glob.glob(osp.join(split_dir, '*', '*_instanceIds.png')))
    if not files:
        raise FileNotFoundError(
            f'no "*_instanceIds.png" under "{split_dir}/<city>/"; is this the '
            'Cityscapes gtFine folder (gtFine_trainvaltest.zip unpacked)?')
    return files


def output_name(split: str, use_train_id: bool) -> str:
    """Base name (JSON and PNG folder) convert2panoptic writes."""
    return f'cityscapes_panoptic_{split}' + ('_trainId'
                                             if use_train_id else '')


def _convert_chunk(task: Tuple[str, str, bool, Sequence[str]]) -> str:
    """Run convert2panoptic on some files of a split; returns the folder
    holding its output."""
    work_dir, split, use_train_id, files = task
    gtfine = osp.join(work_dir, 'gtFine')
    out_dir = osp.join(work_dir, 'out')
    os.makedirs(out_dir, exist_ok=True)
    for src in files:
        city = osp.basename(osp.dirname(src))
        dst_dir = osp.join(gtfine, split, city)
        os.makedirs(dst_dir, exist_ok=True)
        dst = osp.join(dst_dir, osp.basename(src))
        try:
            os.symlink(osp.abspath(src), dst)
        except OSError:  # file systems without symlinks
            shutil.copyfile(src, dst)
    # convert2panoptic prints per file; keep the progress bar readable
    with contextlib.redirect_stdout(io.StringIO()):
        _convert2panoptic()(gtfine, out_dir, use_train_id, [split])
    return out_dir


def convert_cityscapes_panoptic(cityscapes_root: str,
                                out_dir: Optional[str] = None,
                                splits: Sequence[str] = ('train', 'val'),
                                id_types: Sequence[str] = ('train', 'label'),
                                nproc: int = 1,
                                chunk_size: int = 50) -> Dict[str, str]:
    """Create the panoptic JSONs and PNGs of Cityscapes.

    Args:
        cityscapes_root (str): Folder holding ``gtFine/``.
        out_dir (str, optional): Output folder. Defaults to
            ``<cityscapes_root>/gtFine``.
        splits (Sequence[str]): Splits. Defaults to ('train', 'val').
        id_types (Sequence[str]): ``'train'`` (category ids are train ids,
            ``--use-train-id``) and/or ``'label'`` (label ids). Defaults to
            both.
        nproc (int): Worker processes. Defaults to 1.
        chunk_size (int): Files per convert2panoptic call. Defaults to 50.

    Returns:
        dict[str, str]: JSON path for each ``'<split>_<id type>'``.
    """
    gtfine_dir = osp.join(cityscapes_root, 'gtFine')
    if not osp.isdir(gtfine_dir):
        raise FileNotFoundError(
            f'"{gtfine_dir}" not found: CITYSCAPES_ROOT must be the folder '
            'holding gtFine/ and leftImg8bit/')
    unknown = set(id_types) - set(ID_TYPES)
    if unknown or not id_types:
        raise ValueError(f'id types must be among {sorted(ID_TYPES)}, got '
                         f'{list(id_types)}')
    _convert2panoptic()  # fail early when cityscapesscripts is missing
    out_dir = out_dir or gtfine_dir
    os.makedirs(out_dir, exist_ok=True)
    files = {split: find_instance_files(gtfine_dir, split) for split in splits}

    outputs = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tasks, jobs = [], []  # jobs: (split, use_train_id, chunk folders)
        for split in splits:
            for id_type in id_types:
                use_train_id = ID_TYPES[id_type]
                chunk_dirs = []
                for start in range(0, len(files[split]), chunk_size):
                    work_dir = osp.join(tmp, f'{len(tasks):06d}')
                    tasks.append((work_dir, split, use_train_id,
                                  files[split][start:start + chunk_size]))
                    chunk_dirs.append(osp.join(work_dir, 'out'))
                jobs.append((split, id_type, use_train_id, chunk_dirs))
        if nproc > 1:
            track_parallel_progress(_convert_chunk, tasks, nproc)
        else:
            track_progress(_convert_chunk, tasks)

        for split, id_type, use_train_id, chunk_dirs in jobs:
            name = output_name(split, use_train_id)
            png_dir = osp.join(out_dir, name)
            os.makedirs(png_dir, exist_ok=True)
            merged = None
            for chunk_dir in chunk_dirs:
                with open(osp.join(chunk_dir, f'{name}.json')) as f:
                    part = json.load(f)
                if merged is None:
                    merged = part
                else:
                    merged['images'] += part['images']
                    merged['annotations'] += part['annotations']
                for png in os.listdir(osp.join(chunk_dir, name)):
                    shutil.move(
                        osp.join(chunk_dir, name, png),
                        osp.join(png_dir, png))
            json_path = osp.join(out_dir, f'{name}.json')
            # same formatting as convert2panoptic
            with open(json_path, 'w') as f:
                json.dump(merged, f, sort_keys=True, indent=4)
            outputs[f'{split}_{id_type}'] = json_path
    return outputs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Create Cityscapes panoptic annotations (COCO panoptic '
        'format) with cityscapesscripts')
    parser.add_argument('cityscapes_root', help='folder holding gtFine/')
    parser.add_argument(
        '--out-dir', help='output folder (default: CITYSCAPES_ROOT/gtFine)')
    parser.add_argument('--nproc', type=int, default=1, help='processes')
    parser.add_argument(
        '--splits', nargs='+', default=['train', 'val'], help='splits')
    parser.add_argument(
        '--id-types',
        nargs='+',
        default=['train', 'label'],
        choices=sorted(ID_TYPES),
        help='category ids of the JSON: train ids (--use-train-id of '
        'csCreatePanopticImgs) and/or label ids')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        outputs = convert_cityscapes_panoptic(
            args.cityscapes_root,
            args.out_dir,
            splits=args.splits,
            id_types=args.id_types,
            nproc=args.nproc)
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    for key, path in outputs.items():
        print(f'{key}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
