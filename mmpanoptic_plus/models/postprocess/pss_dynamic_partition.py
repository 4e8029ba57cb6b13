# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dynamic partitioning of PSS (Sec. 3.3): re-split low-concentration
segments with spherical k-means."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.models.utils import grid_shape, segment_sums
from mmpanoptic_plus.models.utils.spherical_kmeans import KMEANS_CHUNK_PIXELS


def segment_concentration(labels: Tensor, embeddings: Tensor,
                          num_segments: int) -> Tuple[Tensor, Tensor]:
    """Approximated concentration ``kappa_k = ||sum_{i in R_k} v_i|| / |R_k|``
    (PSS Sec. 3.3), in ``[0, 1]`` for unit-length ``v``.

    Args:
        labels (Tensor): (B, H, W) int64 segment ids in ``[0, K)`` or -1.
        embeddings (Tensor): (B, C, H, W) unit-length embeddings.
        num_segments (int): K.

    Returns:
        tuple[Tensor, Tensor]: ``concentration`` (B, K) (0 for empty
        segments) and ``counts`` (B, K) int64.
    """
    sums, counts = segment_sums(labels, embeddings, num_segments, -1)
    return sums.norm(dim=-1) / counts.clamp_min(1).to(sums.dtype), counts


def compact_labels(labels: Tensor, num_slots: int) -> Tuple[Tensor, int]:
    """Renumber the non-empty slots of each image ``0, 1, ...`` in slot
    order (one ``bincount`` and ``cumsum``).

    Args:
        labels (Tensor): (B, H, W) int64 in ``[0, num_slots)`` or -1.
        num_slots (int): Slots per image.

    Returns:
        tuple[Tensor, int]: new (B, H, W) labels (-1 kept) and the largest
        number of segments of an image.
    """
    batch = labels.size(0)
    image = torch.arange(batch, device=labels.device)[:, None, None]
    flat = (image * num_slots + labels.clamp_min(0))
    present = torch.bincount(
        flat[labels >= 0], minlength=batch * num_slots).view(
            batch, num_slots) > 0
    new_index = present.cumsum(dim=1) - 1
    relabelled = new_index.flatten()[flat]
    relabelled = torch.where(labels >= 0, relabelled,
                             torch.full_like(relabelled, -1))
    return relabelled, int(present.sum(dim=1).max()) if batch else 0


def dynamic_partition(labels: Tensor,
                      embeddings: Tensor,
                      num_segments: int,
                      threshold: float = 0.99,
                      num_splits: int = 4,
                      num_iters: int = 10,
                      chunk_pixels: int = KMEANS_CHUNK_PIXELS
                      ) -> Tuple[Tensor, int]:
    """Split every segment whose concentration is below ``threshold`` into
    ``num_splits`` with spherical k-means (PSS Sec. 3.3: ``T_S = 0.99``,
    ``k = 4``).

    All low-concentration segments of the batch are split at once: child
    ``j`` of segment ``s`` is slot ``s * num_splits + j``; the children start
    as a :func:`grid_shape` grid (2 x 2 for k = 4) over the segment's
    bounding box, and each E-step compares a pixel only with the
    ``num_splits`` prototypes of its own segment (a gather, not a (K k, HW)
    product). Segments at or above the threshold keep their pixels (child
    0). The result is renumbered densely per image (:func:`compact_labels`).

    Args:
        labels (Tensor): (B, H, W) int64 segments in ``[0, K)`` or -1.
        embeddings (Tensor): (B, C, H, W) unit-length embeddings.
        num_segments (int): K.
        threshold (float): ``T_S``. Defaults to 0.99.
        num_splits (int): k. Defaults to 4.
        num_iters (int): k-means iterations. Defaults to 10.
        chunk_pixels (int): Pixels per E-step block.

    Returns:
        tuple[Tensor, int]: new (B, H, W) labels (-1 kept) and the largest
        number of segments of an image.
    """
    batch, channels, height, width = embeddings.shape
    concentration, counts = segment_concentration(labels, embeddings,
                                                  num_segments)
    low = (counts > 0) & (concentration < threshold)  # (B, K)
    image = torch.arange(batch, device=labels.device)[:, None, None]
    parent = labels.clamp_min(0)
    in_low = (labels >= 0) & low[image, parent]
    num_slots = num_segments * num_splits
    if not bool(in_low.any()):
        return compact_labels(labels, num_segments)

    # initial children: a rows x cols grid over each segment's box
    ys = torch.arange(height, device=labels.device)[:, None].expand(
        height, width)[None].expand_as(labels)
    xs = torch.arange(width, device=labels.device)[None, :].expand(
        height, width)[None].expand_as(labels)
    flat = (image * num_segments + parent)[in_low]
    box = []
    for coords, reduce in ((ys, 'amin'), (ys, 'amax'), (xs, 'amin'),
                           (xs, 'amax')):  # four reductions, not a loop
        init = coords.new_zeros(batch * num_segments)  # over segments
        box.append(
            init.scatter_reduce(0, flat, coords[in_low], reduce,
                                include_self=False))
    rows, cols = grid_shape(num_splits, num_splits, num_splits)
    y0, y1, x0, x1 = (b[flat] for b in box)
    row = (ys[in_low] - y0) * rows // (y1 - y0 + 1)
    col = (xs[in_low] - x0) * cols // (x1 - x0 + 1)
    child = parent * num_splits
    child[in_low] += row * cols + col
    child = torch.where(labels >= 0, child, torch.full_like(child, -1))

    pixels = embeddings.permute(0, 2, 3, 1)[in_low]  # (n, C)
    first_child = (parent * num_splits)[in_low]  # (n, )
    pixel_image = image.expand_as(labels)[in_low]
    offsets = torch.arange(num_splits, device=labels.device)
    for _ in range(num_iters):
        sums, child_counts = segment_sums(child, embeddings, num_slots, -1)
        protos = F.normalize(sums, dim=-1)
        penalty = torch.zeros_like(protos[..., 0]).masked_fill(
            child_counts == 0, float('-inf'))
        new_children = []
        for start in range(0, pixels.size(0), chunk_pixels):  # pixel blocks
            stop = start + chunk_pixels
            slots = first_child[start:stop, None] + offsets  # (n, k)
            img = pixel_image[start:stop, None]
            scores = torch.einsum('nkc,nc->nk', protos[img, slots],
                                  pixels[start:stop]) + penalty[img, slots]
            new_children.append(first_child[start:stop] +
                                scores.argmax(dim=1))
        child = child.clone()
        child[in_low] = torch.cat(new_children)
    return compact_labels(child, num_slots)
