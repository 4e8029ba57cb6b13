# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Every method side by side: accuracy, speed, size and a picture, in one run.

    python tools/analysis_tools/compare_methods.py --out DIR
        [--registry configs/compare/methods.py] [--methods KEY ...]
        [--val-seed S] [--val-size N] [--val-shape H W]
        [--speed-shape H W] [--speed-repeat N] [--warmup N] [--threads T]
        [--device cpu|cuda] [--skip-pq] [--skip-speed] [--skip-complexity]
        [--real-image IMG] [--real-gt JSON]

For each entry of the registry (``configs/compare/methods.py``: name,
synthetic config, shipped checkpoint, paper-scale config, speed options):

* **Accuracy**: PQ, SQ, RQ, PQ_th, PQ_st and mIoU of the shipped checkpoint
  with its synthetic config on one synthetic val set generated for this run
  (``--val-size`` images of ``--val-shape``, seed ``--val-seed``, written to
  ``DIR/val_set``; the same images for every method). The loop is
  ``tools/test.py``'s (mmengine's ``TestLoop``: the config's test
  dataloader, ``model.test_step``, the config's ``test_evaluator``, i.e.
  :class:`PanopticQualityMetric`), run in this process with a progress bar.
  **mIoU** is the metric's semantic mIoU of the panoptic prediction: every
  pixel takes the class of the segment it was assigned to (``value %
  INSTANCE_OFFSET``; void predictions count as wrong), the ground truth the
  class of its annotated segment (void and unannotated pixels are ignored);
  the mean is over classes present in either. An entry without checkpoint
  says "no checkpoint".
* **Speed**: ms/img of the paper-scale config at ``--speed-shape`` with
  random weights, by ``tools/analysis_tools/benchmark.py``'s routine: full
  inference (``total``), network and post-processing apart (see that
  file), the best of ``--speed-repeat`` timed runs after ``--warmup``
  untimed ones, every entry in this one process, one after another. Its
  ``--quick`` mode: total and the network / post-processing split come
  from the same ``predict`` run, and ``_forward`` runs only where it is the
  network (not for two-stage models), so that all methods fit in one run.
* **Size**: parameters of the paper-scale model and MACs of its network at
  ``--speed-shape`` (``tools/analysis_tools/get_flops.py``: mmengine's JIT
  ``FlopAnalyzer`` on ``model._forward``, deformable convolutions counted as
  convolutions).

Outputs in ``DIR``: ``table.md`` (the command, the machine and the tables),
``results.json`` (every figure, unrounded, and the errors) and
``comparison.png``: the first val image and a real photo (``--real-image``,
with the ground truth of ``--real-gt`` when given) segmented by every
checkpoint, ground truth beside. A part of an entry that fails is reported
(table and JSON) and the others still run; the exit code is 1 only when
every entry failed.
"""
import argparse
import copy
import datetime
import gc
import json
import os
import os.path as osp
import platform
import re
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark  # noqa: E402
import get_flops  # noqa: E402

from mmpanoptic_plus.apis import (build_inference_pipeline,  # noqa: E402
                                  inference_panoptic, load_image)
from mmpanoptic_plus.structures import read_panoptic_ids  # noqa: E402
from mmpanoptic_plus.utils import register_all_modules  # noqa: E402
from mmpanoptic_plus.visualization import (  # noqa: E402
    PanopticLocalVisualizer, comparison_grid, segment_ids_to_panoptic)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = 'configs/compare/methods.py'
DEFAULT_REAL_IMAGE = 'demo/real/ferry_building.jpg'
DEFAULT_REAL_GT = 'demo/real/ferry_building_gt.json'
REQUIRED_KEYS = ('key', 'name', 'synthetic_config', 'checkpoint',
                 'paper_config')
METRIC_NAMES = ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st', 'mIoU')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Compare the panoptic methods: PQ of the shipped '
        'synthetic checkpoints, speed, parameters and MACs of the '
        'paper-scale configs, and a picture')
    parser.add_argument(
        '--registry',
        default=DEFAULT_REGISTRY,
        help='Python file whose `methods` list names the entries')
    parser.add_argument(
        '--methods', nargs='+', help='keys of the entries to run (all)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--val-seed',
        type=int,
        default=2025,
        help='seed of the synthetic val set (training used 0)')
    parser.add_argument(
        '--val-size', type=int, default=100, help='number of val images')
    parser.add_argument(
        '--val-shape',
        type=int,
        nargs=2,
        default=[256, 256],
        metavar=('H', 'W'),
        help='val image height and width (the synthetic training size)')
    parser.add_argument(
        '--speed-shape',
        type=int,
        nargs=2,
        default=[1024, 2048],
        metavar=('H', 'W'),
        help='input of the speed and MAC measurements')
    parser.add_argument(
        '--speed-repeat',
        type=int,
        default=2,
        help='timed runs per entry (the best is reported)')
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed runs first')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads for the whole run; default: torch\'s')
    parser.add_argument(
        '--device', choices=['cpu', 'cuda'], default='cpu', help='device')
    parser.add_argument(
        '--skip-pq',
        action='store_true',
        help='no accuracy columns (and no picture)')
    parser.add_argument(
        '--skip-speed', action='store_true', help='no timing columns')
    parser.add_argument(
        '--skip-complexity',
        action='store_true',
        help='no parameter / MAC columns')
    parser.add_argument(
        '--real-image',
        default=DEFAULT_REAL_IMAGE,
        help='real photo of the picture ("none": no such row)')
    parser.add_argument(
        '--real-gt',
        default=DEFAULT_REAL_GT,
        help='its COCO panoptic ground truth JSON, PNG in the folder of the '
        'same name ("none": no ground truth)')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='dataloader workers of the accuracy runs')
    args = parser.parse_args(argv)
    if args.val_size < 1:
        parser.error('--val-size must be >= 1')
    if args.speed_repeat < 1 or args.warmup < 0:
        parser.error('--speed-repeat must be >= 1 and --warmup >= 0')
    if min(args.speed_shape) < 1:
        parser.error(f'--speed-shape must be positive: {args.speed_shape}')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be >= 1')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but CUDA is not available')
    for name in ('real_image', 'real_gt'):
        if getattr(args, name).lower() == 'none':
            setattr(args, name, None)
    return args


def repo_path(path: Optional[str]) -> Optional[str]:
    """``path`` as given when absolute or present from the working folder,
    else relative to the repository root."""
    if path is None or osp.isabs(path) or osp.exists(path):
        return path
    return str(REPO_ROOT / path)


def load_registry(path: str,
                  keys: Optional[Sequence[str]] = None) -> List[dict]:
    """The entries of a registry file, in file order (or ``keys``' order).

    Raises:
        FileNotFoundError, ValueError: Missing file, malformed entries,
            duplicate or unknown keys.
    """
    path = repo_path(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'registry not found: {path}')
    entries = [dict(entry) for entry in Config.fromfile(path).get(
        'methods', [])]
    if not entries:
        raise ValueError(f'{path} defines no `methods` list')
    for index, entry in enumerate(entries):
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise ValueError(f'{path}: entry {index} lacks {missing}')
        entry.setdefault('speed_options', {})
        entry.setdefault('speed_note', '')
        entry.setdefault('synthetic_options', {})
    by_key = {entry['key']: entry for entry in entries}
    if len(by_key) != len(entries):
        raise ValueError(f'{path}: two entries share a key')
    if keys is None:
        return entries
    unknown = [key for key in keys if key not in by_key]
    if unknown:
        raise ValueError(f'unknown method keys {unknown}; the registry has '
                         f'{list(by_key)}')
    return [by_key[key] for key in keys]


def error_text(error: BaseException) -> str:
    """``Type: message`` on one line."""
    message = ' '.join(str(error).split())
    return f'{type(error).__name__}: {message}'


def read_panoptic_gt(json_path: str,
                     file_name: Optional[str] = None) -> dict:
    """One image's COCO panoptic ground truth as an encoded panoptic map.

    Args:
        json_path (str): COCO panoptic JSON; its PNGs are in the folder of
            the same name without ``.json``.
        file_name (str, optional): The image's ``file_name``; default the
            first image of the JSON.

    Returns:
        dict: ``file_name`` (of the image), ``pan_map`` (int64 ``(H, W)``,
        ``label + instance * INSTANCE_OFFSET``, labels the categories
        ordered things first, void = number of categories), ``classes``
        and ``palette`` (the categories' ``color`` when they all have one,
        else None).
    """
    with open(json_path) as file:
        data = json.load(file)
    images = data['images']
    image = images[0] if file_name is None else next(
        (image for image in images if image['file_name'] == file_name), None)
    if image is None:
        raise KeyError(f'{json_path} has no image {file_name}')
    annotation = next(ann for ann in data['annotations']
                      if ann['image_id'] == image['id'])
    # things first, as our labels are (a stable sort keeps the file order)
    categories = sorted(
        data['categories'], key=lambda cat: not cat.get('isthing', 0))
    label_of = {cat['id']: label for label, cat in enumerate(categories)}
    segments = [
        dict(
            id=segment['id'],
            category=label_of[segment['category_id']],
            is_thing=bool(categories[label_of[segment['category_id']]].get(
                'isthing', 0)),
            iscrowd=segment.get('iscrowd', 0))
        for segment in annotation['segments_info']
    ]
    ids = read_panoptic_ids(
        osp.join(osp.splitext(json_path)[0], annotation['file_name']))
    palette = [tuple(cat['color']) for cat in categories] if all(
        'color' in cat for cat in categories) else None
    return dict(
        file_name=image['file_name'],
        pan_map=segment_ids_to_panoptic(ids, segments, len(categories)),
        classes=[cat['name'] for cat in categories],
        palette=palette)


def make_val_set(out_dir: str, seed: int, size: int,
                 shape: Sequence[int]) -> str:
    """Write the synthetic val set (``size`` images) to ``out_dir``; return
    its root."""
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic
    start = time.perf_counter()
    generate_synthetic_panoptic(
        out_dir, 0, size, size=tuple(shape), seed=seed)
    print(f'synthetic val set: {size} images of {shape[0]}x{shape[1]}, seed '
          f'{seed}, in {out_dir} ({time.perf_counter() - start:.1f} s)')
    return out_dir


def metric_values(metrics: Dict[str, float]) -> Dict[str, float]:
    """PQ ... mIoU from an evaluator's output (``'panoptic/PQ'`` or
    ``'PQ'`` keys)."""
    values = {}
    for name in METRIC_NAMES:
        found = [value for key, value in metrics.items()
                 if key == name or key.endswith('/' + name)]
        if len(found) != 1:
            raise KeyError(f'the evaluator gave no single {name}: '
                           f'{sorted(metrics)}')
        values[name] = float(found[0])
    return values


def evaluate_checkpoint(cfg: Config, checkpoint: str, device: str,
                        num_workers: int
                        ) -> Tuple[dict, torch.nn.Module, dict]:
    """``tools/test.py``'s test loop on ``cfg``'s test set, in process.

    What mmengine's ``TestLoop`` does: the config's ``test_dataloader``,
    ``model.test_step`` per batch, the config's ``test_evaluator`` (with the
    dataset's ``metainfo``), ``evaluate`` at the end; plus a progress bar.

    Returns:
        tuple: The metrics dict, the model (eval mode, ``cfg`` attached) and
        the test dataset's ``metainfo``.
    """
    init_default_scope(cfg.get('default_scope', 'mmpanoptic_plus'))
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.num_workers = num_workers
    loader_cfg.persistent_workers = num_workers > 0
    dataloader = Runner.build_dataloader(loader_cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataloader.dataset.metainfo
    model = benchmark.build_model(cfg, checkpoint, device)
    model.cfg = cfg
    bar = ProgressBar(len(dataloader.dataset))
    with torch.no_grad():
        for batch in dataloader:
            outputs = model.test_step(batch)
            evaluator.process(data_samples=outputs, data_batch=batch)
            for _ in outputs:
                bar.update()
    sys.stdout.write('\n')
    metrics = evaluator.evaluate(len(dataloader.dataset))
    return metrics, model, dataloader.dataset.metainfo


def draw_prediction(model: torch.nn.Module, image_path: str,
                    metainfo: dict,
                    visualizer: PanopticLocalVisualizer) -> np.ndarray:
    """``model``'s panoptic segmentation of one image drawn over it (RGB
    ``(H, W, 3)``), in the classes and colours of ``metainfo``."""
    image_bgr = load_image(image_path)
    data_sample = inference_panoptic(model, image_bgr,
                                     build_inference_pipeline(model.cfg))
    return visualizer.draw_panoptic_map(image_bgr[..., ::-1].copy(),
                                        data_sample.pred_panoptic_seg.sem_seg,
                                        metainfo['classes'],
                                        metainfo.get('palette'))


def run_accuracy(entry: dict, args: argparse.Namespace, val_root: str,
                 picture_images: Sequence[str],
                 visualizer: PanopticLocalVisualizer
                 ) -> Tuple[dict, List[Optional[np.ndarray]]]:
    """PQ ... mIoU of one entry's checkpoint on the val set, and its
    drawings of ``picture_images`` (None where it could not draw)."""
    tiles: List[Optional[np.ndarray]] = [None] * len(picture_images)
    if entry['checkpoint'] is None:
        return dict(status='no checkpoint'), tiles
    start = time.perf_counter()
    cfg = Config.fromfile(repo_path(entry['synthetic_config']))
    cfg.merge_from_dict(
        {'test_dataloader.dataset.data_root': val_root.rstrip('/') + '/'})
    cfg.merge_from_dict(entry['synthetic_options'])
    checkpoint = repo_path(entry['checkpoint'])
    metrics, model, metainfo = evaluate_checkpoint(cfg, checkpoint,
                                                   args.device,
                                                   args.num_workers)
    record = dict(status='ok', **metric_values(metrics))
    for index, image_path in enumerate(picture_images):
        try:
            tiles[index] = draw_prediction(model, image_path, metainfo,
                                           visualizer)
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            record.setdefault('picture_errors', []).append(
                f'{image_path}: {error_text(error)}')
    record['seconds'] = round(time.perf_counter() - start, 1)
    del model
    gc.collect()
    return record, tiles


def run_speed(entry: dict, bench_args: argparse.Namespace) -> dict:
    """benchmark.py's record of the paper config (random weights)."""
    config = repo_path(entry['paper_config'])
    start = time.perf_counter()
    record = benchmark.benchmark_config(config, None, bench_args,
                                        dict(entry['speed_options']))
    record.update(status='ok', seconds=round(time.perf_counter() - start, 1))
    gc.collect()
    return record


def run_complexity(entry: dict, args: argparse.Namespace) -> dict:
    """Parameters and network MACs of the paper config."""
    config = repo_path(entry['paper_config'])
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    start = time.perf_counter()
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(entry['speed_options']))
    torch.manual_seed(0)
    model = benchmark.build_model(cfg, None, args.device)
    record = get_flops.network_complexity(
        model, benchmark.make_batch(*args.speed_shape))
    record.update(status='ok', seconds=round(time.perf_counter() - start, 1))
    del model
    gc.collect()
    return record


def attempt(part: str, name: str, function, *arguments):
    """Run one part of one entry; an exception becomes an error record."""
    try:
        return function(*arguments)
    except Exception as error:  # noqa: BLE001 - reported, the rest runs
        message = error_text(error)
        print(f'  {name}: {part} failed: {message}', file=sys.stderr)
        return dict(
            status='error', error=message, traceback=traceback.format_exc())


def machine_description(threads: int) -> dict:
    """CPU model, CPU count, torch version, threads, GPU if used."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as file:
            names = re.findall(r'model name\s*:\s*(.+)', file.read())
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    return dict(
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        threads=threads,
        gpu=torch.cuda.get_device_name(0)
        if torch.cuda.is_available() else None)


# --- the table -------------------------------------------------------------
def _cell(text: str, limit: int = 160) -> str:
    text = text.replace('|', '/').replace('\n', ' ')
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _status_cell(record: dict) -> Optional[str]:
    """The text standing for a part that has no numbers, or None."""
    status = record.get('status', 'skipped')
    if status == 'ok':
        return None
    if status == 'error':
        return _cell('error: ' + record['error'])
    return status


def format_table(summary: dict) -> str:
    """``table.md``: the command, the machine and two tables."""
    machine = summary['machine']
    run = summary['run']
    val = summary['val_set']
    lines = [
        '# Method comparison', '',
        f'Command: `{summary["command"]}`', '',
        f'Machine: {machine["cpu"]}, {machine["cpu_count"]} CPUs, torch '
        f'{machine["torch"]}, {machine["threads"]} torch thread(s), device '
        f'{run["device"]}' +
        (f' ({machine["gpu"]})' if run['device'] == 'cuda' else '') +
        f'; 1-minute load average {run["load_before"][0]} at the start, '
        f'{run["load_after"][0]} at the end; {run["started"]}, '
        f'{run["minutes"]} min.', '',
        f'## Accuracy: shipped synthetic checkpoints on a fresh synthetic '
        f'val set ({val["size"]} images of {val["shape"][0]}x'
        f'{val["shape"][1]}, seed {val["seed"]})', '',
        '| method | synthetic config | checkpoint | PQ | SQ | RQ | PQ_th | '
        'PQ_st | mIoU |', '| --- | --- | --- | --- | --- | --- | --- | --- '
        '| --- |'
    ]
    for entry in summary['entries']:
        accuracy = entry['accuracy']
        checkpoint = (osp.basename(entry['checkpoint'])
                      if entry['checkpoint'] else '-')
        status = _status_cell(accuracy)
        values = ([status] + [''] * 5 if status else
                  [f'{accuracy[name]:.1f}' for name in METRIC_NAMES])
        lines.append(f'| {entry["name"]} | '
                     f'`{osp.basename(entry["synthetic_config"])}` | '
                     f'{checkpoint} | ' + ' | '.join(values) + ' |')
    height, width = run['speed_shape']
    statistic = f'best of {run["speed_repeat"]} after {run["warmup"]} ' \
        'warm-up, benchmark.py --quick'
    lines += [
        '', f'## Speed and size: paper-scale configs at {height}x{width}, '
        f'random weights ({run["device"]}, {statistic})', '',
        '| method | paper config | params (M) | network GMACs | total ms/img '
        '| network | post-processing | options |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for entry in summary['entries']:
        speed, size = entry['speed'], entry['complexity']
        size_status = _status_cell(size)
        size_cells = [size_status, ''] if size_status else [
            f'{size["params"] / 1e6:.1f}', f'{size["macs"] / 1e9:.0f}'
        ]
        speed_status = _status_cell(speed)
        speed_cells = [speed_status, '', ''] if speed_status else [
            f'{speed["total_ms"]:.0f}', f'{speed["network_ms"]:.0f}',
            f'{speed["postprocess_ms"]:.0f}'
        ]
        options = ', '.join(f'`{key}={value}`'
                            for key, value in entry['speed_options'].items())
        lines.append(f'| {entry["name"]} | '
                     f'`{osp.basename(entry["paper_config"])}` | ' +
                     ' | '.join(size_cells + speed_cells) +
                     f' | {options or "-"} |')
    lines += ['', '## Notes', ''] + [f'- {note}' for note in summary['notes']]
    return '\n'.join(lines) + '\n'


NOTES = [
    'PQ / SQ / RQ / PQ_th / PQ_st: `PanopticQualityMetric`, the reference '
    'algorithm (crowd, void and area rules), in percent; the loop is '
    '`tools/test.py`\'s.',
    'mIoU: semantic mIoU of the panoptic prediction (each pixel takes its '
    'segment\'s class, predicted void counts as wrong; ground-truth void '
    'and unannotated pixels are ignored; mean over the classes present in '
    'the ground truth or the prediction).',
    'total = full `model.predict` after the data preprocessor; network = '
    '`model._forward` (backbone, neck, heads), or for two-stage models the '
    'time `predict` spends inside `nn.Module` calls; post-processing = '
    'total - network (see `tools/analysis_tools/benchmark.py`). Random '
    'weights: the post-processing time depends on how many candidates pass '
    'the thresholds, hence the worst-case options.',
    'params: all parameters of the paper-scale model; network GMACs: '
    'multiply-adds of `model._forward` at the speed shape counted by '
    'mmengine\'s JIT `FlopAnalyzer` (deformable convolutions as '
    'convolutions; for two-stage models the RoI heads run on the RPN '
    'proposals), see `tools/analysis_tools/get_flops.py`.',
]


def write_picture(path: str, rows: List[dict], entries: List[dict],
                  legend: List[Tuple[str, Tuple[int, int, int]]]) -> None:
    """``comparison.png``: one row per picture image (image, ground truth,
    one column per entry)."""
    tiles, placeholders, titles = [], [], []
    for row in rows:
        tiles.append([row['image'], row['gt']] + row['predictions'])
        placeholders.append(['', 'no ground truth'] + row['placeholders'])
        titles.append(row['title'])
    grid = comparison_grid(
        tiles, ['image', 'ground truth'] + [e['name'] for e in entries],
        titles,
        placeholders,
        legend=legend)
    mmcv.imwrite(grid[..., ::-1], path)


def picture_rows(args: argparse.Namespace, val_root: str,
                 visualizer: PanopticLocalVisualizer) -> List[dict]:
    """The images of the picture with their drawn ground truth."""
    val_gt = read_panoptic_gt(
        osp.join(val_root, 'annotations', 'panoptic_val.json'))
    rows = [
        dict(
            title='synthetic val image',
            path=osp.join(val_root, 'val', val_gt['file_name']),
            gt=val_gt)
    ]
    if args.real_image is not None:
        real_gt = None
        if args.real_gt is not None:
            real_gt = read_panoptic_gt(
                repo_path(args.real_gt),
                osp.basename(args.real_image))
        rows.append(
            dict(
                title='real photo (ground truth: its own classes)',
                path=repo_path(args.real_image),
                gt=real_gt))
    for row in rows:
        row['image'] = load_image(row['path'])[..., ::-1].copy()
        gt = row.pop('gt')
        row['gt'] = None if gt is None else visualizer.draw_panoptic_map(
            row['image'], gt['pan_map'], gt['classes'], gt['palette'])
        row['predictions'], row['placeholders'] = [], []
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    command = 'python tools/analysis_tools/compare_methods.py ' + ' '.join(
        shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
    if not MMLogger.check_instance_created('compare_methods'):
        # keep the output to the figures: model building logs at INFO
        MMLogger.get_instance('compare_methods', log_level='WARNING')
    register_all_modules(init_default_scope=False)
    try:
        entries = load_registry(args.registry, args.methods)
    except (FileNotFoundError, ValueError) as error:
        print(f'ERROR: {error}', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    default_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    started = datetime.datetime.now()
    load_before = [round(v, 2) for v in os.getloadavg()]
    records = [
        dict(
            key=entry['key'],
            name=entry['name'],
            synthetic_config=entry['synthetic_config'],
            checkpoint=entry['checkpoint'],
            paper_config=entry['paper_config'],
            speed_options=dict(entry['speed_options']),
            speed_note=entry['speed_note'],
            accuracy=dict(status='skipped'),
            speed=dict(status='skipped'),
            complexity=dict(status='skipped')) for entry in entries
    ]
    val_root = osp.join(args.out, 'val_set')
    try:
        if not args.skip_pq:
            make_val_set(val_root, args.val_seed, args.val_size,
                         args.val_shape)
            visualizer = PanopticLocalVisualizer(
                name=f'compare_methods_{time.time_ns()}', draw_labels=False)
            rows = attempt('picture', 'picture', picture_rows, args,
                           val_root, visualizer)
            rows = rows if isinstance(rows, list) else []
            for index, (entry, record) in enumerate(zip(entries, records)):
                print(f'[{index + 1}/{len(entries)}] {entry["name"]}: '
                      'accuracy on the synthetic val set')
                result = attempt('accuracy', entry['name'], run_accuracy,
                                 entry, args, val_root,
                                 [row['path'] for row in rows], visualizer)
                record['accuracy'], tiles = result if isinstance(
                    result, tuple) else (result, [None] * len(rows))
                for row, tile in zip(rows, tiles):
                    row['predictions'].append(tile)
                    row['placeholders'].append(
                        'error' if record['accuracy']['status'] == 'error'
                        else record['accuracy']['status'])
            if rows:
                legend = _legend(val_root)
                write_picture(
                    osp.join(args.out, 'comparison.png'), rows, entries,
                    legend)
        bench_args = None
        if not (args.skip_speed and args.skip_complexity):
            bench_argv = [
                'unused.py', '--shape',
                *map(str, args.speed_shape), '--repeat',
                str(args.speed_repeat), '--warmup',
                str(args.warmup), '--device', args.device, '--statistic',
                'min', '--quick'
            ]
            bench_args = benchmark.parse_args(bench_argv)
            bar = ProgressBar(len(entries))
            for entry, record in zip(entries, records):
                print(f'\n{entry["name"]}: paper-scale config '
                      f'{entry["paper_config"]}')
                if not args.skip_speed:
                    record['speed'] = attempt('speed', entry['name'],
                                              run_speed, entry, bench_args)
                if not args.skip_complexity:
                    record['complexity'] = attempt('complexity',
                                                   entry['name'],
                                                   run_complexity, entry,
                                                   args)
                bar.update()
            sys.stdout.write('\n')
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(default_threads)

    summary = dict(
        command=command,
        machine=machine_description(threads),
        run=dict(
            started=started.strftime('%Y-%m-%d %H:%M'),
            minutes=round(
                (datetime.datetime.now() - started).total_seconds() / 60, 1),
            load_before=load_before,
            load_after=[round(v, 2) for v in os.getloadavg()],
            device=args.device,
            speed_shape=list(args.speed_shape),
            speed_repeat=args.speed_repeat,
            warmup=args.warmup,
            statistic='min',
            quick=True),
        val_set=dict(
            root=val_root,
            seed=args.val_seed,
            size=args.val_size,
            shape=list(args.val_shape)),
        notes=NOTES + [
            f'{record["name"]}: {record["speed_note"]}'
            for record in records if record['speed_note']
        ],
        entries=records)
    with open(osp.join(args.out, 'results.json'), 'w') as file:
        json.dump(summary, file, indent=1)
    table = format_table(summary)
    with open(osp.join(args.out, 'table.md'), 'w') as file:
        file.write(table)
    print('\n' + table)
    print(f'written: {osp.join(args.out, "table.md")}, results.json'
          + (', comparison.png' if not args.skip_pq else ''))
    failed = [record for record in records if _failed(record)]
    return 1 if len(failed) == len(records) else 0


def _failed(record: dict) -> bool:
    """Every part that ran raised an error (and one did)."""
    statuses = [record[part]['status']
                for part in ('accuracy', 'speed', 'complexity')]
    return 'error' in statuses and 'ok' not in statuses


def _legend(val_root: str) -> List[Tuple[str, Tuple[int, int, int]]]:
    """The synthetic classes and their colours."""
    with open(osp.join(val_root, 'annotations', 'panoptic_val.json')) as f:
        categories = json.load(f)['categories']
    return [(cat['name'], tuple(cat['color'])) for cat in categories]


if __name__ == '__main__':
    sys.exit(main())
