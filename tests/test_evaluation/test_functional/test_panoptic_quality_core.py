# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The per-image core on hand-computed cases."""
import numpy as np
import pytest

from mmpanoptic_plus.evaluation.functional import (
    FIRST_SEGMENT_INDEX, OTHER_INDEX, VOID_INDEX, PanopticSegments, PQStat,
    average_pq, index_dtype, index_segment_ids, intersection_table, pq_average,
    pq_stat_single_image, run_intersection_table)
from mmpanoptic_plus.structures import id_map_to_runs

# Categories: slot 0 = person (thing), slot 1 = road (stuff).
PERSON, ROAD = 0, 1
# Ground truth, 4x4, ids: 1 = person A, 3 = person B, 2 = road R, 0 = VOID.
GT = np.array([[1, 1, 2, 2],
               [1, 1, 2, 2],
               [0, 0, 2, 2],
               [3, 3, 2, 2]], np.uint32)  # yapf: disable
# Prediction: 5 = person P, 6 = road Q, 7 = person S.
PRED = np.array([[5, 5, 6, 6],
                 [5, 5, 6, 6],
                 [5, 5, 6, 6],
                 [6, 7, 6, 6]], np.uint32)  # yapf: disable


def gt_segments(b_is_crowd: bool) -> PanopticSegments:
    return PanopticSegments(
        ids=np.array([1, 2, 3]),
        slots=np.array([PERSON, ROAD, PERSON]),
        iscrowd=np.array([False, False, b_is_crowd]),
        areas=np.array([4, 8, 2]))


def run_core(b_is_crowd: bool) -> PQStat:
    gt = gt_segments(b_is_crowd)
    pred_ids = np.array([5, 6, 7])
    return pq_stat_single_image(
        index_segment_ids(GT, gt.ids),
        gt,
        index_segment_ids(PRED, pred_ids),
        np.array([PERSON, ROAD, PERSON]),
        num_categories=2)


def test_hand_computed_case():
    # (A, P): inter 4, union = |P| 6 + |A| 4 - 4 - |P on VOID| 2 = 4,
    #         IoU 1 -> TP (person, IoU 1).
    # (R, Q): inter 8, union = 9 + 8 - 8 - 0 = 9, IoU 8/9 -> TP (road).
    # (B, S): inter 1, union = 1 + 2 - 1 = 2, IoU exactly 0.5, not > 0.5:
    #         B is a FN, S (nothing on VOID or crowd) a FP.
    # person: PQ = 1 / (1 + 0.5 + 0.5) = 0.5, SQ = 1, RQ = 0.5
    # road:   PQ = SQ = 8/9, RQ = 1
    # All: PQ = (0.5 + 8/9) / 2 = 25/36, SQ = 17/18, RQ = 0.75
    stat = run_core(b_is_crowd=False)
    np.testing.assert_array_equal(stat.tp, [1, 1, 0])
    np.testing.assert_array_equal(stat.fp, [1, 0, 0])
    np.testing.assert_array_equal(stat.fn, [1, 0, 0])
    np.testing.assert_allclose(stat.iou, [1.0, 8 / 9, 0.0], rtol=0, atol=1e-15)
    results = average_pq(stat, ['person', 'road'], [True, False])
    assert results['All'] == pytest.approx(
        dict(pq=25 / 36, sq=17 / 18, rq=0.75, n=2), abs=1e-12)
    assert results['Things'] == pytest.approx(
        dict(pq=0.5, sq=1.0, rq=0.5, n=1), abs=1e-12)
    assert results['Stuff'] == pytest.approx(
        dict(pq=8 / 9, sq=8 / 9, rq=1.0, n=1), abs=1e-12)
    assert results['per_class']['road'] == pytest.approx(
        dict(pq=8 / 9, sq=8 / 9, rq=1.0), abs=1e-12)


def test_hand_computed_case_with_crowd():
    # B is now a crowd of persons: no FN for it, and S lies entirely on the
    # person crowd (1/1 > 0.5): ignored. person: TP 1, IoU 1 -> PQ 1.
    # All: PQ = (1 + 8/9) / 2 = 17/18.
    stat = run_core(b_is_crowd=True)
    np.testing.assert_array_equal(stat.tp, [1, 1, 0])
    np.testing.assert_array_equal(stat.fp, [0, 0, 0])
    np.testing.assert_array_equal(stat.fn, [0, 0, 0])
    results = average_pq(stat, ['person', 'road'], [True, False])
    assert results['All']['pq'] == pytest.approx(17 / 18, abs=1e-12)


def test_index_segment_ids_layout_and_both_paths():
    ids = np.array([40, 7, 123456])
    id_map = np.array([[0, 7, 40], [5, 123456, 7]], np.uint32)
    expected = np.array([[VOID_INDEX, 3, 2], [OTHER_INDEX, 4, 3]])
    np.testing.assert_array_equal(index_segment_ids(id_map, ids), expected)
    # Ids too large for a lookup table go through the binary search.
    huge = np.array([1 << 40, 7])
    huge_map = np.array([[0, 1 << 40], [7, 3]], np.int64)
    np.testing.assert_array_equal(
        index_segment_ids(huge_map, huge),
        [[VOID_INDEX, FIRST_SEGMENT_INDEX], [3, OTHER_INDEX]])
    with pytest.raises(ValueError, match='negative'):
        index_segment_ids(np.array([[-1]]), ids)


def test_intersection_table_counts_pairs():
    gt_index = np.array([[2, 2, 1], [0, 3, 3]])
    pred_index = np.array([[2, 3, 3], [1, 3, 2]])
    table = intersection_table(gt_index, pred_index, num_gt=2, num_pred=2)
    naive = np.zeros((4, 4), np.int64)
    for g, p in zip(gt_index.ravel(), pred_index.ravel()):
        naive[g, p] += 1
    np.testing.assert_array_equal(table, naive)
    with pytest.raises(ValueError, match='differ'):
        intersection_table(gt_index, pred_index[:, :2], 2, 2)


def test_pq_average_empty_groups_and_skipped_categories():
    stat = PQStat.zeros(3)
    stat.tp[1], stat.iou[1] = 2, 1.5  # only the stuff category 'b' is seen
    summary, per_class = pq_average(
        stat, ['a', 'b', 'c'], [True, False, False], isthing=True)
    # No thing category appears: 0 instead of the reference's division by 0
    assert summary == dict(pq=0.0, sq=0.0, rq=0.0, n=0)
    assert per_class == {'a': dict(pq=0.0, sq=0.0, rq=0.0)}
    summary, per_class = pq_average(stat, ['a', 'b', 'c'],
                                    [True, False, False])
    # 'a' and 'c' have tp + fp + fn == 0: not counted in n, 0 per class.
    assert summary == pytest.approx(dict(pq=0.75, sq=0.75, rq=1.0, n=1))
    assert per_class['c'] == dict(pq=0.0, sq=0.0, rq=0.0)
    with pytest.raises(ValueError):
        pq_average(stat, ['a', 'b'], [True, False])


def test_pqstat_addition_and_unknown_slot():
    a, b = PQStat.zeros(2), PQStat.zeros(2)
    a.tp[:] = [1, 2, 3]
    b.fn[:] = [4, 5, 6]
    total = a + b
    np.testing.assert_array_equal(total.tp, [1, 2, 3])
    np.testing.assert_array_equal(total.fn, [4, 5, 6])
    np.testing.assert_array_equal(a.fn, [0, 0, 0])  # operands untouched
    # The extra slot (categories not evaluated) never enters the average.
    results = average_pq(total, ['x', 'y'], [True, False])
    assert results['All']['n'] == 2
    with pytest.raises(ValueError):
        a += PQStat.zeros(3)


def test_image_without_segments_or_things():
    gt = PanopticSegments(
        ids=np.array([5]),
        slots=np.array([1]),
        iscrowd=np.array([False]),
        areas=np.array([6]))
    id_map = np.array([[5, 5, 5], [5, 5, 5]])
    empty_pred = np.zeros((2, 3), np.int64)  # all VOID, no segment
    stat = pq_stat_single_image(
        index_segment_ids(id_map, gt.ids), gt,
        index_segment_ids(empty_pred, np.zeros(0)), np.zeros(0, np.int64), 2)
    np.testing.assert_array_equal(stat.fn, [0, 1, 0])
    assert stat.tp.sum() == 0 and stat.fp.sum() == 0
    results = average_pq(stat, [0, 1], [True, False])
    assert results['Things'] == dict(pq=0.0, sq=0.0, rq=0.0, n=0)
    assert results['Stuff']['n'] == 1


def test_narrow_index_types_and_wide_tables():
    assert index_dtype(256) == np.uint8
    assert index_dtype(257) == np.uint16
    assert index_dtype(1 << 16) == np.uint16
    assert index_dtype((1 << 16) + 1) == np.int64
    rng = np.random.default_rng(0)
    ids = np.arange(1, 301)
    gt_index = index_segment_ids(rng.integers(0, 301, (30, 40)), ids)
    pred_index = index_segment_ids(rng.integers(0, 301, (30, 40)), ids)
    assert gt_index.dtype == np.uint16
    # 302 x 302 pair codes exceed uint16: int64 codes.
    table = intersection_table(gt_index, pred_index, 300, 300)
    naive = np.zeros((302, 302), np.int64)
    np.add.at(naive, (gt_index.ravel(), pred_index.ravel()), 1)
    np.testing.assert_array_equal(table, naive)
    with pytest.raises(ValueError, match='must lie in'):
        intersection_table(gt_index, pred_index, 100, 300)


def naive_table(gt_index, pred_index, rows, cols):
    table = np.zeros((rows, cols), np.int64)
    for g, p in zip(gt_index.ravel().tolist(), pred_index.ravel().tolist()):
        table[g, p] += 1
    return table


def test_run_intersection_table_hand_case():
    # Runs of GT / PRED above: gt ids -> indices 1->2 (A), 2->3 (R), 3->4
    # (B), 0->VOID; pred 5->2 (P), 6->3 (Q), 7->4 (S).
    gt_index = index_segment_ids(GT, np.array([1, 2, 3]))
    pred_index = index_segment_ids(PRED, np.array([5, 6, 7]))
    gt_runs, pred_runs = id_map_to_runs(GT), id_map_to_runs(PRED)
    table = run_intersection_table(
        gt_runs.starts, index_segment_ids(gt_runs.ids, np.array([1, 2, 3])),
        pred_runs.starts,
        index_segment_ids(pred_runs.ids, np.array([5, 6, 7])), 16, 3, 3)
    np.testing.assert_array_equal(table, naive_table(gt_index, pred_index, 5,
                                                     5))
    assert table[2, 2] == 4 and table[VOID_INDEX, 2] == 2
    assert table[4, 3] == 1 and table[4, 4] == 1 and table.sum() == 16


@pytest.mark.parametrize('num_segments', [3, 300])
@pytest.mark.parametrize('shape', [(1, 1), (1, 9), (7, 1), (23, 41)])
def test_run_intersection_table_equals_dense(num_segments, shape):
    # Random blocky maps (runs of any length, shared and separate run
    # starts), VOID and ids outside the annotation included.
    rng = np.random.default_rng(num_segments * 7 + shape[1])
    height, width = shape
    maps = []
    for _ in range(2):
        coarse = rng.integers(0, num_segments + 3, (height, (width + 2) // 3))
        id_map = np.repeat(coarse, 3, axis=1)[:, :width]
        id_map[rng.random(shape) < 0.2] = rng.integers(0, num_segments + 3)
        maps.append(id_map)
    gt_ids = np.arange(1, num_segments + 1)
    pred_ids = rng.permutation(np.arange(1, num_segments + 2))[:num_segments]
    gt_index = index_segment_ids(maps[0], gt_ids)
    pred_index = index_segment_ids(maps[1], pred_ids)
    gt_runs, pred_runs = id_map_to_runs(maps[0]), id_map_to_runs(maps[1])
    table = run_intersection_table(
        gt_runs.starts, index_segment_ids(gt_runs.ids, gt_ids),
        pred_runs.starts, index_segment_ids(pred_runs.ids, pred_ids),
        height * width, num_segments, num_segments)
    rows = cols = num_segments + FIRST_SEGMENT_INDEX
    assert table.dtype == np.int64
    np.testing.assert_array_equal(
        table, naive_table(gt_index, pred_index, rows, cols))
    np.testing.assert_array_equal(
        table, intersection_table(gt_index, pred_index, num_segments,
                                  num_segments))
    with pytest.raises(ValueError, match='must start at 0'):
        run_intersection_table(gt_runs.starts[1:] if len(gt_runs.starts) > 1
                               else gt_runs.starts + 1,
                               np.zeros(max(len(gt_runs.starts) - 1, 1),
                                        np.uint8), pred_runs.starts,
                               index_segment_ids(pred_runs.ids, pred_ids),
                               height * width, num_segments, num_segments)
