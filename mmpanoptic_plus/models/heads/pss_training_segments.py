# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Training segments of PSS: the k-means partition split by the ground truth,
their prototypes (with hybrid scale exemplars, Sec. 3.3), instance keys and
classes, ready for the SegSort loss (Eq. 1-2) and the segment classifier
(Sec. 3.2)."""
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.models.utils import segment_sums


class PSSTrainingSegments(NamedTuple):
    """Segments of a training batch, flattened over images.

    Attributes:
        pixel_embeds (Tensor): (N, C) embeddings of the labelled pixels of the
            embedding map.
        pixel_segments (Tensor): (N, ) int64 segment of each, in ``[0, L)``.
        prototypes (Tensor): (L, C) unit-length prototypes (with gradient).
        instances (Tensor): (L, ) int64 instance keys (equal = same instance;
            stuff: ``class``, things: ``num_classes + image * S + gt id``).
        labels (Tensor): (L, ) int64 classes.
        upscaled (Tensor): (L, ) bool, prototype taken from the upscaled map.
        segment_map (Tensor): (B, h, w) int64 segment of each map pixel (-1:
            unlabelled).
    """
    pixel_embeds: Tensor
    pixel_segments: Tensor
    prototypes: Tensor
    instances: Tensor
    labels: Tensor
    upscaled: Tensor
    segment_map: Tensor


def sample_ids_on_grid(ids: Tensor, stride: int) -> Tensor:
    """Nearest sample of a full-resolution id map at the cells of a
    stride-``stride`` grid (cell ``j`` at pixel ``stride * j + stride //
    2``, :mod:`models.utils.stride_grid`).

    Args:
        ids (Tensor): (B, H, W) integer map, ``H`` and ``W`` multiples of
            ``stride``.
        stride (int): Grid stride.

    Returns:
        Tensor: (B, H // stride, W // stride).
    """
    offset = stride // 2
    return ids[:, offset::stride, offset::stride]


def _segment_index(cluster: Tensor, gt_ids: Tensor, num_clusters: int,
                   num_gt: int) -> Tensor:
    """(B, h, w) int64 key ``(image * K + cluster) * S + gt`` (-1 where
    either is negative)."""
    image = torch.arange(cluster.size(0), device=cluster.device)[:, None,
                                                                  None]
    key = (image * num_clusters + cluster) * num_gt + gt_ids
    return torch.where((cluster >= 0) & (gt_ids >= 0), key,
                       torch.full_like(key, -1))


def pss_training_segments(embeds: Tensor,
                          cluster_labels: Tensor,
                          num_clusters: int,
                          gt_segment_ids: Tensor,
                          gt_labels: Tensor,
                          gt_is_thing: Tensor,
                          num_classes: int,
                          stride: int = 4,
                          small_area: Optional[int] = None,
                          upscale_factor: int = 4) -> PSSTrainingSegments:
    """Split the k-means clusters by ground-truth segment and compute their
    prototypes (PSS Sec. 3.1-3.3).

    A training segment is a (cluster, ground-truth segment) pair with at
    least one pixel, so that each segment has one instance and one class
    (SegSort trains on the k-means partition intersected with the label
    map). Its prototype is the normalised mean embedding of its pixels.

    Hybrid scale exemplars (Sec. 3.3, Appendix A.3): for a thing instance
    of fewer than ``small_area`` pixels (input resolution), the prototype of
    each of its segments is instead taken from the embedding map bilinearly
    upscaled by ``upscale_factor``, over the same (cluster, instance) pixels
    at that resolution (cluster map upsampled nearest, ground truth sampled
    at the finer grid); still one prototype per segment. A segment with no
    pixel on the finer grid keeps its regular prototype.

    Args:
        embeds (Tensor): (B, C, h, w) unit-length embeddings at ``stride``.
        cluster_labels (Tensor): (B, h, w) int64 k-means labels in ``[0,
            num_clusters)`` or -1.
        num_clusters (int): K.
        gt_segment_ids (Tensor): (B, H, W) int64 ground-truth segment ids
            (``GeneratePanopticSegmentIds``; -1 none) of the padded input,
            ``H = stride * h``.
        gt_labels (Tensor): (B, S) int64 class of each ground-truth segment
            (-1 padding).
        gt_is_thing (Tensor): (B, S) bool.
        num_classes (int): Things plus stuff (keys of things start there).
        stride (int): Stride of ``embeds``. Defaults to 4.
        small_area (int, optional): ``A_p``; None disables hybrid scale
            exemplars. Defaults to None.
        upscale_factor (int): Upscaling of the embeddings for small
            instances; must divide ``stride``. Defaults to 4 (input
            resolution).

    Returns:
        PSSTrainingSegments: the segments of the batch.
    """
    batch, channels, height, width = embeds.shape
    if gt_segment_ids.shape != (batch, height * stride, width * stride):
        raise ValueError(
            f'gt_segment_ids {tuple(gt_segment_ids.shape)} must cover the '
            f'padded input ({batch}, {height * stride}, {width * stride})')
    num_gt = max(gt_labels.size(1), 1)
    gt_ids = gt_segment_ids.long()
    keys = _segment_index(cluster_labels.long(),
                          sample_ids_on_grid(gt_ids, stride), num_clusters,
                          num_gt)
    labelled = keys >= 0
    unique_keys, inverse = torch.unique(keys[labelled], return_inverse=True)
    num_segments = unique_keys.numel()
    segment_map = torch.full_like(keys, -1)
    segment_map[labelled] = inverse

    # ids of one flat segment space over the batch: sum the per-image sums
    sums, _ = segment_sums(segment_map, embeds, num_segments, ignore_index=-1)
    sums = sums.sum(dim=0)
    segment_image = unique_keys // (num_clusters * num_gt)
    segment_gt = unique_keys % num_gt
    labels = gt_labels[segment_image, segment_gt]
    is_thing = gt_is_thing[segment_image, segment_gt].bool()
    upscaled = torch.zeros_like(is_thing)
    if small_area is not None and num_segments > 0:
        if stride % upscale_factor:
            raise ValueError(f'upscale_factor={upscale_factor} must divide '
                             f'stride={stride}')
        area = torch.zeros((batch, num_gt), dtype=torch.long,
                           device=gt_ids.device)
        valid_gt = gt_ids >= 0
        image = torch.arange(batch, device=gt_ids.device)[:, None, None]
        area.view(-1).index_add_(
            0, (image * num_gt + gt_ids)[valid_gt],
            torch.ones_like(gt_ids[valid_gt]))
        small = is_thing & (area[segment_image, segment_gt] < small_area)
        if bool(small.any()):
            fine_embeds = F.interpolate(
                embeds, scale_factor=upscale_factor, mode='bilinear',
                align_corners=False)
            fine_clusters = cluster_labels.long().repeat_interleave(
                upscale_factor, 1).repeat_interleave(upscale_factor, 2)
            fine_keys = _segment_index(
                fine_clusters,
                sample_ids_on_grid(gt_ids, stride // upscale_factor),
                num_clusters, num_gt)
            position = torch.searchsorted(unique_keys, fine_keys.clamp_min(0))
            position = position.clamp_max(num_segments - 1)
            found = (fine_keys >= 0) & (unique_keys[position] == fine_keys)
            # only small-instance segments read the fine map
            found &= small[position]
            fine_map = torch.where(found, position,
                                   torch.full_like(position, -1))
            fine_sums, fine_counts = segment_sums(
                fine_map, fine_embeds, num_segments, ignore_index=-1)
            upscaled = small & (fine_counts.sum(dim=0) > 0)
            sums = torch.where(upscaled[:, None], fine_sums.sum(dim=0), sums)
    prototypes = F.normalize(sums, dim=-1)
    instances = torch.where(
        is_thing, num_classes + segment_image * num_gt + segment_gt, labels)
    pixels = embeds.permute(0, 2, 3, 1)[labelled]
    return PSSTrainingSegments(pixels, inverse, prototypes, instances,
                               labels, upscaled, segment_map)
