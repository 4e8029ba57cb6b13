# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Greedy nearest-neighbour merging of segments into instances, PSS Eq. 3
(Sec. 3.2) and its seeded variant (Sec. 3.4)."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def merge_segments(sums: Tensor,
                   labels: Tensor,
                   mergeable: Tensor,
                   threshold: float,
                   is_seed: Tensor = None,
                   seeded: bool = False,
                   neighbour_same_class: bool = False
                   ) -> Tuple[Tensor, Tensor]:
    """Merge the segments of one image greedily (PSS Eq. 3).

    Prototypes are ``mu = sum v / ||sum v||``. At each step, among the pairs
    ``(m, n)`` that may merge, the most similar one that satisfies::

        (N(mu_m) = n  or  N(mu_n) = m)  and  mu_m^T mu_n >= T_P      (Eq. 3)

    is merged, its prototype recomputed from the summed embeddings, and the
    similarities and nearest neighbours ``N`` updated; merging stops when
    no pair satisfies it. ``N(mu)`` is the most similar other live segment
    (of any class, as Eq. 3 writes it, or of the same class with
    ``neighbour_same_class``). Pairs may merge when both are ``mergeable``
    (thing segments: stuff segments become one per class later anyway) and
    of the same class (Sec. 3.4); with ``seeded`` (Sec. 3.4) only a seed
    with a non-seed segment, the result being a seed segment.

    Each step is one (L, L) row maximum (the nearest neighbours), O(L)
    checks of the L pairs ``(m, N(mu_m))`` and an O(L C) update of the
    merged row; the loop over merge steps is the greedy algorithm itself
    (every merge changes the next choice).

    Args:
        sums (Tensor): (L, C) summed unit-length embeddings of each segment
            (a zero row is an empty segment, never merged).
        labels (Tensor): (L, ) int64 class of each segment (-1: none).
        mergeable (Tensor): (L, ) bool.
        threshold (float): ``T_P``.
        is_seed (Tensor, optional): (L, ) bool seed segments; needed when
            ``seeded``.
        seeded (bool): Seeded merging. Defaults to False.
        neighbour_same_class (bool): Take ``N`` among same-class segments
            only. Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: ``owner`` (L, ) int64, the segment each one
        was merged into (itself if it was kept), and ``owner_is_seed`` (L, )
        bool, whether that owner is a seed segment after merging.
    """
    num = sums.size(0)
    device = sums.device
    if is_seed is None:
        if seeded:
            raise ValueError('seeded merging needs is_seed')
        is_seed = torch.zeros(num, dtype=torch.bool, device=device)
    is_seed = is_seed.clone().bool()
    owner = torch.arange(num, device=device)
    if num == 0:
        return owner, is_seed
    sums = sums.clone()
    alive = (labels >= 0) & (sums.norm(dim=1) > 0)
    protos = F.normalize(sums, dim=1)
    neg_inf = float('-inf')
    sim = protos @ protos.t()
    dead_pair = ~(alive[:, None] & alive[None, :]) | torch.eye(
        num, dtype=torch.bool, device=device)
    sim = sim.masked_fill(dead_pair, neg_inf)
    same_class = labels[:, None] == labels[None, :]
    index = torch.arange(num, device=device)
    while True:
        scope = sim.masked_fill(~same_class, neg_inf) \
            if neighbour_same_class else sim
        # Eq. 3's pairs are (m, N(mu_m)) for every m: n = N(mu_m) or
        # m = N(mu_n) is the pair seen from one of its two ends
        best, nearest = scope.max(dim=1)
        pair_sim = sim[index, nearest]
        ok = (best > neg_inf) & (labels == labels[nearest]) & mergeable & \
            mergeable[nearest] & (pair_sim >= threshold)
        if seeded:
            ok &= is_seed ^ is_seed[nearest]
        if not bool(ok.any()):
            break
        first = int(pair_sim.masked_fill(~ok, neg_inf).argmax())
        second = int(nearest[first])
        # the seed segment absorbs the non-seed one; else the lower index
        if seeded and bool(is_seed[second]) or (not seeded
                                                and second < first):
            first, second = second, first
        keep, drop = first, second
        sums[keep] += sums[drop]
        owner[owner == drop] = keep
        is_seed[keep] |= bool(is_seed[drop])
        alive[drop] = False
        proto = F.normalize(sums[keep], dim=0)
        row = protos.new_full((num, ), neg_inf)
        row[alive] = protos[alive] @ proto
        protos[keep] = proto
        row[keep] = neg_inf
        sim[keep], sim[:, keep] = row, row
        sim[drop], sim[:, drop] = neg_inf, neg_inf
    return owner, is_seed[owner]
