# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Context Error core (PSS Sec. 4.2, Eq. 4): contexts of hand-built label
maps, the symmetric KL against hand-computed values, CE against a loop, and
the nearest-neighbour retrieval against a brute-force sort."""
import math

import numpy as np
import pytest

from mmpanoptic_plus.evaluation.functional import (
    NEIGHBOUR_OFFSETS, class_integral_image, context_distributions,
    context_distributions_from_table, context_error, context_errors,
    nearest_neighbours, symmetric_kl)


def _naive_contexts(sem_seg, bbox, num_classes, ignore_index=255):
    """The definition, region by region with a histogram each."""
    height, width = sem_seg.shape
    x1, y1, x2, y2 = bbox
    w, h = x2 - x1, y2 - y1
    out = np.zeros((8, num_classes))
    row = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx == 0 and dy == 0:
                continue
            rx1, rx2 = max(x1 + dx * w, 0), min(x2 + dx * w, width)
            ry1, ry2 = max(y1 + dy * h, 0), min(y2 + dy * h, height)
            region = sem_seg[ry1:max(ry1, ry2), rx1:max(rx1, rx2)].ravel()
            region = region[region != ignore_index]
            if len(region):
                out[row] = np.bincount(region, minlength=num_classes) / len(
                    region)
            row += 1
    return out


def _label_map():
    """8 x 9 map of 3 classes: class 0 left, 1 right, a 2x3 block of class 2
    in the middle (rows 3-4, columns 3-5), two ignore pixels."""
    sem_seg = np.zeros((8, 9), np.uint8)
    sem_seg[:, 5:] = 1
    sem_seg[3:5, 3:6] = 2
    sem_seg[1, 3] = 255
    sem_seg[6, 6] = 255
    return sem_seg


def test_offsets_are_row_major():
    assert NEIGHBOUR_OFFSETS.tolist() == [[-1, -1], [0, -1], [1, -1],
                                          [-1, 0], [1, 0], [-1, 1], [0, 1],
                                          [1, 1]]


def test_context_of_an_instance_in_the_middle():
    sem_seg = _label_map()
    out = context_distributions(sem_seg, (3, 3, 6, 5), 3)
    assert out.shape == (8, 3)
    # top-left region rows 1-2, columns 0-2: all class 0
    np.testing.assert_allclose(out[0], [1, 0, 0])
    # top region rows 1-2, columns 3-5: (1, 3) is ignored, so of 5
    # labelled pixels, (1, 4), (2, 3), (2, 4) are 0 and the column-5 ones 1
    np.testing.assert_allclose(out[1], [3 / 5, 2 / 5, 0])
    # right region rows 3-4, columns 6-8: all class 1
    np.testing.assert_allclose(out[4], [0, 1, 0])
    # bottom-right region rows 5-6, columns 6-8: (6, 6) ignored, 5 of class 1
    np.testing.assert_allclose(out[7], [0, 1, 0])
    np.testing.assert_allclose(out, _naive_contexts(sem_seg, (3, 3, 6, 5), 3))


def test_context_at_the_border_is_clipped_or_empty():
    sem_seg = _label_map()
    # a 2x2 instance in the top-left corner: the regions above and to the
    # left are outside the image (zero rows)
    out = context_distributions(sem_seg, (0, 0, 2, 2), 3)
    for row in (0, 1, 2, 3, 5):
        np.testing.assert_array_equal(out[row], 0)
    # right region rows 0-1, columns 2-3: (1, 3) ignored -> 3 pixels of 0
    np.testing.assert_allclose(out[4], [1, 0, 0])
    np.testing.assert_allclose(out, _naive_contexts(sem_seg, (0, 0, 2, 2), 3))
    # a box touching the right edge: its right regions are clipped away
    out = context_distributions(sem_seg, (7, 6, 9, 8), 3)
    for row in (2, 4, 5, 6, 7):
        np.testing.assert_array_equal(out[row], 0)
    np.testing.assert_allclose(out, _naive_contexts(sem_seg, (7, 6, 9, 8), 3))


def test_all_ignore_region_gives_a_zero_row():
    sem_seg = np.full((6, 6), 255, np.uint8)
    sem_seg[2:4, 2:4] = 1
    out = context_distributions(sem_seg, (2, 2, 4, 4), 2)
    np.testing.assert_array_equal(out, 0)


def test_batch_form_matches_naive_on_random_maps():
    rng = np.random.default_rng(0)
    sem_seg = rng.integers(0, 4, (23, 31)).astype(np.uint8)
    sem_seg[rng.random(sem_seg.shape) < 0.2] = 255
    boxes = []
    for _ in range(30):
        x1, y1 = rng.integers(0, 30), rng.integers(0, 22)
        boxes.append((x1, y1, rng.integers(x1 + 1, 32),
                      rng.integers(y1 + 1, 24)))
    table = class_integral_image(sem_seg, 4)
    out = context_distributions_from_table(table, np.array(boxes))
    for box, got in zip(boxes, out):
        np.testing.assert_allclose(got, _naive_contexts(sem_seg, box, 4))


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match='outside'):
        class_integral_image(np.array([[0, 3]]), 3)


def test_symmetric_kl_with_zeros_on_both_sides():
    p = np.zeros((8, 3))
    q = np.zeros((8, 3))
    p[0] = [0.5, 0.5, 0.0]
    q[0] = [0.25, 0.0, 0.75]
    # D(p||q) = .5 log(.5/.25) + .5 log(.5/.1); D(q||p) = .25 log(.25/.5)
    # + .75 log(.75/.1)
    expected = (0.5 * math.log(2) + 0.5 * math.log(5) +
                0.25 * math.log(0.5) + 0.75 * math.log(7.5))
    assert symmetric_kl(p, q) == pytest.approx(expected)
    # region 1: p labelled, q empty (a zero row): D(p||q) = log(1/0.1)
    p[1] = [1, 0, 0]
    assert symmetric_kl(p, q) == pytest.approx(expected + math.log(10))
    assert symmetric_kl(q, p) == pytest.approx(symmetric_kl(p, q))
    assert symmetric_kl(p, p) == 0
    # zero_prob is the stand-in of a zero reference probability
    assert symmetric_kl(p, q, zero_prob=0.5) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(1) + 0.25 * math.log(0.5) +
        0.75 * math.log(1.5) + math.log(2))


def test_context_error_matches_a_loop():
    rng = np.random.default_rng(1)

    def random_context():
        raw = rng.random((8, 5)) * (rng.random((8, 5)) < 0.6)
        return raw / np.maximum(raw.sum(1, keepdims=True), 1e-12)

    query = random_context()
    retrievals = np.stack([random_context() for _ in range(6)])
    naive = 0.0
    for retrieval in retrievals:
        for j in range(8):
            for a, b in ((query[j], retrieval[j]), (retrieval[j], query[j])):
                for c in range(5):
                    if a[c] > 0:
                        naive += a[c] * math.log(
                            a[c] / (b[c] if b[c] > 0 else 0.1))
    naive /= 8 * len(retrievals)
    assert context_error(query, retrievals) == pytest.approx(naive)
    # the batch form, with padding left out of the mean
    batch = context_errors(
        np.stack([query, query]),
        np.stack([retrievals, retrievals]),
        valid=np.array([[True] * 6, [True] * 3 + [False] * 3]))
    assert batch[0] == pytest.approx(naive)
    assert batch[1] == pytest.approx(context_error(query, retrievals[:3]))
    assert np.isnan(
        context_errors(query[None], retrievals[None, :1],
                       valid=np.zeros((1, 1), bool))[0])


def test_nearest_neighbours_match_a_sort():
    rng = np.random.default_rng(2)
    queries = rng.normal(size=(7, 4))
    database = rng.normal(size=(12, 4))
    for similarity in ('cosine', 'euclidean'):
        indices, scores = nearest_neighbours(
            queries, database, 5, similarity=similarity, chunk_size=3)
        for q, row in zip(queries, indices):
            if similarity == 'cosine':
                values = database @ q / (
                    np.linalg.norm(database, axis=1) * np.linalg.norm(q))
            else:
                values = -((database - q)**2).sum(1)
            assert row.tolist() == np.argsort(-values)[:5].tolist()
    # self-exclusion and fewer candidates than k: -1 padding
    indices, scores = nearest_neighbours(
        database[:3], database[:3], 5, exclude=np.arange(3))
    assert indices.shape == (3, 3)
    assert (indices[:, -1] == -1).all() and np.isneginf(scores[:, -1]).all()
    assert all(i not in row[:2] for i, row in enumerate(indices))
    # ties go to the lower index
    indices, _ = nearest_neighbours(
        np.ones((1, 2)), np.ones((4, 2)), 2, similarity='cosine')
    assert indices.tolist() == [[0, 1]]
