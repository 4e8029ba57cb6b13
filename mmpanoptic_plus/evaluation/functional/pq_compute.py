# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic Quality of COCO panoptic files (JSON + id PNGs).

Same inputs, rules, errors and result structure as
``cityscapesscripts.evaluation.evalPanopticSemanticLabeling.evaluatePanoptic``
(itself a copy of ``panopticapi.evaluation.pq_compute``), computed by the
vectorized core of :mod:`.panoptic_quality`.
"""
import json
import multiprocessing
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmpanoptic_plus.structures import PanopticIdRuns, read_panoptic_runs
from .panoptic_quality import (FIRST_SEGMENT_INDEX, OTHER_INDEX,
                               PanopticSegments, PQStat, average_pq,
                               index_segment_ids, pq_stat_from_table,
                               run_intersection_table)

JsonLike = Union[str, os.PathLike, dict]


def parse_categories(categories: Sequence[dict]) -> Tuple[list, list, dict]:
    """Read the ``categories`` of a COCO panoptic JSON.

    Duplicated ids behave as the reference's ``{el['id']: el}`` dict: the
    first position, the last entry.

    Args:
        categories (Sequence[dict]): Entries with ``id`` and ``isthing``.

    Returns:
        tuple: ``category_ids`` (list, slot order), ``thing_mask`` (list of
        bool, ``isthing == 1``) and ``slot_of_category`` (dict id -> slot).
    """
    by_id = {}
    for category in categories:
        if 'id' not in category or 'isthing' not in category:
            raise KeyError('Every entry of "categories" needs "id" and '
                           f'"isthing"; got {category}.')
        by_id[category['id']] = category
    category_ids = list(by_id)
    thing_mask = [by_id[i]['isthing'] == 1 for i in category_ids]
    slot_of_category = {cat_id: i for i, cat_id in enumerate(category_ids)}
    return category_ids, thing_mask, slot_of_category


def parse_segments_info(segments_info: Sequence[dict],
                        slot_of_category: dict,
                        image_id=None,
                        is_gt: bool = True,
                        category_key: str = 'category_id') -> PanopticSegments:
    """Read the ``segments_info`` of one COCO panoptic annotation.

    Duplicated segment ids behave as the reference's ``{el['id']: el}``
    dict (first position, last entry). Categories missing from
    ``slot_of_category`` go to the extra slot K.

    Args:
        segments_info (Sequence[dict]): Entries with ``id``,
            ``category_id`` (see ``category_key``) and, for gt, ``area`` and
            ``iscrowd``.
        slot_of_category (dict): Category id -> slot in [0, K).
        image_id: Image id for error messages.
        is_gt (bool): Read ``area`` and ``iscrowd`` (ground truth); for
            predictions both are ignored (areas are counted from the PNG).

    Returns:
        PanopticSegments: The segments in annotation order.
    """
    by_id = {}
    for segment in segments_info:
        if 'id' not in segment or category_key not in segment:
            raise KeyError(f'In the image with ID {image_id} a segment has no '
                           f'"id" or "{category_key}": {segment}.')
        if is_gt and 'area' not in segment:
            raise KeyError(f'In the image with ID {image_id} the ground '
                           f'truth segment {segment["id"]} has no "area".')
        by_id[int(segment['id'])] = segment
    if 0 in by_id:
        # 0 is VOID in the PNG; the reference would count those pixels
        # both as VOID and as this segment.
        raise ValueError(f'In the image with ID {image_id} a segment has id '
                         '0, which is reserved for VOID pixels.')
    segments = list(by_id.values())
    num_categories = len(slot_of_category)
    category_ids = [s[category_key] for s in segments]
    return PanopticSegments(
        ids=np.fromiter(by_id, np.int64, len(by_id)),
        slots=np.array(
            [slot_of_category.get(c, num_categories) for c in category_ids],
            dtype=np.int64),
        iscrowd=np.array(
            [is_gt and s.get('iscrowd', 0) == 1 for s in segments],
            dtype=bool),
        areas=np.array([s['area'] if is_gt else 0 for s in segments],
                       dtype=np.int64),
        category_ids=category_ids)


def check_prediction(table: np.ndarray,
                     pred: PanopticSegments,
                     pred_ids: np.ndarray,
                     pred_index: np.ndarray,
                     num_categories: int,
                     image_id=None) -> None:
    """Raise the reference's errors for an inconsistent prediction.

    As the reference, which walks the PNG ids in increasing order, the
    error of the smallest offending id is raised first; ids annotated in
    the JSON but absent from the PNG are reported after that.

    Args:
        table (np.ndarray): Intersection table of the image, shape
            (N_gt + 2, N_pred + 2).
        pred (PanopticSegments): The predicted segments.
        pred_ids (np.ndarray): The prediction id map, shape (H, W).
        pred_index (np.ndarray): Its dense indices, shape (H, W).
        num_categories (int): Number K of evaluated categories.
        image_id: Image id for the messages.

    Raises:
        KeyError: a non-zero PNG id is not in the JSON, a segment present
            in the PNG has an unknown category, or a JSON segment is not in
            the PNG.
    """
    pred_areas = table[:, FIRST_SEGMENT_INDEX:].sum(axis=0)
    errors = []  # (offending id, error)
    prefix = f'In the image with ID {image_id}'
    if table[:, OTHER_INDEX].any():
        unknown_id = int(pred_ids[pred_index == OTHER_INDEX].min())
        errors.append(
            (unknown_id,
             KeyError(f'{prefix} segment with ID {unknown_id} is '
                      'presented in PNG and not presented in JSON.')))
    bad_category = np.flatnonzero((pred_areas > 0)
                                  & (pred.slots == num_categories))
    if bad_category.size:
        i = bad_category[np.argmin(pred.ids[bad_category])]
        category = (
            pred.category_ids[i] if pred.category_ids is not None else '?')
        errors.append((int(pred.ids[i]),
                       KeyError(f'{prefix} segment with ID {pred.ids[i]} has '
                                f'unknown category_id {category}.')))
    if errors:
        raise min(errors, key=lambda error: error[0])[1]
    missing = pred.ids[pred_areas == 0]
    if missing.size:
        raise KeyError(f'{prefix} the following segment IDs '
                       f'{sorted(missing.tolist())} are presented in JSON and '
                       'not presented in PNG.')


def _pq_stat_of_runs(gt: PanopticSegments,
                     pred: PanopticSegments,
                     gt_runs: PanopticIdRuns,
                     pred_runs: PanopticIdRuns,
                     num_categories: int,
                     image_id=None) -> PQStat:
    """PQ statistics of one image from its decoded id maps (as runs).

    Args:
        gt (PanopticSegments): Ground-truth segments (from
            :func:`parse_segments_info`).
        pred (PanopticSegments): Predicted segments.
        gt_runs (PanopticIdRuns): Ground-truth segment ids, (H, W).
        pred_runs (PanopticIdRuns): Predicted segment ids, (H, W).
        num_categories (int): Number K of evaluated categories.
        image_id: Image id for error messages.

    Returns:
        PQStat: Statistics with K + 1 slots.
    """
    if gt_runs.shape != pred_runs.shape:
        raise ValueError(f'In the image with ID {image_id} the ground truth '
                         f'PNG is {gt_runs.shape} and the prediction PNG '
                         f'{pred_runs.shape}.')
    gt_index = index_segment_ids(gt_runs.ids, gt.ids)
    pred_index = index_segment_ids(pred_runs.ids, pred.ids)
    table = run_intersection_table(gt_runs.starts, gt_index, pred_runs.starts,
                                   pred_index, gt_runs.num_pixels, len(gt),
                                   len(pred))
    # Runs are never empty, so the ids of the runs stand for the pixels.
    check_prediction(table, pred, pred_runs.ids, pred_index, num_categories,
                     image_id)
    return pq_stat_from_table(table, gt, pred.slots, num_categories)


def _parse_pair(gt_ann: dict, pred_ann: dict,
                slot_of_category: dict) -> Tuple[PanopticSegments,
                                                 PanopticSegments]:
    image_id = gt_ann.get('image_id')
    gt = parse_segments_info(
        gt_ann['segments_info'], slot_of_category, image_id, is_gt=True)
    pred = parse_segments_info(
        pred_ann['segments_info'], slot_of_category, image_id, is_gt=False)
    return gt, pred


def pq_stat_single_file(gt_ann: dict,
                        pred_ann: dict,
                        gt_folder: str,
                        pred_folder: str,
                        slot_of_category: dict,
                        backend_args: Optional[dict] = None) -> PQStat:
    """PQ statistics of one (gt, prediction) annotation pair on disk.

    Decodes the two PNGs one after the other (:func:`pq_compute_stat`
    decodes them in parallel).

    Args:
        gt_ann (dict): Ground-truth annotation (``image_id``,
            ``file_name``, ``segments_info``).
        pred_ann (dict): Prediction annotation, same keys.
        gt_folder (str): Folder of the gt PNGs.
        pred_folder (str): Folder of the predicted PNGs.
        slot_of_category (dict): Category id -> slot in [0, K).
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        PQStat: Statistics with K + 1 slots.
    """
    gt, pred = _parse_pair(gt_ann, pred_ann, slot_of_category)
    gt_runs = read_panoptic_runs(
        osp.join(gt_folder, gt_ann['file_name']), backend_args)
    pred_runs = read_panoptic_runs(
        osp.join(pred_folder, pred_ann['file_name']), backend_args)
    return _pq_stat_of_runs(gt, pred, gt_runs, pred_runs,
                            len(slot_of_category), gt_ann.get('image_id'))


def _available_cpus() -> int:
    if hasattr(os, 'sched_getaffinity'):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _default_decode_threads(nproc: int) -> int:
    """Decoding threads per worker process when the caller gives none.

    2 (the gt and the prediction PNG of an image at once) while the CPUs
    allow two threads per process, else 1: ``nproc`` processes that each
    decode serially already keep ``nproc`` cores busy, and more threads
    than cores only add switching.

    Args:
        nproc (int): Worker processes.

    Returns:
        int: 1 or 2.
    """
    return 2 if _available_cpus() >= 2 * max(1, nproc) else 1


def _pq_stat_files(annotation_pairs: Sequence[Tuple[dict, dict]],
                   gt_folder: str,
                   pred_folder: str,
                   slot_of_category: dict,
                   backend_args: Optional[dict],
                   decode_threads: int = 1) -> PQStat:
    """Sum of the PQ statistics over pairs (one worker's job).

    With ``decode_threads > 1`` the PNGs are decoded by a thread pool
    (inflating and the numpy passes release the GIL): the gt and prediction
    of an image at once, and those of the next image while this one's
    statistics are computed (one image ahead at most, so that at most two
    images are in memory). JSON errors and PNG errors of an image are
    raised in the same order as by :func:`pq_stat_single_file`.
    """
    num_categories = len(slot_of_category)
    stat = PQStat.zeros(num_categories)
    if decode_threads <= 1 or not annotation_pairs:
        for gt_ann, pred_ann in annotation_pairs:
            stat += pq_stat_single_file(gt_ann, pred_ann, gt_folder,
                                        pred_folder, slot_of_category,
                                        backend_args)
        return stat

    def submit(executor: ThreadPoolExecutor, pair: Tuple[dict, dict]):
        gt_ann, pred_ann = pair
        return (executor.submit(read_panoptic_runs,
                                osp.join(gt_folder, gt_ann['file_name']),
                                backend_args),
                executor.submit(read_panoptic_runs,
                                osp.join(pred_folder, pred_ann['file_name']),
                                backend_args))

    executor = ThreadPoolExecutor(
        max_workers=decode_threads, thread_name_prefix='pq_decode')
    try:
        pending = submit(executor, annotation_pairs[0])
        for i, (gt_ann, pred_ann) in enumerate(annotation_pairs):
            decoding, pending = pending, None
            if i + 1 < len(annotation_pairs):
                pending = submit(executor, annotation_pairs[i + 1])
            gt, pred = _parse_pair(gt_ann, pred_ann, slot_of_category)
            gt_runs, pred_runs = (future.result() for future in decoding)
            stat += _pq_stat_of_runs(gt, pred, gt_runs, pred_runs,
                                     num_categories, gt_ann.get('image_id'))
    finally:
        # after an error, drop the decoding of the next image
        executor.shutdown(wait=True, cancel_futures=True)
    return stat


def _load_json(json_like: JsonLike) -> dict:
    if isinstance(json_like, dict):
        return json_like
    path = os.fspath(json_like)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Panoptic JSON file not found: {path}')
    with open(path) as f:
        return json.load(f)


def match_annotations(gt_json: dict,
                      pred_json: dict) -> List[Tuple[dict, dict]]:
    """Pair every gt annotation with the prediction of the same image_id.

    Raises:
        KeyError: an image of the ground truth has no prediction.
    """
    pred_annotations = {
        ann['image_id']: ann
        for ann in pred_json['annotations']
    }
    pairs = []
    for gt_ann in gt_json['annotations']:
        image_id = gt_ann['image_id']
        if image_id not in pred_annotations:
            raise KeyError(f'no prediction for the image with id: {image_id}')
        pairs.append((gt_ann, pred_annotations[image_id]))
    return pairs


def pq_compute_stat(
        gt_json: JsonLike,
        gt_folder: str,
        pred_json: JsonLike,
        pred_folder: str,
        nproc: int = 1,
        backend_args: Optional[dict] = None,
        decode_threads: Optional[int] = None) -> Tuple[PQStat, list, list]:
    """Accumulated PQ statistics of a prediction set.

    Args:
        gt_json (str | PathLike | dict): Ground-truth COCO panoptic JSON
            (``annotations`` and ``categories``), or its path.
        gt_folder (str): Folder of the gt PNGs.
        pred_json (str | PathLike | dict): Prediction JSON (``annotations``)
            or its path.
        pred_folder (str): Folder of the predicted PNGs.
        nproc (int): Worker processes; images are split over a pool when
            greater than 1. Defaults to 1.
        backend_args (dict, optional): mmengine file backend arguments for
            the PNGs.
        decode_threads (int, optional): Threads decoding PNGs in each
            process (``nproc * decode_threads`` in all, next to the
            threads computing the statistics); 1 decodes serially. None:
            2 when there are at least 2 CPUs per process, else 1. The
            statistics do not depend on it.

    Returns:
        tuple: ``(pq_stat, category_ids, thing_mask)``; slot i of the
        statistics is ``category_ids[i]``.
    """
    gt_json = _load_json(gt_json)
    pred_json = _load_json(pred_json)
    gt_folder, pred_folder = os.fspath(gt_folder), os.fspath(pred_folder)
    if backend_args is None:
        for kind, folder in (('ground truth', gt_folder), ('prediction',
                                                           pred_folder)):
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'Folder {folder} with {kind} segmentations does not '
                    'exist.')
    category_ids, thing_mask, slot_of_category = parse_categories(
        gt_json['categories'])
    pairs = match_annotations(gt_json, pred_json)
    nproc = max(1, min(int(nproc), len(pairs)))
    if decode_threads is None:
        decode_threads = _default_decode_threads(nproc)
    decode_threads = max(1, int(decode_threads))
    if nproc == 1:
        stat = _pq_stat_files(pairs, gt_folder, pred_folder, slot_of_category,
                              backend_args, decode_threads)
    else:
        bounds = np.linspace(0, len(pairs), nproc + 1).astype(int)
        jobs = [(pairs[start:stop], gt_folder, pred_folder, slot_of_category,
                 backend_args, decode_threads)
                for start, stop in zip(bounds[:-1], bounds[1:])]
        with multiprocessing.Pool(nproc) as pool:
            partial_stats = pool.starmap(_pq_stat_files, jobs)
        stat = PQStat.zeros(len(category_ids))
        for partial in partial_stats:
            stat += partial
    return stat, category_ids, thing_mask


def pq_compute(gt_json: JsonLike,
               gt_folder: str,
               pred_json: JsonLike,
               pred_folder: str,
               nproc: int = 1,
               backend_args: Optional[dict] = None,
               decode_threads: Optional[int] = None) -> Dict[str, dict]:
    """Panoptic Quality of a prediction set stored as COCO panoptic files.

    Equivalent to the reference ``evaluatePanoptic`` (without writing a
    results file), except that a group without any evaluated category
    (``n == 0``) gets 0.0 instead of a ZeroDivisionError, and a segment id
    0 in a JSON is refused (0 is VOID).

    Args:
        gt_json (str | PathLike | dict): Ground-truth COCO panoptic JSON
            (``annotations`` and ``categories``), or its path.
        gt_folder (str): Folder of the gt PNGs.
        pred_json (str | PathLike | dict): Prediction JSON (``annotations``)
            or its path.
        pred_folder (str): Folder of the predicted PNGs.
        nproc (int): Worker processes. Defaults to 1.
        backend_args (dict, optional): mmengine file backend arguments for
            the PNGs.
        decode_threads (int, optional): Threads decoding PNGs in each
            process; None: 2 when there are at least 2 CPUs per process,
            else 1 (see :func:`pq_compute_stat`).

    Returns:
        dict: ``All``, ``Things``, ``Stuff`` (``{'pq', 'sq', 'rq', 'n'}``,
        fractions in [0, 1]) and ``per_class`` (``{category_id: {'pq',
        'sq', 'rq'}}``).
    """
    stat, category_ids, thing_mask = pq_compute_stat(gt_json, gt_folder,
                                                     pred_json, pred_folder,
                                                     nproc, backend_args,
                                                     decode_threads)
    return average_pq(stat, category_ids, thing_mask)
