# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Nearest-neighbour retrieval of instance descriptors (PSS Sec. 4.2:
"we retrieve the nearest neighbors of query instances ... using their
averaged embeddings"): one matrix product per block of queries."""
from typing import Optional, Tuple

import numpy as np

#: Similarities :func:`nearest_neighbours` ranks by.
SIMILARITIES = ('cosine', 'euclidean')


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest_neighbours(
        queries: np.ndarray,
        database: np.ndarray,
        k: int,
        exclude: Optional[np.ndarray] = None,
        similarity: str = 'cosine',
        chunk_size: int = 1024) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar database rows of every query, best first.

    ``cosine``: ``<q, d> / (|q| |d|)``; ``euclidean``: ``-|q - d|^2``,
    ranked as ``2 <q, d> - |d|^2`` (``|q|^2`` is the same for a whole row),
    so both are one (block of queries) x database product. Ties go to the
    lower database index.

    Args:
        queries (np.ndarray): (Q, D) query descriptors.
        database (np.ndarray): (N, D) database descriptors.
        k (int): Neighbours per query.
        exclude (np.ndarray, optional): (Q,) int database index each query
            must not retrieve (itself, when the query set is in the
            database), -1 for none.
        similarity (str): One of :data:`SIMILARITIES`. Defaults to
            ``'cosine'``.
        chunk_size (int): Queries per product (memory ``chunk_size x N``).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``indices`` (Q, min(k, N)) int64
        database rows, -1 where a query has fewer candidates (an excluded
        one), and their ``scores`` (Q, min(k, N)) float64 (-inf there).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f'similarity must be one of {SIMILARITIES}, got '
                         f'{similarity!r}')
    queries = np.asarray(queries, dtype=np.float64)
    database = np.asarray(database, dtype=np.float64)
    num_queries, num_database = len(queries), len(database)
    k = min(int(k), num_database)
    indices = np.full((num_queries, k), -1, dtype=np.int64)
    scores = np.full((num_queries, k), -np.inf)
    if k <= 0 or num_queries == 0:
        return indices, scores
    if similarity == 'cosine':
        queries, database = _unit_rows(queries), _unit_rows(database)
        bias = np.zeros(num_database)
        scale = 1.0
    else:
        bias = -(database**2).sum(1)
        scale = 2.0
    for start in range(0, num_queries, chunk_size):
        stop = min(start + chunk_size, num_queries)
        block = scale * (queries[start:stop] @ database.T) + bias
        if exclude is not None:
            rows = np.arange(stop - start)
            excluded = np.asarray(exclude[start:stop], dtype=np.int64)
            keep = excluded >= 0
            block[rows[keep], excluded[keep]] = -np.inf
        # a full stable sort (not argpartition): ties keep the lower index
        top = np.argsort(-block, axis=1, kind='stable')[:, :k]
        top_scores = np.take_along_axis(block, top, 1)
        top[np.isneginf(top_scores)] = -1
        indices[start:stop] = top
        scores[start:stop] = top_scores
    return indices, scores
