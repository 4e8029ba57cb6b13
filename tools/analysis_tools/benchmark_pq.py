# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Speed and agreement of Panoptic Quality implementations.

Generates street-like panoptic ground truth (Cityscapes categories, ~60
segments, crowd and VOID regions) and predictions perturbed from it
(warped boundaries, dropped / merged / split / mis-classified segments,
false-positive blobs), in COCO panoptic format, then times on the same
data, in one run, repeats interleaved (best time kept):

* ``reference``: cityscapesscripts' ``pq_compute_single_core`` (PNG decoding
  included; single-threaded);
* ``pq_compute``: ours, ``nproc=1``, for each ``--threads`` T with
  ``decode_threads=T`` (PNG decoding included; ``--png-writer cv2``, the
  default, writes Sub-filtered PNGs that it decodes straight to id runs,
  ``--png-writer pil`` adaptive-filtered ones that it decodes with libspng,
  or cv2 without ``imagecodecs``, and cuts into runs);
* ``hotcoco`` (optional, skipped with a note when not installed): its
  ``panoptic.PanopticEval`` on the same files, for each T with
  ``RAYON_NUM_THREADS=T``, in a child process (rayon reads the variable
  once per process);
* ``in_memory``: ``PanopticQualityMetric.process`` on data samples whose
  tensors are prepared beforehand (the data loader has already decoded
  them), plus ``compute_metrics``.

While T threads are measured the process (and hotcoco's child) is pinned
to T CPUs where the OS allows, so that every implementation gets the same
CPUs; reference, in-memory and decoding-only times are taken on the first
T. It checks that all give the same PQ / SQ / RQ, prints ms per image,
ratios, the load average (the CPU may be shared) and one final JSON line::

    python tools/analysis_tools/benchmark_pq.py --size 1024 2048 \\
        --num-images 10 --repeat 3 --threads 1 2 \\
        --out-dir work_dirs/pq_benchmark
"""
import argparse
import contextlib
import copy
import io
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Cityscapes train ids, things first (the order of our class labels).
THINGS = [(11, 'person'), (12, 'rider'), (13, 'car'), (14, 'truck'),
          (15, 'bus'), (16, 'train'), (17, 'motorcycle'), (18, 'bicycle')]
STUFF = [(0, 'road'), (1, 'sidewalk'), (2, 'building'), (3, 'wall'),
         (4, 'fence'), (5, 'pole'), (6, 'traffic light'), (7, 'traffic sign'),
         (8, 'vegetation'), (9, 'terrain'), (10, 'sky')]
CATEGORIES = ([dict(id=i, name=n, isthing=1) for i, n in THINGS] +
              [dict(id=i, name=n, isthing=0) for i, n in STUFF])
UPPER_STUFF = [2, 3, 4, 5, 6, 7, 8, 10]  # above the horizon
LOWER_STUFF = [0, 1, 9]  # below it
THING_WEIGHTS = np.array([0.3, 0.05, 0.4, 0.05, 0.03, 0.02, 0.05, 0.1])


def smooth_field(rng: np.random.Generator,
                 shape: Tuple[int, int],
                 amplitude: float,
                 cells: int = 12) -> np.ndarray:
    """A smooth random displacement field (low-res noise, cubic upsampling)
    of shape (H, W), float32, of the given pixel amplitude."""
    coarse = rng.normal(size=(cells, 2 * cells)).astype(np.float32)
    field = cv2.resize(coarse, shape[::-1], interpolation=cv2.INTER_CUBIC)
    return amplitude * field


def warp_nearest(index_map: np.ndarray, rng: np.random.Generator,
                 amplitude: float) -> np.ndarray:
    """Move region boundaries by a smooth random displacement."""
    height, width = index_map.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = xs + smooth_field(rng, (height, width), amplitude)
    map_y = ys + smooth_field(rng, (height, width), amplitude)
    return cv2.remap(
        index_map,
        map_x,
        map_y,
        cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_REPLICATE)


def make_ground_truth(rng: np.random.Generator, height: int,
                      width: int) -> Tuple[np.ndarray, List[dict]]:
    """A street-like panoptic map: stuff Voronoi cells above / below a
    horizon, 30-60 perspective-scaled instances (about 10% crowd), an ego
    vehicle VOID band and VOID blobs.

    Returns:
        tuple: segment ids (H, W) uint32 (stuff ``100 + cat``, crowd
        ``200 + cat``, instances ``1000 * cat + k``) and ``segments_info``.
    """
    # Stuff: nearest of a few seeds on a coarse grid, then warped so that
    # the boundaries are not blocky.
    coarse_h, coarse_w = 64, 128
    horizon = rng.uniform(0.35, 0.5)
    num_seeds = 28
    seed_y = rng.uniform(0, 1, num_seeds)
    seed_x = rng.uniform(0, 1, num_seeds)
    seed_cat = np.where(seed_y < horizon, rng.choice(UPPER_STUFF, num_seeds),
                        rng.choice(LOWER_STUFF, num_seeds))
    seed_cat[np.argmin(seed_y)] = 10  # some sky
    gy, gx = np.mgrid[0:coarse_h, 0:coarse_w]
    dist = ((gy[None] / coarse_h - seed_y[:, None, None])**2 +
            (gx[None] / coarse_w - seed_x[:, None, None])**2)
    coarse = seed_cat[dist.argmin(axis=0)].astype(np.uint16)
    stuff = cv2.resize(
        coarse, (width, height), interpolation=cv2.INTER_NEAREST)
    stuff = warp_nearest(stuff, rng, amplitude=0.01 * width)
    ids = (100 + stuff).astype(np.int32)

    # Things, far (small, high) to near (large, low), so near ones occlude.
    num_things = int(rng.integers(30, 61))
    centre_y = np.sort(rng.uniform(horizon - 0.05, 0.95, num_things))
    segments = {}
    for k, cy in enumerate(centre_y):
        cat = int(rng.choice([c for c, _ in THINGS], p=THING_WEIGHTS))
        scale = (cy - horizon + 0.1) * height * 0.35
        axes = (max(2, int(scale * rng.uniform(0.3, 1.0))),
                max(2, int(scale * rng.uniform(0.3, 0.8))))
        centre = (int(rng.uniform(0, 1) * width), int(cy * height))
        crowd = rng.random() < 0.1
        seg_id = 200 + cat if crowd else 1000 * cat + k
        if rng.random() < 0.5:
            cv2.ellipse(ids, centre, axes, 0, 0, 360, seg_id, -1)
        else:
            cv2.rectangle(ids, (centre[0] - axes[0], centre[1] - axes[1]),
                          (centre[0] + axes[0], centre[1] + axes[1]), seg_id,
                          -1)
        segments[seg_id] = dict(category_id=cat, iscrowd=int(crowd))

    # VOID: ego vehicle at the bottom and a few blobs.
    cv2.ellipse(ids, (width // 2, height),
                (int(0.6 * width), int(0.08 * height)), 0, 0, 360, 0, -1)
    for _ in range(int(rng.integers(2, 6))):
        cv2.circle(ids, (int(rng.integers(width)), int(rng.integers(height))),
                   int(rng.integers(2, max(3, height // 20))), 0, -1)

    present, areas = np.unique(ids, return_counts=True)
    segments_info = []
    for seg_id, area in zip(present.tolist(), areas.tolist()):
        if seg_id == 0:
            continue
        info = segments.get(seg_id, dict(category_id=seg_id - 100, iscrowd=0))
        segments_info.append(dict(id=seg_id, area=area, **info))
    return ids.astype(np.uint32), segments_info


def make_prediction(rng: np.random.Generator, gt_ids: np.ndarray,
                    gt_segments: List[dict]) -> Tuple[np.ndarray, List[dict]]:
    """Perturb a ground truth into a plausible prediction: warped
    boundaries, 10% of instances dropped (into the road), 5% merged with
    another instance, 10% split, 10% mis-classified, 5% of stuff
    mis-classified, crowd regions predicted as instances, false-positive
    blobs. Segment ids are random 24-bit values."""
    height, width = gt_ids.shape
    seg_ids = np.array([0] + [s['id'] for s in gt_segments], np.int64)
    categories = [None] + [s['category_id'] for s in gt_segments]
    # Work on dense indices (uint16, supported by cv2.remap).
    lut = np.zeros(int(seg_ids.max()) + 1, np.uint16)
    lut[seg_ids] = np.arange(len(seg_ids))
    index = warp_nearest(lut[gt_ids], rng, amplitude=0.004 * width)

    num = len(seg_ids)
    remap = np.arange(num, dtype=np.int32)
    is_thing = np.array([c is not None and c >= 11 for c in categories])
    road = [i for i, c in enumerate(categories) if c == 0]
    thing_rows = np.flatnonzero(is_thing)
    for i in thing_rows:
        draw = rng.random()
        if draw < 0.1:
            remap[i] = road[0] if road else 0
        elif draw < 0.15 and len(thing_rows) > 1:
            remap[i] = rng.choice(thing_rows)
        elif draw < 0.25:
            categories[i] = int(rng.choice([c for c, _ in THINGS]))
    for i in np.flatnonzero(~is_thing)[1:]:
        if rng.random() < 0.05:
            categories[i] = int(rng.choice([c for c, _ in STUFF]))
    index = remap[index]

    next_index = num
    for i in rng.choice(thing_rows, max(1, len(thing_rows) // 10)):
        ys, xs = np.nonzero(index[::8, ::8] == i)  # coarse centre
        if xs.size:
            part = (index == i)
            part[:, :int(xs.mean() * 8)] = False
            index[part] = next_index
            categories.append(categories[i])
            next_index += 1
    for _ in range(int(rng.integers(3, 8))):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        axes = (int(rng.integers(2, max(3, width // 20))),
                int(rng.integers(2, max(3, height // 10))))
        cv2.ellipse(index, centre, axes, 0, 0, 360, next_index, -1)
        categories.append(int(rng.choice([c for c, _ in THINGS])))
        next_index += 1

    present = np.unique(index)
    present = present[present != 0]
    new_ids = rng.choice(np.arange(1, 1 << 24), len(present), replace=False)
    id_of_index = np.zeros(next_index, np.uint32)
    id_of_index[present] = new_ids
    pred_segments = [
        dict(id=int(new_id), category_id=int(categories[i]))
        for i, new_id in zip(present.tolist(), new_ids.tolist())
    ]
    return id_of_index[index], pred_segments


def write_png(path: str, ids: np.ndarray, writer: str = 'cv2') -> None:
    """Write ids as an RGB PNG with OpenCV (``Sub`` filter on every row,
    as our ``write_panoptic_ids``) or PIL (libpng-style adaptive filters,
    as cityscapesscripts' and COCO's panoptic PNGs)."""
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255],
                   axis=-1).astype(np.uint8)
    if writer == 'pil':
        from PIL import Image
        Image.fromarray(rgb).save(path)
    else:
        cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))


def generate(out_dir: str,
             num_images: int,
             height: int,
             width: int,
             seed: int,
             writer: str = 'cv2') -> Tuple[dict, str, dict, str]:
    """Write ``gt.json`` + ``gt/`` and ``pred.json`` + ``pred/`` (PNGs
    written by ``writer``, see :func:`write_png`)."""
    rng = np.random.default_rng(seed)
    gt_folder, pred_folder = osp.join(out_dir, 'gt'), osp.join(out_dir, 'pred')
    os.makedirs(gt_folder, exist_ok=True)
    os.makedirs(pred_folder, exist_ok=True)
    gt_anns, pred_anns = [], []
    for i in range(num_images):
        image_id = f'synthetic_{i:06d}_000019'
        file_name = f'{image_id}.png'
        gt_ids, gt_segments = make_ground_truth(rng, height, width)
        pred_ids, pred_segments = make_prediction(rng, gt_ids, gt_segments)
        write_png(osp.join(gt_folder, file_name), gt_ids, writer)
        write_png(osp.join(pred_folder, file_name), pred_ids, writer)
        gt_anns.append(
            dict(
                image_id=image_id,
                file_name=file_name,
                segments_info=gt_segments))
        pred_anns.append(
            dict(
                image_id=image_id,
                file_name=file_name,
                segments_info=pred_segments))
    gt_json = dict(annotations=gt_anns, categories=CATEGORIES)
    pred_json = dict(annotations=pred_anns)
    for name, data in (('gt.json', gt_json), ('pred.json', pred_json)):
        with open(osp.join(out_dir, name), 'w') as f:
            json.dump(data, f)
    return gt_json, gt_folder, pred_json, pred_folder


def prepare_data_samples(gt_json: dict, gt_folder: str, pred_json: dict,
                         pred_folder: str) -> list:
    """Data samples (as dicts, as the Evaluator passes them) with decoded
    gt ids and ``label + instance * INSTANCE_OFFSET`` predictions."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import PixelData

    from mmpanoptic_plus.evaluation.functional import (FIRST_SEGMENT_INDEX,
                                                       index_segment_ids,
                                                       read_panoptic_ids)
    from mmpanoptic_plus.structures import INSTANCE_OFFSET
    label_of = {c['id']: label for label, c in enumerate(CATEGORIES)}
    num_classes = len(CATEGORIES)
    predictions = {a['image_id']: a for a in pred_json['annotations']}
    samples = []
    for gt_ann in gt_json['annotations']:
        pred_ann = predictions[gt_ann['image_id']]
        pred_ids = read_panoptic_ids(
            osp.join(pred_folder, pred_ann['file_name']))
        labels = np.array(
            [label_of[s['category_id']] for s in pred_ann['segments_info']],
            np.int64)
        # Instance numbers: running count per label.
        order = np.argsort(labels, kind='stable')
        first = np.searchsorted(labels[order], labels[order])
        instance = np.empty_like(labels)
        instance[order] = np.arange(len(labels)) - first
        encoded = np.concatenate([[num_classes, num_classes],
                                  labels + INSTANCE_OFFSET * instance])
        index = index_segment_ids(pred_ids,
                                  [s['id'] for s in pred_ann['segments_info']])
        assert FIRST_SEGMENT_INDEX == 2
        gt_ids = read_panoptic_ids(osp.join(gt_folder, gt_ann['file_name']))
        sample = DetDataSample(
            metainfo=dict(
                img_path=f'{gt_ann["image_id"]}_leftImg8bit.png',
                segments_info=[
                    dict(
                        id=s['id'],
                        category=label_of[s['category_id']],
                        is_thing=label_of[s['category_id']] < len(THINGS),
                        iscrowd=bool(s['iscrowd']),
                        area=s['area']) for s in gt_ann['segments_info']
                ]))
        sample.gt_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(gt_ids.astype(np.int64))[None])
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(encoded[index])[None])
        samples.append(sample.to_dict())
    return samples


def time_reference(gt_json, gt_folder, pred_json, pred_folder):
    from cityscapesscripts.evaluation import \
        evalPanopticSemanticLabeling as reference
    categories = {el['id']: el for el in gt_json['categories']}
    predictions = {a['image_id']: a for a in pred_json['annotations']}
    # The reference writes areas into the prediction dicts: give it copies.
    pairs = [(copy.deepcopy(a), copy.deepcopy(predictions[a['image_id']]))
             for a in gt_json['annotations']]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        stat = reference.pq_compute_single_core(0, pairs, gt_folder,
                                                pred_folder, categories)
    elapsed = time.perf_counter() - start
    return reference.average_pq(stat, categories), elapsed


def time_pq_compute(gt_json, gt_folder, pred_json, pred_folder,
                    threads: int = 1):
    from mmpanoptic_plus.evaluation.functional import pq_compute
    start = time.perf_counter()
    results = pq_compute(
        gt_json,
        gt_folder,
        pred_json,
        pred_folder,
        nproc=1,
        decode_threads=threads)
    return results, time.perf_counter() - start


def hotcoco_version() -> Optional[str]:
    """hotcoco's version, or None when it is not installed (it is an
    optional comparison: ``pip install hotcoco``)."""
    try:
        import hotcoco
    except ImportError:
        return None
    return getattr(hotcoco, '__version__', 'unknown')


# Run in a child process: rayon sizes its pool from RAYON_NUM_THREADS once
# per process. hotcoco wants integer image ids; the JSONs are read and
# renumbered before the clock starts (ours is timed on loaded JSONs too).
_HOTCOCO_CHILD = r'''
import json, sys, time
from hotcoco import panoptic
out_dir = sys.argv[1]
with open(out_dir + '/gt.json') as f:
    gt = json.load(f)
with open(out_dir + '/pred.json') as f:
    pred = json.load(f)
number = {a['image_id']: i for i, a in enumerate(gt['annotations'])}
for data in (gt, pred):
    for ann in data['annotations']:
        ann['image_id'] = number[ann['image_id']]
start = time.perf_counter()
evaluator = panoptic.PanopticEval(
    gt, pred, gt_folder=out_dir + '/gt', pred_folder=out_dir + '/pred')
evaluator.evaluate()
elapsed = time.perf_counter() - start
results = evaluator.results()
print(json.dumps(dict(elapsed=elapsed, results={
    key: results[key] for key in ('All', 'Things', 'Stuff', 'per_class')})))
'''


def time_hotcoco(out_dir: str, threads: int) -> Tuple[dict, float]:
    """hotcoco's PQ of the set in ``out_dir`` with ``threads`` threads."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    output = subprocess.run([sys.executable, '-c', _HOTCOCO_CHILD, out_dir],
                            env=env,
                            check=True,
                            capture_output=True,
                            text=True).stdout
    answer = json.loads(output.strip().splitlines()[-1])
    results = answer['results']
    results['per_class'] = {
        int(cat): value
        for cat, value in results['per_class'].items()
    }
    return results, answer['elapsed']


@contextlib.contextmanager
def pinned_to(num_cpus: int):
    """Run on ``num_cpus`` of the allowed CPUs (Linux; elsewhere, or when
    fewer are allowed, unchanged) with cv2 using as many threads."""
    import cv2
    can_pin = hasattr(os, 'sched_getaffinity')
    allowed = sorted(os.sched_getaffinity(0)) if can_pin else []
    cv2_threads = cv2.getNumThreads()
    pinned = can_pin and num_cpus < len(allowed)
    if pinned:
        os.sched_setaffinity(0, allowed[:num_cpus])
    cv2.setNumThreads(num_cpus)
    try:
        yield allowed[:num_cpus] if pinned else None
    finally:
        cv2.setNumThreads(cv2_threads)
        if pinned:
            os.sched_setaffinity(0, allowed)


def time_in_memory(samples):
    from mmpanoptic_plus.evaluation import PanopticQualityMetric
    metric = PanopticQualityMetric()
    metric.dataset_meta = dict(
        classes=tuple(c['name'] for c in CATEGORIES),
        thing_classes=tuple(n for _, n in THINGS),
        cat_ids=[c['id'] for c in CATEGORIES])
    start = time.perf_counter()
    for sample in samples:
        metric.process({}, [sample])
    with contextlib.redirect_stdout(io.StringIO()):  # its summary table
        metrics = metric.compute_metrics(metric.results)
    return metrics, time.perf_counter() - start


def time_decoding(gt_json, gt_folder, pred_json, pred_folder):
    """Our PNG decoding alone, as pq_compute reads the PNGs (id runs), for
    context."""
    from mmpanoptic_plus.structures import read_panoptic_runs
    start = time.perf_counter()
    for gt_ann, pred_ann in zip(gt_json['annotations'],
                                pred_json['annotations']):
        read_panoptic_runs(osp.join(gt_folder, gt_ann['file_name']))
        read_panoptic_runs(osp.join(pred_folder, pred_ann['file_name']))
    return time.perf_counter() - start


def hotcoco_equal(ours: dict, hotcoco: dict, tol: float = 1e-9) -> bool:
    """Same groups and per-class values; hotcoco reports -1 for a class
    without any segment, where the reference (and ours) report 0."""
    for group in ('All', 'Things', 'Stuff'):
        if ours[group]['n'] != hotcoco[group]['n']:
            return False
        if any(
                abs(ours[group][key] - hotcoco[group][key]) > tol
                for key in ('pq', 'sq', 'rq')):
            return False
    if set(ours['per_class']) != set(hotcoco['per_class']):
        return False
    for cat, value in hotcoco['per_class'].items():
        for key in ('pq', 'sq', 'rq'):
            expected = 0.0 if value[key] == -1.0 else value[key]
            if abs(ours['per_class'][cat][key] - expected) > tol:
                return False
    return True


def results_equal(reference: dict,
                  ours: dict,
                  in_memory: dict,
                  tol: float = 1e-9) -> bool:
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        if reference[group]['n'] != ours[group]['n']:
            return False
        for key in ('pq', 'sq', 'rq'):
            expected = reference[group][key]
            if abs(ours[group][key] - expected) > tol:
                return False
            if abs(in_memory[key.upper() + suffix] / 100 - expected) > tol:
                return False
    return all(
        abs(ours['per_class'][cat][key] - value[key]) <= tol
        for cat, value in reference['per_class'].items()
        for key in ('pq', 'sq', 'rq'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[1024, 2048],
        metavar=('H', 'W'),
        help='image size')
    parser.add_argument('--num-images', type=int, default=10)
    parser.add_argument(
        '--out-dir',
        default=None,
        help='where to write the generated set (default: a temporary '
        'folder, removed afterwards)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--repeat',
        type=int,
        default=3,
        help='timing repeats; the best of each method is reported')
    parser.add_argument(
        '--threads',
        type=int,
        nargs='+',
        default=[1, 2],
        help='thread counts for pq_compute (decode_threads) and hotcoco '
        '(RAYON_NUM_THREADS); the process is pinned to as many CPUs')
    parser.add_argument(
        '--png-writer',
        choices=['cv2', 'pil'],
        default='cv2',
        help='who writes the PNGs: cv2 (Sub-filtered rows, as our '
        'write_panoptic_ids; pq_compute decodes them as runs) or pil '
        '(adaptive filters, as cityscapesscripts and COCO; pq_compute '
        'decodes them with libspng, or cv2 without imagecodecs)')
    parser.add_argument(
        '--no-hotcoco',
        action='store_true',
        help='skip hotcoco even when it is installed')
    args = parser.parse_args(argv)
    if min(args.threads) < 1:
        parser.error('--threads must be positive')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    height, width = args.size
    threads = list(dict.fromkeys(args.threads))
    hotcoco = None if args.no_hotcoco else hotcoco_version()
    if hotcoco is None:
        print('hotcoco: ' + ('skipped (--no-hotcoco)' if args.no_hotcoco else
                             'not installed, its column is skipped (pip '
                             'install hotcoco to compare)'))
    load_start = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with tempfile.TemporaryDirectory() as tmp_dir:
        out_dir = args.out_dir or tmp_dir
        start = time.perf_counter()
        files = generate(out_dir, args.num_images, height, width, args.seed,
                         args.png_writer)
        print(f'generated {args.num_images} image pairs of {height}x{width} '
              f'in {out_dir} ({time.perf_counter() - start:.1f} s)')
        samples = prepare_data_samples(*files)
        segments = np.mean(
            [len(a['segments_info']) for a in files[0]['annotations']])

        # The machine may be shared: interleave the repeats and keep each
        # method's best time.
        inf = float('inf')
        ref_time = memory_time = decode_time = inf
        our_time = {t: inf for t in threads}
        hotcoco_time = {t: inf for t in threads}
        our_results: Dict[int, dict] = {}
        hotcoco_results: Dict[int, dict] = {}
        pinned_cpus = {}
        for _ in range(args.repeat):
            for num_threads in threads:
                with pinned_to(num_threads) as cpus:
                    pinned_cpus[num_threads] = cpus
                    if num_threads == threads[0]:
                        ref_results, elapsed = time_reference(*files)
                        ref_time = min(ref_time, elapsed)
                        memory_results, elapsed = time_in_memory(samples)
                        memory_time = min(memory_time, elapsed)
                        decode_time = min(decode_time, time_decoding(*files))
                    our_results[num_threads], elapsed = time_pq_compute(
                        *files, threads=num_threads)
                    our_time[num_threads] = min(our_time[num_threads],
                                                elapsed)
                    if hotcoco is not None:
                        hotcoco_results[num_threads], elapsed = time_hotcoco(
                            out_dir, num_threads)
                        hotcoco_time[num_threads] = min(
                            hotcoco_time[num_threads], elapsed)
    load_end = os.getloadavg() if hasattr(os, 'getloadavg') else None

    per_image = 1000 / args.num_images
    first = threads[0]
    ours = our_results[first]
    equal = results_equal(ref_results, ours, memory_results) and all(
        results_equal(ref_results, our_results[t], memory_results)
        for t in threads)
    summary = dict(
        size=[height, width],
        num_images=args.num_images,
        repeat=args.repeat,
        gt_segments_per_image=float(segments),
        png_writer=args.png_writer,
        threads=threads,
        cpu_count=os.cpu_count(),
        load_average_start=(None if load_start is None else
                            [round(x, 2) for x in load_start]),
        load_average_end=(None if load_end is None else
                          [round(x, 2) for x in load_end]),
        pinned_cpus={str(t): cpus
                     for t, cpus in pinned_cpus.items()},
        reference_ms_per_img=round(ref_time * per_image, 2),
        pq_compute_ms_per_img=round(our_time[first] * per_image, 2),
        in_memory_ms_per_img=round(memory_time * per_image, 2),
        png_decoding_ms_per_img=round(decode_time * per_image, 2),
        speedup_pq_compute_vs_reference=round(ref_time / our_time[first], 2),
        speedup_in_memory_vs_reference=round(ref_time / memory_time, 2),
        in_memory_fraction_of_pq_compute=round(memory_time / our_time[first],
                                               3),
        hotcoco_version=hotcoco,
        per_threads={
            str(t): dict(
                pq_compute_ms_per_img=round(our_time[t] * per_image, 2),
                speedup_pq_compute_vs_reference=round(
                    ref_time / our_time[t], 2),
                hotcoco_ms_per_img=(round(hotcoco_time[t] * per_image, 2)
                                    if hotcoco else None),
                pq_compute_time_over_hotcoco=(round(
                    our_time[t] / hotcoco_time[t], 2) if hotcoco else None))
            for t in threads
        },
        results_equal=equal,
        hotcoco_equal=(all(
            hotcoco_equal(ours, hotcoco_results[t]) for t in threads)
                       if hotcoco else None),
        PQ=round(100 * ours['All']['pq'], 4),
        SQ=round(100 * ours['All']['sq'], 4),
        RQ=round(100 * ours['All']['rq'], 4))
    print(f'PNGs written by {args.png_writer}; '
          f'gt segments per image: {segments:.1f}; PQ {summary["PQ"]:.2f}, '
          f'SQ {summary["SQ"]:.2f}, RQ {summary["RQ"]:.2f}')
    print(f'load average: {summary["load_average_start"]} at the start, '
          f'{summary["load_average_end"]} at the end '
          f'({summary["cpu_count"]} CPUs)')
    print(f'reference (cityscapesscripts), 1 thread: '
          f'{summary["reference_ms_per_img"]:8.1f} ms/img')
    for t in threads:
        row = summary['per_threads'][str(t)]
        line = (f'pq_compute (ours), {t} thread(s):     '
                f'{row["pq_compute_ms_per_img"]:8.1f} ms/img '
                f'(x{row["speedup_pq_compute_vs_reference"]:.2f} faster than '
                'the reference')
        if hotcoco:
            line += (f'; hotcoco {row["hotcoco_ms_per_img"]:.1f} ms/img, '
                     f'ours takes x{row["pq_compute_time_over_hotcoco"]:.2f} '
                     'its time')
        print(line + ')')
    print(f'PNG decoding alone (ours, serial, to id runs): '
          f'{summary["png_decoding_ms_per_img"]:.1f} ms/img')
    print(f'in-memory metric process():    '
          f'{summary["in_memory_ms_per_img"]:8.1f} ms/img '
          f'(x{summary["speedup_in_memory_vs_reference"]:.2f} faster, '
          f'{summary["in_memory_fraction_of_pq_compute"]:.3f} of '
          'pq_compute)')
    print('results equal: ' + str(summary['results_equal']) +
          ('; hotcoco equal: ' +
           str(summary['hotcoco_equal']) if hotcoco else ''))
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
