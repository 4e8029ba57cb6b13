# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Context-specific instance retrieval and its Context Error (PSS,
"Contextual Image Parsing via Panoptic Segment Sorting", Sec. 4.2, Eq. 4,
Fig. 4-5, Table 1).

    python tools/analysis_tools/context_retrieval.py CONFIG CHECKPOINT \\
        --query-split val --database-split train --out DIR \\
        [--k 20] [--max-images N] [--descriptor embedding mean_color] \\
        [--num-pictures 4] [--tsne-category NAME] [--device cpu] \\
        [--cfg-options k=v ...]

The model (any that writes ``pred_embedding``: PSS, CIAE; the tool sets
``model.test_cfg.with_embedding=True``) runs over the images of both
splits; a split is the dataset of the config's ``<split>_dataloader``, run
with the test pipeline (ground truth loaded, no augmentation). Each
descriptor is scored by a :class:`ContextErrorMetric` (``embedding``: the
model's mean embedding over each ground-truth thing mask; ``mean_color``:
the mean image colour there, the baseline). ``CHECKPOINT`` may be ``none``
(random init, for smoke tests). Written to ``--out``:

- ``context_error.json`` and ``context_error.md``: CE per thing category
  and mean CE, one column per descriptor;
- ``retrieval_<i>.png``: a query in its 3x3 context beside its top
  retrievals (also in context), one row per descriptor, titled with the
  query's CE;
- ``tsne_<category>.png``: t-SNE of that category's prototypes (first
  descriptor), coloured by their dominant context class.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader, Subset

try:
    import mmpanoptic_plus  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..',
                                            '..')))

from mmpanoptic_plus.apis import init_panoptic_model  # noqa: E402
from mmpanoptic_plus.evaluation.metrics import ContextErrorMetric  # noqa: E402
from mmpanoptic_plus.evaluation.metrics.context_error_metric import (  # noqa
    DESCRIPTORS)
from mmpanoptic_plus.registry import DATASETS  # noqa: E402
from mmpanoptic_plus.visualization import (  # noqa: E402
    comparison_grid, context_crop, plot_prototype_tsne, resolve_palette)

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Context-specific instance retrieval: Context Error '
        '(PSS Eq. 4), retrieval pictures and a t-SNE plot.')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint', help='checkpoint file, or "none" for random init')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--query-split', default='val', choices=SPLITS,
        help='dataloader of the queries (default val)')
    parser.add_argument(
        '--database-split', default='train', choices=SPLITS,
        help='dataloader retrieved from (default train, as PSS Fig. 4)')
    parser.add_argument(
        '--k', type=int, default=20, help='retrievals per query (K)')
    parser.add_argument(
        '--max-images', type=int, default=None,
        help='use only the first N images of each split')
    parser.add_argument(
        '--descriptor', nargs='+', default=list(DESCRIPTORS),
        choices=DESCRIPTORS, help='instance descriptors to score')
    parser.add_argument(
        '--num-pictures', type=int, default=4,
        help='queries drawn with their retrievals')
    parser.add_argument(
        '--num-shown', type=int, default=5,
        help='retrievals shown per query and descriptor')
    parser.add_argument(
        '--tsne-category', default=None,
        help='thing class of the t-SNE plot (default: the one with most '
        'instances); "none" skips it')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='config overrides, e.g. '
        'val_dataloader.dataset.data_root=data/other/')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if args.checkpoint.lower() == 'none':
        args.checkpoint = None
    elif not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file not found: {args.checkpoint}')
    for name in ('k', 'num_pictures', 'num_shown', 'batch_size'):
        if getattr(args, name) < (0 if name == 'num_pictures' else 1):
            parser.error(f'--{name.replace("_", "-")} is too small')
    return args


def split_dataset_cfg(cfg: Config, split: str) -> ConfigDict:
    """The dataset of ``<split>_dataloader`` with the test pipeline (ground
    truth, no augmentation) and no filtering, wrappers unwrapped."""
    key = f'{split}_dataloader'
    if key not in cfg or cfg[key] is None:
        raise ValueError(f'The config has no {key}')
    dataset = cfg[key].dataset
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        dataset = dataset.dataset
    if 'datasets' in dataset:
        raise ValueError(f'{key} concatenates datasets; give one dataset')
    dataset = ConfigDict(dataset.to_dict())
    dataset.pipeline = cfg.test_dataloader.dataset.pipeline
    dataset.test_mode = True
    return dataset


def run_split(model: torch.nn.Module, dataset, split: str,
              metrics: List[ContextErrorMetric], args) -> None:
    """Run the model over one split and feed every metric."""
    indices = range(len(dataset))
    if args.max_images is not None:
        indices = range(min(args.max_images, len(dataset)))
    loader = DataLoader(
        Subset(dataset, list(indices)),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        collate_fn=pseudo_collate)
    print(f'{split}: {len(indices)} images', flush=True)
    progress = ProgressBar(len(indices))
    for batch in loader:
        try:
            with torch.no_grad():
                outputs = model.test_step(batch)
        except KeyError as error:  # a test_cfg without with_embedding
            raise SystemExit(
                f'{type(model).__name__} failed ({error}): the embedding '
                'descriptor needs a model that writes pred_embedding (PSS, '
                'CIAE); use --descriptor mean_color for others') from error
        for sample in outputs:
            sample.set_metainfo(dict(split=split))
            if ('embedding' in args.descriptor
                    and 'pred_embedding' not in sample):
                raise SystemExit(
                    f'{type(model).__name__} wrote no pred_embedding (with '
                    'test_cfg.with_embedding=True): the embedding descriptor '
                    'needs a model with an embedding map (PSS, CIAE)')
        for metric in metrics:
            metric.process(batch, outputs)
        for _ in outputs:
            progress.update()
    print(flush=True)


def ce_table(names: Sequence[str], results: Dict[str, dict],
             counts: Dict[str, int]) -> str:
    """Markdown table: a row per thing category, a column per
    descriptor."""
    descriptors = list(results)
    lines = [
        '| category | queries | ' +
        ' | '.join(f'CE ({d})' for d in descriptors) + ' |',
        '| --- | ---: | ' + ' | '.join('---:' for _ in descriptors) + ' |'
    ]
    for name in list(names) + ['mean']:
        key = 'CE' if name == 'mean' else f'CE_{name}'
        values = [
            f'{results[d][key]:.3f}' if key in results[d] else '-'
            for d in descriptors
        ]
        lines.append(f'| {name} | {counts.get(name, 0)} | ' +
                     ' | '.join(values) + ' |')
    return '\n'.join(lines) + '\n'


def pick_queries(retrieval: dict, boxes: np.ndarray, num: int) -> List[int]:
    """``num`` query positions, round-robin over the categories, largest
    boxes first (the easiest to see)."""
    labels = retrieval['labels'][retrieval['query']]
    query_boxes = boxes[retrieval['query']].astype(np.int64)
    area = (query_boxes[:, 2] - query_boxes[:, 0]) * (
        query_boxes[:, 3] - query_boxes[:, 1])
    per_class = [
        sorted(np.flatnonzero(labels == c), key=lambda i: -area[i])
        for c in np.unique(labels)
    ]
    chosen = []
    while len(chosen) < num and any(per_class):
        for positions in per_class:
            if positions and len(chosen) < num:
                chosen.append(int(positions.pop(0)))
    return chosen


def draw_pictures(metrics: List[ContextErrorMetric], retrievals: List[dict],
                  args, names: Sequence[str]) -> List[str]:
    """``retrieval_<i>.png`` for a few queries (chosen on the first
    descriptor): the query's context crop, then its top retrievals, a row
    per descriptor titled with the query's CE (over all K)."""
    first = retrievals[0]
    boxes = np.concatenate([r['boxes'] for r in metrics[0].results])
    paths = [r['img_path'] for r in metrics[0].results]
    images: Dict[str, np.ndarray] = {}

    def crop(row: int) -> np.ndarray:
        path = paths[first['image'][row]]
        if path not in images:
            images[path] = mmcv.imread(path, channel_order='rgb')
        return context_crop(images[path], boxes[row])

    num_shown = min(args.num_shown, args.k)
    files = []
    for number, position in enumerate(
            pick_queries(first, boxes, args.num_pictures)):
        query = first['query'][position]
        tiles, titles = [], []
        for metric, retrieval in zip(metrics, retrievals):
            # every metric saw the same images: instance rows agree
            row = int(np.flatnonzero(retrieval['query'] == query)[0])
            shown = retrieval['retrieved'][row, :num_shown]
            tiles.append([crop(query)] +
                         [crop(i) if i >= 0 else None for i in shown])
            titles.append(f'{metric.descriptor} CE '
                          f'{retrieval["ce"][row]:.2f}')
        grid = comparison_grid(
            tiles,
            [f'query: {names[first["labels"][query]]}'] +
            [f'#{rank + 1}' for rank in range(num_shown)],
            titles,
            placeholders=[['no more'] * (num_shown + 1)] * len(tiles),
            tile_size=128)
        out_file = osp.join(args.out, f'retrieval_{number}.png')
        mmcv.imwrite(np.ascontiguousarray(grid[..., ::-1]), out_file)  # BGR
        files.append(out_file)
    return files


def draw_tsne(metric: ContextErrorMetric, retrieval: dict, args,
              dataset_meta: dict) -> Optional[str]:
    """``tsne_<category>.png`` of the first descriptor's prototypes."""
    names = list(dataset_meta['thing_classes'])
    labels = retrieval['labels']
    if args.tsne_category is not None and args.tsne_category.lower() == 'none':
        return None
    if args.tsne_category is None:
        label = int(np.bincount(labels).argmax())
    elif args.tsne_category in names:
        label = names.index(args.tsne_category)
    else:
        raise SystemExit(f'--tsne-category {args.tsne_category!r} is not a '
                         f'thing class: {names}')
    chosen = np.flatnonzero(labels == label)
    if len(chosen) < 5:
        print(f't-SNE skipped: {len(chosen)} instances of {names[label]}')
        return None
    results = metric.results
    descriptors = np.concatenate([r['descriptors'] for r in results])[chosen]
    contexts = np.concatenate([r['contexts'] for r in results])[chosen]
    splits = np.array([r['split'] for r in results])[retrieval['image']]
    classes = list(dataset_meta['classes'])
    out_file = osp.join(args.out, f'tsne_{names[label]}.png')
    plot_prototype_tsne(
        descriptors,
        contexts.sum(1).argmax(1),
        classes,
        resolve_palette(dataset_meta.get('palette'), len(classes)),
        out_file,
        title=f'{names[label]} prototypes ({metric.descriptor}); o '
        f'{metric.query_split}, x {metric.database_split}',
        is_query=splits[chosen] == metric.query_split)
    return out_file


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    MMLogger.get_instance('context_retrieval', log_level='WARNING')
    options = dict(args.cfg_options or {})
    if 'embedding' in args.descriptor:
        options['model.test_cfg.with_embedding'] = True
    try:
        model = init_panoptic_model(args.config, args.checkpoint,
                                    args.device, options)
        cfg = model.cfg
        splits = [args.query_split]
        if args.database_split != args.query_split:
            splits.append(args.database_split)
        datasets = {
            split: DATASETS.build(split_dataset_cfg(cfg, split))
            for split in splits
        }
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise SystemExit(f'context_retrieval: {error}') from error
    dataset_meta = dict(datasets[args.query_split].metainfo)
    metrics = []
    for descriptor in args.descriptor:
        metric = ContextErrorMetric(
            k=args.k,
            descriptor=descriptor,
            query_split=args.query_split,
            database_split=args.database_split)
        metric.dataset_meta = dataset_meta
        metrics.append(metric)
    for split, dataset in datasets.items():
        run_split(model, dataset, split, metrics, args)

    os.makedirs(args.out, exist_ok=True)
    names = list(dataset_meta['thing_classes'])
    try:
        retrievals = [metric.retrieve(metric.results) for metric in metrics]
    except ValueError as error:
        raise SystemExit(f'context_retrieval: {error}') from error
    results = {
        metric.descriptor: metric.compute_metrics(metric.results)
        for metric in metrics
    }
    query_labels = retrievals[0]['labels'][retrievals[0]['query']]
    counts = {
        name: int((query_labels == label).sum())
        for label, name in enumerate(names)
    }
    counts['mean'] = int(len(query_labels))
    table = ce_table(names, results, counts)
    summary = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        query_split=args.query_split,
        database_split=args.database_split,
        k=args.k,
        images={split: len(m) for split, m in _image_counts(metrics[0])},
        results=results)
    with open(osp.join(args.out, 'context_error.json'), 'w') as file:
        json.dump(summary, file, indent=2)
    with open(osp.join(args.out, 'context_error.md'), 'w') as file:
        file.write(f'Context Error (K={args.k}, queries {args.query_split}, '
                   f'database {args.database_split})\n\n' + table)
    print(table)
    summary['pictures'] = draw_pictures(metrics, retrievals, args, names)
    summary['tsne'] = draw_tsne(metrics[0], retrievals[0], args, dataset_meta)
    print(json.dumps(summary), flush=True)
    return summary


def _image_counts(metric: ContextErrorMetric):
    """(split, list of its records) pairs."""
    splits: Dict[str, list] = {}
    for record in metric.results:
        splits.setdefault(record['split'], []).append(record)
    return splits.items()


if __name__ == '__main__':
    main()
