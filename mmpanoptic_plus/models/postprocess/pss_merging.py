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

    Each step checks the L pairs ``(m, N(mu_m))`` (O(L)), recomputes the
    merged prototype's similarities (O(L C)) and the nearest neighbours of
    the rows that pointed at the merged segments (O(L) each), instead of an
    (L, L) maximum; the loop over merge steps is the greedy algorithm itself
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
    # the matrix N(.) is taken over: all live pairs, or same-class ones
    scope = sim.masked_fill(~same_class, neg_inf) \
        if neighbour_same_class else sim
    # Eq. 3's pairs are (m, N(mu_m)) for every m: n = N(mu_m) or
    # m = N(mu_n) is the pair seen from one of its two ends; best[m] =
    # mu_m^T mu_N(m) is kept up to date row by row after each merge
    best, nearest = scope.max(dim=1)
    while True:
        ok = (best > neg_inf) & (labels == labels[nearest]) & mergeable & \
            mergeable[nearest] & (best >= threshold)
        if seeded:
            ok &= is_seed ^ is_seed[nearest]
        if not bool(ok.any()):
            break
        first = int(best.masked_fill(~ok, neg_inf).argmax())
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
        if neighbour_same_class:
            row = row.masked_fill(~same_class[keep], neg_inf)
        scope[keep], scope[:, keep] = row, row
        scope[drop], scope[:, drop] = neg_inf, neg_inf
        # rows whose neighbour changed: recompute; others may now prefer
        # the merged segment
        stale = (nearest == keep) | (nearest == drop)
        stale[keep] = True
        stale[drop] = True
        closer = ~stale & (row > best)
        best = torch.where(closer, row, best)
        nearest = torch.where(closer, torch.full_like(nearest, keep),
                              nearest)
        if bool(stale.any()):
            rows = stale.nonzero()[:, 0]
            best[rows], nearest[rows] = scope[rows].max(dim=1)
    return owner, is_seed[owner]
