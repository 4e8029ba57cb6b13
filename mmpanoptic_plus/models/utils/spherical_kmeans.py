# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Spherical k-means over-segmentation of unit-length pixel embeddings.

SegSort (Hwang et al., ICCV 2019) and PSS (Sec. 3.1, "Contextual Image
Parsing via Panoptic Segment Sorting") partition the L2-normalised pixel
embeddings ``v`` of each image into ``K`` regions with spherical k-means
(Banerjee et al., 2005):

- M-step: the prototype of region ``R_k`` is its normalised mean direction
  ``mu_k = sum_{i in R_k} v_i / ||sum_{i in R_k} v_i||``;
- E-step: every pixel joins the region of its most similar prototype,
  ``z_i = argmax_k mu_k^T v_i``.

The iterations start from a spatial grid (every pixel in the cell of a
``rows x cols`` grid that contains it), as SegSort's implementation does.
Training (the SegSort loss) and inference (PSS post-processing) both call
this, hence its place in ``models/utils``.

Everything is batched over images: one :func:`segment_sums` (M-step) and one
``bmm`` + ``argmax`` per pixel chunk (E-step) per iteration; the pixel
chunks bound the ``(K, chunk)`` score block (K = 500 at 1024x2048 / 4 with
the default chunk: 500 x 32768 x 4 B = 66 MB) instead of ``(K, H W)``.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .segment_embeddings import segment_sums

#: Pixels per E-step block (bounds the (B, K, chunk) score tensor).
KMEANS_CHUNK_PIXELS = 32768


def grid_shape(num_clusters: int, height: int, width: int) -> Tuple[int, int]:
    """Rows and columns of the initial grid: about ``num_clusters`` cells of
    near-square shape, ``rows * cols <= num_clusters``.

    ``rows = round(sqrt(K H / W))`` (at least 1, at most ``H``), ``cols =
    min(K // rows, W)``: 196 clusters on a square crop give 14 x 14, 500 on
    a 1:2 map 16 x 31 = 496.

    Args:
        num_clusters (int): K, at least 1.
        height (int): Map rows.
        width (int): Map columns.

    Returns:
        tuple[int, int]: ``(rows, cols)``.
    """
    if num_clusters < 1 or height < 1 or width < 1:
        raise ValueError(f'need K, H, W >= 1, got {num_clusters}, {height}, '
                         f'{width}')
    rows = int(round(math.sqrt(num_clusters * height / width)))
    rows = min(max(rows, 1), height, num_clusters)
    cols = min(max(num_clusters // rows, 1), width)
    return rows, cols


def grid_cluster_labels(height: int,
                        width: int,
                        num_clusters: int,
                        device=None) -> Tensor:
    """Initial k-means labels: the index of the grid cell of every pixel.

    Cell ``(r, c)`` of the :func:`grid_shape` grid holds the pixels ``y`` in
    ``[r H / rows, (r + 1) H / rows)`` and ``x`` likewise; its label is ``r *
    cols + c``.

    Args:
        height (int): Map rows.
        width (int): Map columns.
        num_clusters (int): K.
        device (torch.device, optional): Device of the output.

    Returns:
        Tensor: (H, W) int64 labels in ``[0, rows * cols)``.
    """
    rows, cols = grid_shape(num_clusters, height, width)
    ys = torch.arange(height, device=device) * rows // height
    xs = torch.arange(width, device=device) * cols // width
    return ys[:, None] * cols + xs[None, :]


def spherical_kmeans(embeddings: Tensor,
                     init_labels: Tensor,
                     num_clusters: int,
                     num_iters: int = 10,
                     chunk_pixels: int = KMEANS_CHUNK_PIXELS
                     ) -> Tuple[Tensor, Tensor]:
    """Spherical k-means (PSS Sec. 3.1) from given initial labels.

    Each of the ``num_iters`` iterations is one M-step (prototypes of the
    current labels) then one E-step (new labels). Pixels whose initial label
    is negative (padding, ignored pixels) stay out: they neither form
    prototypes nor get a label. A cluster that loses all its pixels has a
    zero prototype and cannot win the E-step (no NaN); ties go to the
    lowest index.

    Run under ``torch.no_grad()`` (as SegSort: the partition is not
    differentiated); prototypes for a loss are recomputed from the labels
    with gradient (:func:`segment_means`).

    Args:
        embeddings (Tensor): (B, C, H, W) L2-normalised pixel embeddings.
        init_labels (Tensor): (B, H, W) integer labels in ``[0, K)``, or
            negative for pixels to leave out (e.g. :func:`grid_cluster_labels`
            with the padding set to -1).
        num_clusters (int): K.
        num_iters (int): E/M iterations. Defaults to 10 (PSS Appendix A.7).
        chunk_pixels (int): Pixels per E-step block. Defaults to
            :data:`KMEANS_CHUNK_PIXELS`.

    Returns:
        tuple[Tensor, Tensor]: ``labels`` (B, H, W) int64 (-1 where left
        out) and ``prototypes`` (B, K, C): the unit-length mean directions of
        the returned labels (zero for empty clusters).
    """
    if embeddings.dim() != 4 or init_labels.shape != (
            embeddings.shape[0], ) + embeddings.shape[2:]:
        raise ValueError(
            f'embeddings {tuple(embeddings.shape)} must be (B, C, H, W) and '
            f'init_labels {tuple(init_labels.shape)} (B, H, W)')
    labels = init_labels.long().clamp_min(-1)
    if bool((labels >= num_clusters).any()):
        raise ValueError(f'initial labels must be < K={num_clusters}')
    keep = (labels >= 0).flatten(1)  # (B, HW)
    pixels = embeddings.flatten(2)  # (B, C, HW)
    for _ in range(num_iters):
        prototypes, counts = _prototypes(labels, embeddings, num_clusters)
        labels = _assign(pixels, prototypes, counts > 0, keep,
                         chunk_pixels).view_as(labels)
    prototypes, _ = _prototypes(labels, embeddings, num_clusters)
    return labels, prototypes


def _prototypes(labels: Tensor, embeddings: Tensor,
                num_clusters: int) -> Tuple[Tensor, Tensor]:
    """M-step: unit-length mean directions (B, K, C) and counts (B, K)."""
    sums, counts = segment_sums(
        labels, embeddings, num_clusters, ignore_index=-1)
    return F.normalize(sums, dim=-1), counts


def _assign(pixels: Tensor, prototypes: Tensor, nonempty: Tensor,
            keep: Tensor, chunk_pixels: int) -> Tensor:
    """E-step: (B, HW) argmax over the non-empty prototypes, -1 where not
    kept or where an image has no non-empty cluster."""
    penalty = torch.zeros_like(nonempty, dtype=pixels.dtype).masked_fill(
        ~nonempty, float('-inf'))[:, None]  # (B, 1, K)
    num_pixels = pixels.size(-1)
    protos_t = prototypes.to(pixels.dtype).transpose(1, 2)  # (B, C, K)
    blocks = []
    for start in range(0, num_pixels, chunk_pixels):  # pixel blocks
        # (B, chunk, K): the argmax runs over the contiguous last axis
        block = torch.bmm(
            pixels[..., start:start + chunk_pixels].transpose(1, 2),
            protos_t)
        blocks.append((block + penalty).argmax(dim=2))
    labels = torch.cat(blocks, dim=1) if blocks else keep.new_zeros(
        keep.shape, dtype=torch.long)
    valid = keep & nonempty.any(dim=1, keepdim=True)
    return torch.where(valid, labels, torch.full_like(labels, -1))
