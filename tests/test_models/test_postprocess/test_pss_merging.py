# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Greedy merging of PSS (Eq. 3 and the seeded variant of Sec. 3.4) on
hand-built prototypes."""
import math

import pytest

import torch

from mmpanoptic_plus.models.postprocess import merge_segments


def unit(angle_deg):
    """Unit vector in the plane at an angle (cosine similarity of two is
    the cosine of their angle difference)."""
    angle = math.radians(angle_deg)
    return torch.tensor([math.cos(angle), math.sin(angle), 0.0])


def sums_of(*angles, weights=None):
    weights = weights or [1.0] * len(angles)
    return torch.stack([unit(a) * w for a, w in zip(angles, weights)])


def test_greedy_merges_closest_pair_first_and_updates_prototypes():
    # a(0), b(10), c(30): a-b merge first (cos 10 deg); the merged prototype
    # (5 deg, equal weights) is 25 deg from c: cos 25 = 0.906 >= 0.9 merges
    # c too; with T_P = 0.95 c stays apart (cos 20 deg between b and c
    # alone would be 0.94)
    sums = sums_of(0, 10, 30)
    labels = torch.tensor([0, 0, 0])
    mergeable = torch.ones(3, dtype=torch.bool)
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.9)
    assert owner.tolist() == [0, 0, 0]
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.95)
    assert owner.tolist() == [0, 0, 2]


def test_prototype_update_uses_summed_embeddings():
    # a heavy segment (weight 10) at 0 deg and a light one b at 12 deg merge
    # first (cos 12 deg); their summed prototype is at 1.1 deg, 28.9 deg
    # from c (30 deg): cos 0.875 < T_P = 0.9 keeps c apart, whereas the
    # unweighted mean of the two prototypes (6 deg, cos 24 deg = 0.914)
    # would have merged it
    sums = sums_of(0, 12, 30, weights=[10.0, 1.0, 1.0])
    labels = torch.zeros(3, dtype=torch.long)
    owner, _ = merge_segments(sums, labels, torch.ones(3, dtype=torch.bool),
                              threshold=0.9)
    assert owner.tolist() == [0, 0, 2]
    equal = sums_of(0, 12, 30)
    owner, _ = merge_segments(equal, labels, torch.ones(3, dtype=torch.bool),
                              threshold=0.9)
    assert owner.tolist() == [0, 0, 0]


def test_nearest_neighbour_rule():
    # classes: a, b class 0; c class 1. N(a) = c (2 deg), N(c) = a, N(b) = c
    # (3 deg from c, 5 from a): no same-class pair has a nearest-neighbour
    # link, so nothing merges although cos(a, b) = cos 5 deg >= T_P
    sums = sums_of(0, 5, 2)
    labels = torch.tensor([0, 0, 1])
    mergeable = torch.ones(3, dtype=torch.bool)
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.9)
    assert owner.tolist() == [0, 1, 2]
    # N taken within the class instead: a and b are mutual neighbours
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.9,
                              neighbour_same_class=True)
    assert owner.tolist() == [0, 0, 2]


def test_threshold_and_class_and_mergeable():
    sums = sums_of(0, 40, 80, 81)
    labels = torch.tensor([0, 0, 1, 2])
    mergeable = torch.tensor([True, True, True, True])
    # cos 40 = 0.77 < 0.8: a and b stay; c and d differ in class
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.8)
    assert owner.tolist() == [0, 1, 2, 3]
    owner, _ = merge_segments(sums, labels, mergeable, threshold=0.7)
    assert owner.tolist() == [0, 0, 2, 3]
    # a non-mergeable (stuff) segment never merges
    owner, _ = merge_segments(sums, labels,
                              torch.tensor([True, False, True, True]), 0.7)
    assert owner.tolist() == [0, 1, 2, 3]


def test_seeded_merging_joins_one_seed_with_non_seeds():
    # two seeds s1 (0 deg), s2 (60 deg) and non-seeds n1 (5), n2 (55), n3
    # (28): n1 -> s1, n2 -> s2; n3 is then nearest to {s1, n1} (prototype
    # about 2.5 deg, 25.5 deg away) and joins it. Seeds never merge with
    # each other, non-seeds never with each other (n1-n3 would).
    sums = sums_of(0, 60, 5, 55, 28)
    labels = torch.zeros(5, dtype=torch.long)
    is_seed = torch.tensor([True, True, False, False, False])
    owner, owner_seed = merge_segments(
        sums, labels, torch.ones(5, dtype=torch.bool), threshold=0.5,
        is_seed=is_seed, seeded=True)
    assert owner.tolist() == [0, 1, 0, 1, 0]
    assert owner_seed.all()
    # without seeds everything above T_P merges into one
    owner, owner_seed = merge_segments(
        sums, labels, torch.ones(5, dtype=torch.bool), threshold=0.5)
    assert owner.unique().numel() == 1
    assert not owner_seed.any()


def test_seeded_merging_without_seeds_merges_nothing():
    sums = sums_of(0, 1, 2)
    owner, owner_seed = merge_segments(
        sums, torch.zeros(3, dtype=torch.long),
        torch.ones(3, dtype=torch.bool), 0.5,
        is_seed=torch.zeros(3, dtype=torch.bool), seeded=True)
    assert owner.tolist() == [0, 1, 2] and not owner_seed.any()


def test_empty_and_invalid_segments_are_left_alone():
    sums = torch.stack([unit(0), torch.zeros(3), unit(1), unit(2)])
    labels = torch.tensor([0, 0, -1, 0])
    owner, _ = merge_segments(sums, labels, labels >= 0, 0.5)
    assert owner.tolist() == [0, 1, 2, 0]


def naive_merge(sums, labels, mergeable, threshold, is_seed, seeded,
                same_class_neighbour):
    """Greedy Eq. 3 with everything recomputed by loops at every step."""
    sums = [s.clone() for s in sums]
    seed = [bool(s) for s in is_seed]
    alive = [int(l) >= 0 and float(s.norm()) > 0
             for l, s in zip(labels, sums)]
    owner = list(range(len(sums)))
    while True:
        protos = [s / s.norm() if a else None for s, a in zip(sums, alive)]
        best_pair, best_sim = None, None
        for m in range(len(sums)):
            if not alive[m]:
                continue
            neighbour, neighbour_sim = None, None
            for n in range(len(sums)):
                if n == m or not alive[n]:
                    continue
                if same_class_neighbour and labels[n] != labels[m]:
                    continue
                value = float(protos[m] @ protos[n])
                if neighbour_sim is None or value > neighbour_sim:
                    neighbour, neighbour_sim = n, value
            if neighbour is None:
                continue
            n = neighbour
            if labels[n] != labels[m] or not (mergeable[m] and mergeable[n]):
                continue
            if neighbour_sim < threshold:
                continue
            if seeded and seed[m] == seed[n]:
                continue
            if best_sim is None or neighbour_sim > best_sim:
                best_pair, best_sim = (m, n), neighbour_sim
        if best_pair is None:
            break
        m, n = best_pair
        if seeded:
            keep, drop = (m, n) if seed[m] else (n, m)
        else:
            keep, drop = min(m, n), max(m, n)
        sums[keep] = sums[keep] + sums[drop]
        seed[keep] = seed[keep] or seed[drop]
        alive[drop] = False
        owner = [keep if o == drop else o for o in owner]
    return owner, [seed[o] for o in owner]


@pytest.mark.parametrize('seeded,same_class', [(False, False), (True, False),
                                               (False, True), (True, True)])
def test_merging_equals_naive_greedy(seeded, same_class):
    torch.manual_seed(3)
    num = 40
    base = torch.nn.functional.normalize(torch.randn(6, 5), dim=1)
    direction = torch.randint(0, 6, (num, ))
    direction[3:] = torch.arange(num - 3) % 6
    sums = (base[direction] + 0.2 * torch.randn(num, 5)) * (
        torch.rand(num, 1) * 5)
    sums = sums.double()
    # mostly one class per direction, some noise
    labels = torch.where(torch.rand(num) < 0.8, direction % 3,
                         torch.randint(0, 3, (num, )))
    labels[:3] = -1
    mergeable = labels < 2
    is_seed = torch.rand(num) < 0.3
    owner, owner_seed = merge_segments(sums, labels, mergeable, 0.6,
                                       is_seed=is_seed, seeded=seeded,
                                       neighbour_same_class=same_class)
    ref_owner, ref_seed = naive_merge(sums, labels.tolist(),
                                      mergeable.tolist(), 0.6, is_seed,
                                      seeded, same_class)
    assert owner.tolist() == ref_owner
    assert owner_seed.tolist() == ref_seed
    assert owner.unique().numel() <= num - 8  # merges happened
