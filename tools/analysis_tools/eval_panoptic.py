# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic Quality of COCO panoptic prediction files.

A drop-in for cityscapesscripts' ``csEvalPanopticSemanticLabeling`` (same
arguments, defaults, printed table and results JSON) that runs our exact,
vectorized :func:`~mmpanoptic_plus.evaluation.functional.pq_compute`, with
``--nproc`` worker processes::

    python tools/analysis_tools/eval_panoptic.py \\
        --gt-json-file data/cityscapes/gtFine/cityscapes_panoptic_val.json \\
        --prediction-json-file work_dirs/x/results.panoptic.json --nproc 8
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    dataset = os.environ.get(
        'CITYSCAPES_DATASET',
        osp.join(osp.dirname(osp.realpath(__file__)), '..', '..'))
    results = os.environ.get('CITYSCAPES_RESULTS',
                             osp.join(dataset, 'results'))
    parser = argparse.ArgumentParser(
        description='Panoptic Quality of COCO panoptic predictions.')
    parser.add_argument(
        '--gt-json-file',
        dest='gt_json_file',
        default=osp.join(dataset, 'gtFine', 'cityscapes_panoptic_val.json'),
        help='ground truth JSON in COCO panoptic format (default '
        '$CITYSCAPES_DATASET/gtFine/cityscapes_panoptic_val.json)')
    parser.add_argument(
        '--gt-folder',
        dest='gt_folder',
        default=None,
        help='folder of the ground truth PNGs (default: the JSON path '
        'without its extension)')
    parser.add_argument(
        '--prediction-json-file',
        dest='prediction_json_file',
        default=osp.join(results, 'cityscapes_panoptic_val.json'),
        help='prediction JSON in COCO panoptic format (default '
        '$CITYSCAPES_RESULTS/cityscapes_panoptic_val.json)')
    parser.add_argument(
        '--prediction-folder',
        dest='prediction_folder',
        default=None,
        help='folder of the predicted PNGs (default: the JSON path without '
        'its extension)')
    parser.add_argument(
        '--results_file',
        '--results-file',
        dest='results_file',
        default='resultPanopticSemanticLabeling.json',
        help='where to write the results JSON')
    parser.add_argument(
        '--nproc', type=int, default=1, help='worker processes')
    args = parser.parse_args(argv)
    for name in ('gt_json_file', 'prediction_json_file'):
        if not osp.isfile(getattr(args, name)):
            parser.error(f'Could not find the JSON file {getattr(args, name)}'
                         "; run the script with '--help'.")
    if args.gt_folder is None:
        args.gt_folder = osp.splitext(args.gt_json_file)[0]
    if args.prediction_folder is None:
        args.prediction_folder = osp.splitext(args.prediction_json_file)[0]
    return args


def format_results(results: dict, categories: dict) -> str:
    """The reference's table: per class, then All / Things / Stuff."""
    lines = [
        '{:14s}| {:>5s}  {:>5s}  {:>5s}'.format('Category', 'PQ', 'SQ', 'RQ')
    ]
    for cat_id in sorted(results['per_class']):
        values = results['per_class'][cat_id]
        lines.append('{:14s}| {:5.1f}  {:5.1f}  {:5.1f}'.format(
            str(categories[cat_id].get('name', cat_id)), 100 * values['pq'],
            100 * values['sq'], 100 * values['rq']))
    lines.append('-' * 41)
    lines.append('{:14s}| {:>5s}  {:>5s}  {:>5s} {:>5s}'.format(
        '', 'PQ', 'SQ', 'RQ', 'N'))
    for group in ('All', 'Things', 'Stuff'):
        values = results[group]
        lines.append('{:14s}| {:5.1f}  {:5.1f}  {:5.1f} {:5d}'.format(
            group, 100 * values['pq'], 100 * values['sq'], 100 * values['rq'],
            values['n']))
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from mmpanoptic_plus.evaluation.functional import pq_compute

    start = time.time()
    with open(args.gt_json_file) as f:
        gt_json = json.load(f)
    with open(args.prediction_json_file) as f:
        pred_json = json.load(f)
    print('Evaluation panoptic segmentation metrics:')
    print('Ground truth:')
    print(f'\tSegmentation folder: {args.gt_folder}')
    print(f'\tJSON file: {args.gt_json_file}')
    print('Prediction:')
    print(f'\tSegmentation folder: {args.prediction_folder}')
    print(f'\tJSON file: {args.prediction_json_file}')

    results = pq_compute(
        gt_json,
        args.gt_folder,
        pred_json,
        args.prediction_folder,
        nproc=args.nproc)
    print(f'Saving computed results in {args.results_file}')
    with open(args.results_file, 'w') as f:
        json.dump(results, f, sort_keys=True, indent=4)
    categories = {el['id']: el for el in gt_json['categories']}
    print(format_results(results, categories))
    print(f'Time elapsed: {time.time() - start:0.2f} seconds')
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
