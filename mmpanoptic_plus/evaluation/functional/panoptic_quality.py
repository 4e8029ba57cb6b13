# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Vectorized per-image Panoptic Quality statistics (Kirillov et al., CVPR
2019, Sec. 4.1, Eq. 1) and their averaging.

The rules are those of the COCO / Cityscapes reference evaluation
(``cityscapesscripts.evaluation.evalPanopticSemanticLabeling``, a copy of
``panopticapi.evaluation``), reproduced exactly:

* ground-truth areas are the annotation ``area`` fields, prediction areas
  are counted from the prediction map;
* a (gt, pred) pair can match only if both segments are annotated, the gt
  is not crowd and both have the same category; the IoU is
  ``inter / (pred_area + gt_area - inter - |pred & VOID|)`` and a match is
  ``IoU > 0.5``;
* an unmatched non-crowd gt segment is a false negative;
* an unmatched prediction is ignored when more than half of it lies on VOID
  plus the crowd region of its category (the crowd segment of a category is
  the *last* crowd segment of that category in annotation order), otherwise
  it is a false positive;
* gt ids that are in the map but not in the annotation are neither VOID nor
  segments.

The reference counts pixel pairs with ``np.unique`` over uint64 codes (a
sort). Here both maps are first turned into dense segment indices and the
whole (gt, pred) intersection table comes from one ``np.bincount``; all
matching is done with array operations on that small table.

Dense index layout shared by both maps (see :func:`index_segment_ids`):
``OTHER_INDEX`` (0) for ids not in the annotation, ``VOID_INDEX`` (1) for
id 0, ``FIRST_SEGMENT_INDEX + i`` (2 + i) for the i-th annotated segment.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

OTHER_INDEX = 0
VOID_INDEX = 1
FIRST_SEGMENT_INDEX = 2

# Largest id for which id -> index uses a lookup table instead of a binary
# search (ten times slower). np.zeros maps zero pages lazily, so a big table
# costs little more than the pages the ids touch; 24-bit PNG ids always fit.
_MAX_LUT_ID = 1 << 25


@dataclass
class PanopticSegments:
    """The annotated segments of one panoptic map, in annotation order.

    Attributes:
        ids (np.ndarray): Segment ids, shape (N,), int64, unique, non-zero.
        slots (np.ndarray): Category slot of each segment, shape (N,), int64
            in [0, K]; slot K collects categories outside the evaluated
            category list.
        iscrowd (np.ndarray): Crowd flags, shape (N,), bool.
        areas (np.ndarray): Annotated areas, shape (N,), int64 (only used
            for ground truth).
        category_ids (list, optional): The annotated category ids, length
            N, for error messages.
    """
    ids: np.ndarray
    slots: np.ndarray
    iscrowd: np.ndarray
    areas: np.ndarray
    category_ids: Optional[list] = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PQStat:
    """Per-category PQ accumulators (the reference ``PQStat`` as arrays).

    Arrays have K + 1 entries, indexed by category slot; the last slot
    collects categories outside the evaluated list and is never averaged,
    as the reference ignores categories it was not given.

    Attributes:
        tp (np.ndarray): True positives, shape (K + 1,), int64.
        fp (np.ndarray): False positives, shape (K + 1,), int64.
        fn (np.ndarray): False negatives, shape (K + 1,), int64.
        iou (np.ndarray): Sum of the IoUs of true positives, shape (K + 1,),
            float64.
    """
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray

    @classmethod
    def zeros(cls, num_categories: int) -> 'PQStat':
        """Empty statistics for ``num_categories`` evaluated categories."""
        size = num_categories + 1
        return cls(
            tp=np.zeros(size, np.int64),
            fp=np.zeros(size, np.int64),
            fn=np.zeros(size, np.int64),
            iou=np.zeros(size, np.float64))

    @property
    def num_categories(self) -> int:
        return len(self.tp) - 1

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        if len(other.tp) != len(self.tp):
            raise ValueError('Cannot add PQ statistics over '
                             f'{other.num_categories} categories to '
                             f'statistics over {self.num_categories}.')
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou
        return self

    def __add__(self, other: 'PQStat') -> 'PQStat':
        total = PQStat.zeros(self.num_categories)
        total += self
        total += other
        return total


def index_dtype(num_codes: int) -> np.dtype:
    """Smallest unsigned dtype holding ``num_codes`` dense codes; narrow
    lookup tables and index maps make the per-pixel passes cheaper."""
    if num_codes <= 1 << 8:
        return np.dtype(np.uint8)
    if num_codes <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int64)


def index_segment_ids(id_map: np.ndarray,
                      segment_ids: np.ndarray) -> np.ndarray:
    """Map segment ids to dense indices.

    Args:
        id_map (np.ndarray): Non-negative integer segment ids, any shape.
        segment_ids (np.ndarray): Ids of the annotated segments, shape (N,),
            unique and non-zero.

    Returns:
        np.ndarray: Same shape as ``id_map``, of the smallest unsigned dtype
        that fits (see :func:`index_dtype`): ``FIRST_SEGMENT_INDEX + i``
        where the id is ``segment_ids[i]``, ``VOID_INDEX`` where it is 0,
        ``OTHER_INDEX`` elsewhere.
    """
    segment_ids = np.asarray(segment_ids, dtype=np.int64)
    dtype = index_dtype(len(segment_ids) + FIRST_SEGMENT_INDEX)
    if id_map.size == 0:
        return np.zeros(id_map.shape, dtype)
    if id_map.dtype.kind not in 'iu':
        raise TypeError(f'Segment id maps must be integer, got {id_map.dtype}')
    if id_map.dtype.kind == 'i' and id_map.min() < 0:
        raise ValueError('Segment id maps must not hold negative ids.')
    max_id = int(id_map.max())
    if segment_ids.size:
        max_id = max(max_id, int(segment_ids.max()))
    codes = np.arange(FIRST_SEGMENT_INDEX,
                      FIRST_SEGMENT_INDEX + len(segment_ids))
    if max_id < _MAX_LUT_ID:
        # Zero-filled table: ids never written read as OTHER_INDEX (0).
        lut = np.zeros(max_id + 1, dtype)
        lut[0] = VOID_INDEX
        lut[segment_ids] = codes
        # np.take is about twice as fast as lut[id_map] here.
        return np.take(lut, id_map)
    # Huge ids (only possible for in-memory int64 maps): binary search.
    order = np.argsort(segment_ids, kind='stable')
    sorted_ids = segment_ids[order]
    index = np.full(id_map.shape, OTHER_INDEX, dtype)
    if sorted_ids.size:
        pos = np.minimum(np.searchsorted(sorted_ids, id_map), len(order) - 1)
        found = sorted_ids[pos] == id_map
        index[found] = codes[order[pos[found]]]
    index[id_map == 0] = VOID_INDEX
    return index


def intersection_table(gt_index: np.ndarray, pred_index: np.ndarray,
                       num_gt: int, num_pred: int) -> np.ndarray:
    """Count the pixels of every (gt index, pred index) pair.

    Args:
        gt_index (np.ndarray): Dense gt indices (layout of
            :func:`index_segment_ids`), shape (H, W).
        pred_index (np.ndarray): Dense prediction indices, shape (H, W).
        num_gt (int): Number of annotated gt segments N_gt.
        num_pred (int): Number of annotated predicted segments N_pred.

    Returns:
        np.ndarray: Pixel counts, shape (N_gt + 2, N_pred + 2), int64; row
        and column ``FIRST_SEGMENT_INDEX + i`` is segment i, the first two
        are OTHER and VOID.
    """
    if gt_index.shape != pred_index.shape:
        raise ValueError(f'Ground truth map of shape {gt_index.shape} and '
                         f'prediction of shape {pred_index.shape} differ.')
    rows = num_gt + FIRST_SEGMENT_INDEX
    cols = num_pred + FIRST_SEGMENT_INDEX
    for name, index, size in (('gt', gt_index, rows), ('pred', pred_index,
                                                       cols)):
        if index.size and (index.max() >= size or
                           (index.dtype.kind == 'i' and index.min() < 0)):
            raise ValueError(f'{name} indices must lie in [0, {size}).')
    # The pair code gt * cols + pred in the narrowest dtype that holds it.
    pair = np.multiply(
        gt_index.ravel(),
        cols,
        dtype=index_dtype(rows * cols),
        casting='unsafe')
    np.add(pair, pred_index.ravel(), out=pair, casting='unsafe')
    return np.bincount(pair, minlength=rows * cols).reshape(rows, cols)


def run_intersection_table(gt_starts: np.ndarray, gt_index: np.ndarray,
                           pred_starts: np.ndarray, pred_index: np.ndarray,
                           num_pixels: int, num_gt: int,
                           num_pred: int) -> np.ndarray:
    """:func:`intersection_table` of two maps given as runs.

    Row-major runs of both maps are merged: between two consecutive run
    starts of either map both indices are constant, so each piece adds its
    length to one table cell. The work is proportional to the number of
    runs (~10^4 for a 1024x2048 panoptic map), not of pixels.

    Args:
        gt_starts (np.ndarray): Starts of the gt runs (row-major pixel
            positions), shape (R_gt,), strictly increasing from 0.
        gt_index (np.ndarray): Dense gt index of each run (layout of
            :func:`index_segment_ids`), shape (R_gt,).
        pred_starts (np.ndarray): Starts of the predicted runs, shape
            (R_pred,), strictly increasing from 0.
        pred_index (np.ndarray): Dense prediction index of each run, shape
            (R_pred,).
        num_pixels (int): H * W of both maps.
        num_gt (int): Number of annotated gt segments N_gt.
        num_pred (int): Number of annotated predicted segments N_pred.

    Returns:
        np.ndarray: Pixel counts, shape (N_gt + 2, N_pred + 2), int64, equal
        to :func:`intersection_table` of the dense maps.
    """
    rows = num_gt + FIRST_SEGMENT_INDEX
    cols = num_pred + FIRST_SEGMENT_INDEX
    for name, starts, index, size in (('gt', gt_starts, gt_index, rows),
                                      ('pred', pred_starts, pred_index,
                                       cols)):
        if len(starts) != len(index):
            raise ValueError(f'{len(starts)} {name} runs but {len(index)} '
                             'indices.')
        if num_pixels and (len(starts) == 0 or starts[0] != 0
                           or starts[-1] >= num_pixels):
            raise ValueError(f'{name} runs must start at 0 and lie in '
                             f'[0, {num_pixels}).')
        if index.size and (index.max() >= size or
                           (index.dtype.kind == 'i' and index.min() < 0)):
            raise ValueError(f'{name} indices must lie in [0, {size}).')
    starts = np.concatenate([gt_starts, pred_starts]).astype(np.int64)
    # Stable: at a position where both maps start a run, the gt start
    # comes first and gets an empty piece; the pred start then sees both.
    order = np.argsort(starts, kind='stable')
    from_gt = order < len(gt_starts)
    gt_run = np.cumsum(from_gt) - 1
    pred_run = np.cumsum(~from_gt) - 1
    np.maximum(pred_run, 0, out=pred_run)  # the first, empty, piece
    lengths = np.diff(starts[order], append=num_pixels)
    pair = gt_index[gt_run].astype(np.int64) * cols
    pair += pred_index[pred_run]
    # float64 weights count exactly up to 2**53 pixels.
    table = np.bincount(pair, weights=lengths, minlength=rows * cols)
    return table.astype(np.int64).reshape(rows, cols)


def pq_stat_from_table(table: np.ndarray, gt_segments: PanopticSegments,
                       pred_slots: np.ndarray, num_categories: int) -> PQStat:
    """PQ statistics of one image from its intersection table.

    The prediction must already be valid: every annotated predicted segment
    present in the map, no unannotated non-zero id, no unknown category
    (the callers check this and raise the reference's errors).

    Args:
        table (np.ndarray): Output of :func:`intersection_table`, shape
            (N_gt + 2, N_pred + 2).
        gt_segments (PanopticSegments): The N_gt gt segments.
        pred_slots (np.ndarray): Category slot of each predicted segment,
            shape (N_pred,).
        num_categories (int): Number K of evaluated categories.

    Returns:
        PQStat: Statistics with K + 1 slots.
    """
    first = FIRST_SEGMENT_INDEX
    num_slots = num_categories + 1
    gt_slots = gt_segments.slots
    gt_crowd = gt_segments.iscrowd
    pred_slots = np.asarray(pred_slots, dtype=np.int64)
    inter = table[first:, first:]  # (N_gt, N_pred)
    pred_areas = table[:, first:].sum(axis=0)  # counted from the map
    pred_on_void = table[VOID_INDEX, first:]

    candidate = ((gt_slots[:, None] == pred_slots[None, :])
                 & ~gt_crowd[:, None] & (inter > 0))
    union = (
        pred_areas[None, :] + gt_segments.areas[:, None] - inter -
        pred_on_void[None, :])
    iou = np.zeros(inter.shape, np.float64)
    # Where the annotated area is inconsistent the reference divides by a
    # zero or negative union too; keep its inf / negative values silently.
    with np.errstate(divide='ignore', invalid='ignore'):
        np.divide(inter, union, out=iou, where=candidate)
    matched = candidate & (iou > 0.5)
    match_gt, match_pred = np.nonzero(matched)
    gt_matched = matched.any(axis=1)
    pred_matched = matched.any(axis=0)

    stat = PQStat.zeros(num_categories)
    stat.tp += np.bincount(gt_slots[match_gt], minlength=num_slots)
    stat.iou += np.bincount(
        gt_slots[match_gt],
        weights=iou[match_gt, match_pred],
        minlength=num_slots)
    stat.fn += np.bincount(
        gt_slots[~gt_matched & ~gt_crowd], minlength=num_slots)

    # Crowd segment of each category: the last one in annotation order.
    crowd_of_slot = np.full(num_slots, -1, np.int64)
    crowd_rows = np.flatnonzero(gt_crowd)
    np.maximum.at(crowd_of_slot, gt_slots[crowd_rows], crowd_rows)
    pred_crowd_row = crowd_of_slot[pred_slots]
    has_crowd = np.flatnonzero(pred_crowd_row >= 0)
    pred_on_crowd = np.zeros(len(pred_slots), np.int64)
    pred_on_crowd[has_crowd] = inter[pred_crowd_row[has_crowd], has_crowd]
    with np.errstate(divide='ignore', invalid='ignore'):
        ignored = (pred_on_void + pred_on_crowd) / pred_areas > 0.5
    false_pos = ~pred_matched & ~ignored
    stat.fp += np.bincount(pred_slots[false_pos], minlength=num_slots)
    return stat


def pq_stat_single_image(gt_index: np.ndarray, gt_segments: PanopticSegments,
                         pred_index: np.ndarray, pred_slots: np.ndarray,
                         num_categories: int) -> PQStat:
    """PQ statistics of one image from dense index maps.

    Args:
        gt_index (np.ndarray): Dense gt indices, shape (H, W).
        gt_segments (PanopticSegments): The gt segments of ``gt_index``.
        pred_index (np.ndarray): Dense prediction indices, shape (H, W).
        pred_slots (np.ndarray): Category slot of each predicted segment,
            shape (N_pred,).
        num_categories (int): Number K of evaluated categories.

    Returns:
        PQStat: Statistics with K + 1 slots.
    """
    table = intersection_table(gt_index, pred_index, len(gt_segments),
                               len(pred_slots))
    return pq_stat_from_table(table, gt_segments, pred_slots, num_categories)


def pq_average(
    pq_stat: PQStat,
    category_ids: Sequence,
    thing_mask: Sequence[bool],
    isthing: Optional[bool] = None,
) -> Tuple[dict, Dict[object, dict]]:
    """Average PQ, SQ and RQ over categories (reference ``pq_average``).

    Categories with tp + fp + fn == 0 are left out of the average (not
    counted in ``n``) and get 0 in the per-class results. Where the
    reference divides by zero (``n == 0``: no category of the group
    appears), this returns 0.0 for pq, sq and rq and ``n = 0``.

    Args:
        pq_stat (PQStat): Accumulated statistics; slot i is
            ``category_ids[i]``.
        category_ids (Sequence): Category ids (keys of the per-class dict),
            length K.
        thing_mask (Sequence[bool]): Whether each category is a thing,
            length K.
        isthing (bool, optional): Average over things only (True), stuff
            only (False) or all categories (None).

    Returns:
        tuple[dict, dict]: ``{'pq', 'sq', 'rq', 'n'}`` and the per-class
        ``{category_id: {'pq', 'sq', 'rq'}}`` of the selected categories.
    """
    num = len(category_ids)
    if num != pq_stat.num_categories or len(thing_mask) != num:
        raise ValueError(f'{num} category ids and {len(thing_mask)} thing '
                         f'flags for statistics over '
                         f'{pq_stat.num_categories} categories.')
    thing_mask = np.asarray(thing_mask, dtype=bool)
    selected = np.ones(num, bool) if isthing is None else (thing_mask
                                                           == isthing)
    tp, fp, fn = pq_stat.tp[:num], pq_stat.fp[:num], pq_stat.fn[:num]
    iou = pq_stat.iou[:num]
    seen = (tp + fp + fn) > 0
    denominator = tp + 0.5 * fp + 0.5 * fn
    with np.errstate(divide='ignore', invalid='ignore'):
        pq_class = np.where(seen, iou / denominator, 0.0)
        sq_class = np.where(tp > 0, iou / tp, 0.0)
        rq_class = np.where(seen, tp / denominator, 0.0)
    averaged = selected & seen
    n = int(averaged.sum())
    if n:
        summary = {
            'pq': float(pq_class[averaged].sum() / n),
            'sq': float(sq_class[averaged].sum() / n),
            'rq': float(rq_class[averaged].sum() / n),
            'n': n
        }
    else:
        summary = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}
    per_class = {
        category_ids[i]: {
            'pq': float(pq_class[i]),
            'sq': float(sq_class[i]),
            'rq': float(rq_class[i])
        }
        for i in np.flatnonzero(selected)
    }
    return summary, per_class


def average_pq(pq_stat: PQStat, category_ids: Sequence,
               thing_mask: Sequence[bool]) -> dict:
    """All / Things / Stuff averages, as the reference ``average_pq``.

    Args:
        pq_stat (PQStat): Accumulated statistics.
        category_ids (Sequence): Category id of each slot, length K.
        thing_mask (Sequence[bool]): Whether each category is a thing.

    Returns:
        dict: ``All``, ``Things``, ``Stuff`` (each ``{'pq', 'sq', 'rq',
        'n'}``, see :func:`pq_average`) and ``per_class`` (keyed by
        category id).
    """
    results = {}
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        results[name], per_class = pq_average(pq_stat, category_ids,
                                              thing_mask, isthing)
        if name == 'All':
            results['per_class'] = per_class
    return results
