# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Segment embeddings of a feature map and the pixel-to-segment similarity.

Four methods summarise a feature map under segments and compare pixels with
those summaries:

- PISR (Borse et al., CVPR 2022, Sec. 3.1-3.2): an encoding is the feature
  map under a *soft* region, ``E = R F^T`` (semantic probabilities,
  instance heatmaps): :func:`region_encodings`.
- CIAE (Category- and Instance-Aware Pixel Embedding, Eq. 3-4), PSS (SegSort)
  and Unified: the *mean* embedding of each segment of a *hard* segment-id map
  (:func:`segment_means`, from :func:`segment_sums`), L2-normalised, and each
  pixel assigned to its most similar segment, ``S = P V^T``
  (:func:`segment_similarity`, :func:`assign_pixels_to_segments`).

Shapes: ``B`` images, ``C`` channels, ``H x W`` pixels, ``K`` segments.
Everything is vectorised (one ``index_add`` / ``bincount`` / ``bmm`` per
call), keeps the dtype and device of the features, and is differentiable in
the features.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Smallest region mass divided by in :func:`region_encodings` (a region that
#: is zero everywhere gives a zero encoding, not NaN).
REGION_EPS = 1e-6


def _check_maps(name: str, maps: Tensor, feats: Tensor) -> None:
    if maps.dim() != 4 or feats.dim() != 4:
        raise ValueError(f'{name} and feats must be 4-D (B, *, H, W), got '
                         f'{tuple(maps.shape)} and {tuple(feats.shape)}')
    if maps.shape[0] != feats.shape[0] or \
            maps.shape[-2:] != feats.shape[-2:]:
        raise ValueError(
            f'{name} {tuple(maps.shape)} and feats {tuple(feats.shape)} must '
            'share the batch size and the spatial size (resize the maps to '
            'the feature map first)')


def region_encodings(regions: Tensor,
                     feats: Tensor,
                     normalize: bool = True,
                     l2_normalize: bool = False) -> Tensor:
    """Encodings ``E = R F^T`` of soft regions (soft-mask segment sums or
    means; PISR Sec. 3.1-3.2).

    ``E[b, r] = sum_p R[b, r, p] F[b, :, p]`` (one batched matrix product,
    ``einsum('brp,bcp->brc')``). With ``normalize`` each region is first
    divided by its mass ``sum_p R[b, r, p]`` (clamped below by
    :data:`REGION_EPS`), so that the encoding is the region-weighted mean
    feature and a region that is zero everywhere gives a zero encoding.

    Args:
        regions (Tensor): (B, R, H, W) non-negative region weights (soft
            masks).
        feats (Tensor): (B, C, H, W) feature map.
        normalize (bool): Region-weighted means instead of sums. Defaults to
            True.
        l2_normalize (bool): Then scale each encoding to unit L2 norm (a zero
            encoding stays zero). Defaults to False.

    Returns:
        Tensor: (B, R, C) encodings, in the dtype of ``regions``.
    """
    _check_maps('regions', regions, feats)
    weights = regions.flatten(2)  # (B, R, HW)
    if normalize:
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(
            REGION_EPS)
    feats = feats.flatten(2).to(weights.dtype)  # (B, C, HW)
    encodings = torch.bmm(weights, feats.transpose(1, 2))
    if l2_normalize:
        encodings = F.normalize(encodings, dim=-1)
    return encodings


def _check_segment_ids(segment_ids: Tensor, feats: Tensor, num_segments: int,
                       ignore_index: int) -> None:
    if feats.dim() != 4 or segment_ids.shape != (feats.shape[0], ) + \
            feats.shape[2:]:
        raise ValueError(
            f'segment_ids {tuple(segment_ids.shape)} must be (B, H, W) of '
            f'feats (B, C, H, W) {tuple(feats.shape)}')
    if segment_ids.dtype.is_floating_point or segment_ids.dtype == torch.bool:
        raise ValueError(
            f'segment_ids must be an integer map, got {segment_ids.dtype}')
    if num_segments < 0:
        raise ValueError(f'num_segments must be >= 0, got {num_segments}')
    if 0 <= ignore_index < num_segments:
        raise ValueError(
            f'ignore_index={ignore_index} is also a segment id (0 to '
            f'{num_segments - 1}): choose an ignore value outside them, e.g. '
            '-1')


def segment_sums(segment_ids: Tensor,
                 feats: Tensor,
                 num_segments: int,
                 ignore_index: int = 255) -> Tuple[Tensor, Tensor]:
    """Per-segment feature sums and pixel counts of a segment-id map.

    ``sums[b, k] = sum_{p: ids[b, p] = k} F[b, :, p]`` and ``counts[b, k] =
    |{p: ids[b, p] = k}|``, for all images and segments with one
    ``index_add`` (no loop over segments). Pixels of ``ignore_index`` are
    left out; a segment without pixels gets a zero sum and count 0.

    Args:
        segment_ids (Tensor): (B, H, W) integer segment ids in
            ``[0, num_segments)`` or ``ignore_index``.
        feats (Tensor): (B, C, H, W) feature map (e.g. pixel embeddings).
        num_segments (int): K, the number of segment slots per image.
        ignore_index (int): Id of the pixels left out; must not be a segment
            id (use e.g. -1 when there are 256 segments or more). Defaults to
            255.

    Returns:
        tuple[Tensor, Tensor]: ``sums`` (B, K, C) in the dtype and on the
        device of ``feats``, ``counts`` (B, K) int64.

    Raises:
        ValueError: On shape mismatch or an id outside ``[0, K)`` that is not
            ``ignore_index``.
    """
    _check_segment_ids(segment_ids, feats, num_segments, ignore_index)
    batch, channels = feats.shape[:2]
    ids = segment_ids.flatten(1).long()  # (B, HW)
    valid = ids != ignore_index
    bad = valid & ((ids < 0) | (ids >= num_segments))
    if bool(bad.any()):
        raise ValueError(
            f'segment ids must be in [0, {num_segments}) or {ignore_index}, '
            f'got {ids[bad].unique().tolist()}')
    # one flat bin per (image, segment), plus a last bin for ignored pixels
    num_bins = batch * num_segments
    offsets = torch.arange(batch, device=ids.device)[:, None] * num_segments
    bins = torch.where(valid, ids + offsets,
                       torch.full_like(ids, num_bins)).flatten()
    pixels = feats.flatten(2).transpose(1, 2).reshape(-1, channels)
    sums = feats.new_zeros((num_bins + 1, channels)).index_add(0, bins, pixels)
    counts = torch.bincount(bins, minlength=num_bins + 1)
    return (sums[:num_bins].view(batch, num_segments, channels),
            counts[:num_bins].view(batch, num_segments))


def segment_means(segment_ids: Tensor,
                  feats: Tensor,
                  num_segments: int,
                  ignore_index: int = 255,
                  l2_normalize: bool = False) -> Tensor:
    """Mean feature of every segment of a segment-id map (CIAE Eq. 3-4).

    ``means[b, k] = sums[b, k] / counts[b, k]`` (:func:`segment_sums`); with
    ``l2_normalize`` each mean is then scaled to unit L2 norm, the
    normalised mean embedding CIAE compares pixels with (Eq. 3-4; SegSort's
    prototypes likewise). A segment without pixels gets a zero vector (also
    after normalisation: no NaN).

    Args:
        segment_ids (Tensor): (B, H, W) integer ids in ``[0, num_segments)``
            or ``ignore_index``.
        feats (Tensor): (B, C, H, W) feature map.
        num_segments (int): K.
        ignore_index (int): Id of the pixels left out. Defaults to 255.
        l2_normalize (bool): Unit-norm means. Defaults to False.

    Returns:
        Tensor: (B, K, C) means in the dtype and on the device of ``feats``.
    """
    sums, counts = segment_sums(segment_ids, feats, num_segments,
                                ignore_index)
    means = sums / counts.clamp_min(1).to(sums.dtype)[..., None]
    if l2_normalize:
        means = F.normalize(means, dim=-1)
    return means


def segment_similarity(pixel_embeds: Tensor, segment_embeds: Tensor) -> Tensor:
    """Similarity of every pixel with every segment, ``S = P V^T``.

    ``S[b, k, y, x] = <V[b, k], P[b, :, y, x]>`` (cosine similarity when
    both sides are L2-normalised; CIAE Eq. 4, SegSort, PISR's attention over
    encodings).

    Args:
        pixel_embeds (Tensor): (B, C, H, W) pixel embeddings ``P``.
        segment_embeds (Tensor): (B, K, C) per-image segment embeddings
            ``V``, or (K, C) prototypes shared by the batch.

    Returns:
        Tensor: (B, K, H, W) scores in the promoted dtype of the inputs.
    """
    if pixel_embeds.dim() != 4:
        raise ValueError('pixel_embeds must be (B, C, H, W), got '
                         f'{tuple(pixel_embeds.shape)}')
    batch, channels, height, width = pixel_embeds.shape
    if segment_embeds.dim() == 2:
        segment_embeds = segment_embeds[None].expand(batch, -1, -1)
    if segment_embeds.dim() != 3 or segment_embeds.shape[0] != batch or \
            segment_embeds.shape[2] != channels:
        raise ValueError(
            f'segment_embeds {tuple(segment_embeds.shape)} must be '
            f'(B, K, C) or (K, C) with B={batch}, C={channels}')
    dtype = torch.promote_types(pixel_embeds.dtype, segment_embeds.dtype)
    scores = torch.bmm(
        segment_embeds.to(dtype), pixel_embeds.flatten(2).to(dtype))
    return scores.view(batch, -1, height, width)


def assign_pixels_to_segments(scores: Tensor,
                              valid: Optional[Tensor] = None) -> Tensor:
    """Index of the most similar segment of every pixel, ``argmax_k S``.

    Args:
        scores (Tensor): (B, K, H, W) similarities (e.g.
            :func:`segment_similarity`).
        valid (Tensor, optional): (B, K) bool, False for segment slots that
            must not win (padding, empty segments). Defaults to all valid.

    Returns:
        Tensor: (B, H, W) int64 segment index; -1 in images without any
        (valid) segment. Ties go to the lowest index.
    """
    if scores.dim() != 4:
        raise ValueError(
            f'scores must be (B, K, H, W), got {tuple(scores.shape)}')
    batch, num_segments, height, width = scores.shape
    if valid is None:
        valid = scores.new_ones((batch, num_segments), dtype=torch.bool)
    if valid.shape != (batch, num_segments):
        raise ValueError(f'valid must be {(batch, num_segments)}, got '
                         f'{tuple(valid.shape)}')
    if num_segments == 0:
        return scores.new_full((batch, height, width), -1, dtype=torch.long)
    valid = valid.to(device=scores.device, dtype=torch.bool)
    masked = scores.masked_fill(~valid[..., None, None], float('-inf'))
    index = masked.argmax(dim=1)
    has_segment = valid.any(dim=1)[:, None, None]
    return torch.where(has_segment, index, torch.full_like(index, -1))
