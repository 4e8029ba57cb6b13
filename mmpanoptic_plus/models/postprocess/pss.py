# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS inference (Sec. 3.1-3.4, Appendix A.7): spherical k-means
over-segmentation, dynamic partitioning, segment classification, seeds,
greedy merging, area rules, then ``segments_to_panoptic``."""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.utils.gaussian_target import get_local_maximum
from mmengine.structures import PixelData
from torch import Tensor

from mmpanoptic_plus.models.utils import (grid_cluster_labels,
                                          output_sample_coordinates,
                                          segment_sums, spherical_kmeans)
from .panoptic_fusion import segments_to_panoptic
from .pss_dynamic_partition import compact_labels, dynamic_partition
from .pss_merging import merge_segments

#: Inference settings of PSS on Cityscapes (Appendix A.7); ``merge_threshold``
#: (T_P) is not given by the paper (chosen on the synthetic set: see
#: configs/pss/README.md), nor are the seed peak rules (Panoptic-DeepLab's
#: 0.1 threshold and top 200 seeds).
PSS_TEST_CFG = dict(
    num_clusters=500,
    kmeans_iters=10,
    dynamic_partition=True,
    partition_threshold=0.99,
    partition_splits=4,
    use_seeds=True,
    seed_threshold=0.1,
    seed_kernel=7,
    max_seeds=200,
    merge_threshold=0.5,
    neighbour_same_class=False,
    stuff_area_limit=2048,
    thing_area_limit=4096,
    chunk_pixels=32768)


def find_seeds(heatmap: Tensor,
               offsets: Tensor,
               threshold: float = 0.1,
               kernel: int = 7,
               max_seeds: int = 200) -> List[Tensor]:
    """Instance seeds from the seeding branch (PSS Sec. 3.4).

    Peaks of the centre heatmap (max-pool non-maximum suppression, mmdet's
    ``get_local_maximum``) above ``threshold``, at most ``max_seeds`` per
    image, each moved by the offset predicted at the peak (map cells,
    ``(dy, dx)``) and rounded into the map.

    Args:
        heatmap (Tensor): (B, 1, h, w) centre heatmap.
        offsets (Tensor): (B, 2, h, w) offsets to the centre, map cells.
        threshold (float): Minimum peak value.
        kernel (int): Max-pool window.
        max_seeds (int): Seeds per image at most.

    Returns:
        list[Tensor]: per image (n, 2) int64 ``(y, x)`` map cells.
    """
    batch, _, height, width = heatmap.shape
    peaks = get_local_maximum(heatmap, kernel).flatten(1)  # (B, hw)
    scores, index = peaks.topk(min(max_seeds, height * width), dim=1)
    seeds = []
    for b in range(batch):  # per image (seed counts differ)
        keep = index[b][scores[b] > threshold]
        ys, xs = keep // width, keep % width
        dy, dx = offsets[b, 0].flatten()[keep], offsets[b, 1].flatten()[keep]
        seed_y = (ys + dy).round().long().clamp(0, height - 1)
        seed_x = (xs + dx).round().long().clamp(0, width - 1)
        seeds.append(torch.stack([seed_y, seed_x], dim=1))
    return seeds


def seed_segment_mask(labels: Tensor, seeds: Sequence[Tensor],
                      num_segments: int) -> Tensor:
    """Seed segments: the segments that cover a seed (PSS Sec. 3.4).

    Args:
        labels (Tensor): (B, h, w) int64 segments (-1: none).
        seeds (Sequence[Tensor]): per image (n, 2) ``(y, x)`` cells.
        num_segments (int): L.

    Returns:
        Tensor: (B, L) bool.
    """
    is_seed = torch.zeros((labels.size(0), num_segments), dtype=torch.bool,
                          device=labels.device)
    for b, points in enumerate(seeds):  # per image
        hit = labels[b, points[:, 0], points[:, 1]]
        is_seed[b, hit[hit >= 0]] = True
    return is_seed


def resample_labels_to_output(labels: Tensor, img_shape: Tuple[int, int],
                              out_shape: Tuple[int, int],
                              stride: int) -> Tensor:
    """Nearest resampling of a stride-``stride`` label map of the padded
    input to an output size spanning ``img_shape`` (the geometry of
    ``resample_to_output``, nearest instead of bilinear).

    Args:
        labels (Tensor): (h, w) int64.
        img_shape (tuple[int, int]): Valid input (H, W).
        out_shape (tuple[int, int]): Output (H, W).
        stride (int): Stride of ``labels``.

    Returns:
        Tensor: (H_out, W_out) int64.
    """
    height, width = labels.shape
    gy = output_sample_coordinates(out_shape[0], img_shape[0], height,
                                   stride, labels.device, torch.float32)
    gx = output_sample_coordinates(out_shape[1], img_shape[1], width, stride,
                                   labels.device, torch.float32)
    grid = torch.stack((gx[None, :].expand(len(gy), len(gx)),
                        gy[:, None].expand(len(gy), len(gx))), -1)
    # float32 holds integer ids exactly up to 2^24
    return F.grid_sample(
        labels[None, None].float(),
        grid[None],
        mode='nearest',
        padding_mode='border',
        align_corners=False)[0, 0].round().long()


def initial_grid_labels(batch_img_metas: Sequence[dict], map_size: Tuple[int,
                                                                         int],
                        num_clusters: int, stride: int, device) -> Tensor:
    """(B, h, w) spatial-grid k-means start over each image's valid region
    (``img_shape``), -1 on padding."""
    labels = torch.full((len(batch_img_metas), *map_size), -1,
                        dtype=torch.long, device=device)
    for b, meta in enumerate(batch_img_metas):  # per image (valid sizes)
        rows = min(-(-meta['img_shape'][0] // stride), map_size[0])
        cols = min(-(-meta['img_shape'][1] // stride), map_size[1])
        labels[b, :rows, :cols] = grid_cluster_labels(rows, cols,
                                                      num_clusters, device)
    return labels


def pss_segments(embeddings: Tensor,
                 classify: Callable[[Tensor], Tensor],
                 batch_img_metas: Sequence[dict],
                 num_things: int,
                 seed_heatmap: Optional[Tensor] = None,
                 seed_offsets: Optional[Tensor] = None,
                 test_cfg: Optional[dict] = None,
                 stride: int = 4) -> Dict[str, Tensor]:
    """Segments of PSS inference on the embedding map (before resizing).

    1. spherical k-means, K = ``num_clusters`` from a grid (Sec. 3.1);
    2. dynamic partitioning (Sec. 3.3) when ``dynamic_partition``;
    3. prototypes and their classes: ``classify`` maps (B, L, C)
       prototypes to (B, L, num_classes) scores (Sec. 3.2), argmax;
    4. seed segments (Sec. 3.4) when ``use_seeds``;
    5. greedy merging (Eq. 3; seeded variant with seeds), per image.

    Args:
        embeddings (Tensor): (B, C, h, w) unit-length embeddings.
        classify (Callable): prototypes (B, L, C) -> scores (B, L, classes).
        batch_img_metas (Sequence[dict]): With ``img_shape``.
        num_things (int): Thing classes (labels below it).
        seed_heatmap (Tensor, optional): (B, 1, h, w).
        seed_offsets (Tensor, optional): (B, 2, h, w).
        test_cfg (dict, optional): Keys of :data:`PSS_TEST_CFG`.
        stride (int): Stride of the maps. Defaults to 4.

    Returns:
        dict[str, Tensor]: ``labels`` (B, h, w) merged segment of each cell
        (-1 none), ``segment_labels`` (B, L) classes, ``is_seed`` (B, L)
        whether each (owner) segment is a seed segment.
    """
    cfg = dict(PSS_TEST_CFG)
    cfg.update(test_cfg or {})
    embeddings = F.normalize(embeddings, dim=1)
    num_clusters = cfg['num_clusters']
    init = initial_grid_labels(batch_img_metas, embeddings.shape[-2:],
                               num_clusters, stride, embeddings.device)
    labels, _ = spherical_kmeans(embeddings, init, num_clusters,
                                 cfg['kmeans_iters'], cfg['chunk_pixels'])
    if cfg['dynamic_partition']:
        labels, num_segments = dynamic_partition(
            labels, embeddings, num_clusters, cfg['partition_threshold'],
            cfg['partition_splits'], cfg['kmeans_iters'],
            cfg['chunk_pixels'])
    else:
        labels, num_segments = compact_labels(labels, num_clusters)
    sums, counts = segment_sums(labels, embeddings, num_segments, -1)
    scores = classify(F.normalize(sums, dim=-1))
    segment_labels = scores.argmax(dim=-1)
    segment_labels = torch.where(counts > 0, segment_labels,
                                 torch.full_like(segment_labels, -1))
    use_seeds = cfg['use_seeds'] and seed_heatmap is not None
    if use_seeds:
        seeds = find_seeds(seed_heatmap, seed_offsets, cfg['seed_threshold'],
                           cfg['seed_kernel'], cfg['max_seeds'])
        is_seed = seed_segment_mask(labels, seeds, num_segments)
    else:
        is_seed = torch.zeros_like(counts, dtype=torch.bool)
    merged_labels = torch.full_like(labels, -1)
    owner_is_seed = torch.zeros_like(is_seed)
    for b in range(labels.size(0)):  # per image: merging is greedy
        owner, owner_seed = merge_segments(
            sums[b],
            segment_labels[b],
            (segment_labels[b] >= 0) & (segment_labels[b] < num_things),
            cfg['merge_threshold'],
            is_seed[b],
            seeded=use_seeds,
            neighbour_same_class=cfg['neighbour_same_class'])
        valid = labels[b] >= 0
        merged_labels[b][valid] = owner[labels[b][valid]]
        owner_is_seed[b] = owner_seed
    return dict(
        labels=merged_labels,
        segment_labels=segment_labels,
        is_seed=owner_is_seed)


def pss_panoptic_predict(embeddings: Tensor,
                         classify: Callable[[Tensor], Tensor],
                         batch_img_metas: Sequence[dict],
                         num_things: int,
                         num_stuff: int,
                         seed_heatmap: Optional[Tensor] = None,
                         seed_offsets: Optional[Tensor] = None,
                         test_cfg: Optional[dict] = None,
                         rescale: bool = True,
                         stride: int = 4) -> List[PixelData]:
    """Panoptic maps of PSS (Sec. 3, Appendix A.7 post-processing).

    :func:`pss_segments`, then per image the merged segment map is
    resampled (nearest) to ``ori_shape`` (``rescale``) or ``img_shape``;
    there, thing segments that are not seed segments and have fewer than
    ``thing_area_limit`` pixels become void, and
    :func:`segments_to_panoptic` voids stuff regions under
    ``stuff_area_limit`` pixels (Appendix A.7: 4096 and 2048).

    Args:
        embeddings (Tensor): (B, C, h, w) unit-length embeddings.
        classify (Callable): prototypes (B, L, C) -> scores (B, L, classes).
        batch_img_metas (Sequence[dict]): ``img_shape``, ``ori_shape``.
        num_things (int): Thing classes.
        num_stuff (int): Stuff classes.
        seed_heatmap (Tensor, optional): (B, 1, h, w).
        seed_offsets (Tensor, optional): (B, 2, h, w).
        test_cfg (dict, optional): Keys of :data:`PSS_TEST_CFG`.
        rescale (bool): Output at ``ori_shape``. Defaults to True.
        stride (int): Stride of the maps. Defaults to 4.

    Returns:
        list[PixelData]: ``sem_seg`` (1, H, W) int64 panoptic maps
        (``label + id * INSTANCE_OFFSET``, void ``num_things + num_stuff``).
    """
    cfg = dict(PSS_TEST_CFG)
    cfg.update(test_cfg or {})
    segments = pss_segments(embeddings, classify, batch_img_metas,
                            num_things, seed_heatmap, seed_offsets, cfg,
                            stride)
    num_classes = num_things + num_stuff
    results = []
    for b, meta in enumerate(batch_img_metas):  # per image (sizes differ)
        out_shape = meta['ori_shape'] if rescale else meta['img_shape']
        out_labels = resample_labels_to_output(segments['labels'][b],
                                               meta['img_shape'][:2],
                                               out_shape[:2], stride)
        labels = segments['segment_labels'][b]
        area = torch.bincount(
            out_labels[out_labels >= 0], minlength=labels.numel())
        small_thing = (labels >= 0) & (labels < num_things) & \
            ~segments['is_seed'][b] & (area < cfg['thing_area_limit'])
        labels = torch.where(small_thing, torch.full_like(labels, -1),
                             labels)
        panoptic = segments_to_panoptic(
            out_labels[None],
            labels[None],
            num_things,
            num_classes,
            stuff_area_limit=cfg['stuff_area_limit'])
        results.append(PixelData(sem_seg=panoptic))
    return results
