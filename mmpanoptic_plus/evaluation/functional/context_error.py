# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Context Error (PSS, "Contextual Image Parsing via Panoptic Segment
Sorting", Sec. 4.2, Eq. 4, Fig. 3).

The context of an instance is the semantic class distribution in the 8
regions around its box that have the box's size; two instances are in a
similar context when these distributions agree region by region
(symmetric KL divergence). The Context Error of a query is the mean
divergence to its K retrievals, per region:

    CE = 1 / (8K) sum_{j=1..8} sum_{i=1..K}
         D(P_Bj(q) || P_Bj(r_i)) + D(P_Bj(r_i) || P_Bj(q))

with a zero reference probability replaced by 0.1 (the paper's rule).
"""
from typing import Optional, Sequence

import numpy as np

#: (dx, dy) of the 8 neighbour regions, row-major (dy first), centre left
#: out: the rows of :func:`context_distributions`.
NEIGHBOUR_OFFSETS = np.array([(dx, dy) for dy in (-1, 0, 1)
                              for dx in (-1, 0, 1) if (dx, dy) != (0, 0)],
                             dtype=np.int64)


def class_integral_image(sem_seg: np.ndarray,
                         num_classes: int,
                         ignore_index: int = 255) -> np.ndarray:
    """Per-class summed-area table of a semantic map.

    ``table[y, x, c]`` counts the pixels of class ``c`` in ``sem_seg[:y,
    :x]``, so any box's class histogram is four lookups (one table for all
    the boxes of an image instead of a histogram per region).

    Args:
        sem_seg (np.ndarray): (H, W) integer labels in ``[0, C)`` or
            ``ignore_index`` (left out).
        num_classes (int): C.
        ignore_index (int): Label of unlabelled pixels. Defaults to 255.

    Returns:
        np.ndarray: (H + 1, W + 1, C) int32 (int64 above 2 ** 31 pixels).

    Raises:
        ValueError: ``sem_seg`` is not 2-D or holds a label outside ``[0,
            C)`` that is not ``ignore_index``.
    """
    sem_seg = np.asarray(sem_seg)
    if sem_seg.ndim != 2:
        raise ValueError('sem_seg must be an (H, W) map, got shape '
                         f'{sem_seg.shape}')
    labels = sem_seg.astype(np.int64, copy=False)
    labelled = labels != ignore_index
    bad = labelled & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(
            f'sem_seg holds labels {np.unique(labels[bad]).tolist()} outside '
            f'[0, {num_classes}) that are not ignore_index={ignore_index}')
    height, width = labels.shape
    dtype = np.int32 if height * width < 2**31 else np.int64
    table = np.zeros((height + 1, width + 1, num_classes), dtype)
    table[1:, 1:] = labels[..., None] == np.arange(num_classes)
    np.cumsum(table, axis=0, out=table)
    np.cumsum(table, axis=1, out=table)
    return table


def neighbour_regions(bboxes: np.ndarray, height: int,
                      width: int) -> np.ndarray:
    """The 8 neighbour regions of each box, clipped to the image.

    For a box ``(x1, y1, x2, y2)`` (x2, y2 exclusive) of size ``w = x2 -
    x1``, ``h = y2 - y1`` and each ``(dx, dy)`` of
    :data:`NEIGHBOUR_OFFSETS`: ``[x1 + dx w, x2 + dx w) x [y1 + dy h, y2 +
    dy h)`` clipped to ``[0, W] x [0, H]`` (a region fully outside becomes
    empty: ``x1 == x2`` or ``y1 == y2``).

    Args:
        bboxes (np.ndarray): (N, 4) integer x1y1x2y2 boxes in pixels.
        height (int): H.
        width (int): W.

    Returns:
        np.ndarray: (N, 8, 4) int64 clipped regions, x1y1x2y2.
    """
    bboxes = np.asarray(bboxes, dtype=np.int64).reshape(-1, 4)
    sizes = np.stack(
        (bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]),
        1)  # (N, 2) w, h
    shifts = NEIGHBOUR_OFFSETS[None] * sizes[:, None]  # (N, 8, 2)
    regions = bboxes[:, None] + np.concatenate((shifts, shifts), -1)
    regions[..., 0::2] = regions[..., 0::2].clip(0, width)
    regions[..., 1::2] = regions[..., 1::2].clip(0, height)
    return regions


def context_distributions_from_table(table: np.ndarray,
                                     bboxes: np.ndarray) -> np.ndarray:
    """Context distributions of many boxes from one
    :func:`class_integral_image` (the batch form of
    :func:`context_distributions`).

    Args:
        table (np.ndarray): (H + 1, W + 1, C) per-class summed-area table.
        bboxes (np.ndarray): (N, 4) integer x1y1x2y2 boxes (x2, y2
            exclusive).

    Returns:
        np.ndarray: (N, 8, C) float64: row ``j`` of box ``n`` is the class
        occupancy ratio among the labelled pixels of its ``j``-th
        neighbour region, zeros for a region without labelled pixels.
    """
    height, width = table.shape[0] - 1, table.shape[1] - 1
    regions = neighbour_regions(bboxes, height, width)
    x1, y1, x2, y2 = (regions[..., i] for i in range(4))
    counts = (table[y2, x2].astype(np.int64) - table[y1, x2] -
              table[y2, x1] + table[y1, x1])  # (N, 8, C)
    totals = counts.sum(-1, keepdims=True)
    return counts / np.maximum(totals, 1)


def context_distributions(sem_seg: np.ndarray,
                          bbox: Sequence[int],
                          num_classes: int,
                          ignore_index: int = 255) -> np.ndarray:
    """Semantic context of an instance: the class distribution of the 8
    regions around its box that have the box's size (Sec. 4.2, Fig. 3).

    Args:
        sem_seg (np.ndarray): (H, W) labels in ``[0, C)`` or
            ``ignore_index``.
        bbox (Sequence[int]): ``(x1, y1, x2, y2)`` in pixels, x2 and y2
            exclusive.
        num_classes (int): C.
        ignore_index (int): Unlabelled pixels, excluded from the ratios.
            Defaults to 255.

    Returns:
        np.ndarray: (8, C) float64; row ``j`` is region ``j`` of
        :data:`NEIGHBOUR_OFFSETS` (row-major, ``dy`` first): the occupancy
        ratio of each class among its labelled pixels, zeros when it has
        none (e.g. outside the image).
    """
    table = class_integral_image(sem_seg, num_classes, ignore_index)
    return context_distributions_from_table(table, np.asarray([bbox]))[0]


def _kl_terms(a: np.ndarray, b: np.ndarray, zero_prob: float) -> np.ndarray:
    """``a_c log(a_c / b_c)``, 0 where ``a_c = 0``, ``b_c = 0`` read as
    ``zero_prob``."""
    positive = a > 0
    log_a = np.log(np.where(positive, a, 1.0))
    log_b = np.log(np.where(b > 0, b, zero_prob))
    return np.where(positive, a * (log_a - log_b), 0.0)


def symmetric_kl_batch(p: np.ndarray,
                       q: np.ndarray,
                       zero_prob: float = 0.1) -> np.ndarray:
    """:func:`symmetric_kl` of broadcast stacks of context distributions.

    Args:
        p (np.ndarray): (..., 8, C).
        q (np.ndarray): (..., 8, C), broadcastable with ``p``.
        zero_prob (float): Stand-in for a zero reference probability.

    Returns:
        np.ndarray: (...) float64, ``D(p||q) + D(q||p)`` summed over the
        regions and classes.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    terms = _kl_terms(p, q, zero_prob) + _kl_terms(q, p, zero_prob)
    return terms.sum((-2, -1))


def symmetric_kl(p: np.ndarray,
                 q: np.ndarray,
                 zero_prob: float = 0.1) -> float:
    """Symmetric KL divergence of two contexts, summed over the 8 regions
    (the summand of Eq. 4).

    ``D(p||q) + D(q||p)`` with ``D(a||b) = sum_c a_c log(a_c / b_c)``: a
    term with ``a_c = 0`` is 0 and a zero ``b_c`` is replaced by
    ``zero_prob`` ("if the reference probability is 0 ... we use a small
    probability 0.1 instead").

    Args:
        p (np.ndarray): (8, C) context of one instance.
        q (np.ndarray): (8, C) context of another.
        zero_prob (float): Defaults to 0.1.

    Returns:
        float: The divergence (natural log).
    """
    return float(symmetric_kl_batch(p, q, zero_prob))


def context_errors(queries: np.ndarray,
                   retrievals: np.ndarray,
                   zero_prob: float = 0.1,
                   valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Eq. 4 for many queries at once, each against its own retrievals.

    Args:
        queries (np.ndarray): (Q, 8, C) query contexts.
        retrievals (np.ndarray): (Q, K, 8, C) contexts of each query's K
            retrievals.
        zero_prob (float): Defaults to 0.1.
        valid (np.ndarray, optional): (Q, K) bool, False for padding
            retrievals (a query with fewer than K candidates); the mean is
            over its valid ones (NaN if none).

    Returns:
        np.ndarray: (Q,) float64 Context Errors.
    """
    divergences = symmetric_kl_batch(
        np.asarray(queries)[:, None], retrievals, zero_prob)  # (Q, K)
    if valid is None:
        return divergences.mean(1) / 8
    valid = np.asarray(valid, dtype=bool)
    counts = valid.sum(1)
    sums = np.where(valid, divergences, 0.0).sum(1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, sums / (8 * counts), np.nan)


def context_error(query: np.ndarray,
                  retrievals: np.ndarray,
                  zero_prob: float = 0.1) -> float:
    """Context Error of one query (Eq. 4): ``1 / (8K) sum_i
    symmetric_kl(query, retrieval_i)``.

    Args:
        query (np.ndarray): (8, C) context of the query.
        retrievals (np.ndarray): (K, 8, C) contexts of its K retrievals.
        zero_prob (float): Defaults to 0.1.

    Returns:
        float: CE.
    """
    retrievals = np.asarray(retrievals)
    if retrievals.ndim != 3 or len(retrievals) == 0:
        raise ValueError('retrievals must be a non-empty (K, 8, C) stack, got '
                         f'shape {retrievals.shape}')
    return float(
        context_errors(np.asarray(query)[None], retrievals[None],
                       zero_prob)[0])
