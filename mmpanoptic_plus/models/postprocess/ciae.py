# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE inference: raw head outputs -> panoptic maps (Gao et al., "Learning
Category- and Instance-Aware Pixel Embedding for Fast Panoptic
Segmentation", Sec. IV-C, Eq. 16, Fig. 4).

Proposals after NMS (:func:`select_query_slots`, FCOS's ``score x
centerness``), query embeddings ``V`` = the memory embeddings of the stuff
classes and the pixel embedding at each proposal's location, ``S = P V^T``,
remote filtering with the predicted boxes, per-pixel argmax, instance
classes from the box classifier, small stuff regions removed
(:func:`segments_to_panoptic`).
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmpanoptic_plus.utils.config_utils import merge_test_cfg
from mmpanoptic_plus.models.utils import (expand_boxes,
                                          grid_sample_coordinates,
                                          nms_iou_threshold, pixels_in_boxes,
                                          resample_to_output,
                                          select_query_slots)
from .panoptic_fusion import segments_to_panoptic

#: Defaults of :func:`ciae_panoptic_predict`. Proposals as FCOS (score 0.05,
#: top 1000 per level, NMS 0.6, 100 per image); remote filtering on; stuff
#: regions under 4096 px removed (Sec. IV-C).
CIAE_TEST_CFG = dict(
    score_thr=0.05,
    nms_pre=1000,
    nms=dict(type='nms', iou_threshold=0.6),
    max_per_img=100,
    min_bbox_size=0,
    agnostic_iou_thr=None,
    instance_score_thr=0.0,
    remote_filtering=True,
    box_expand=1.0,
    remote_similarity=0.0,
    stuff_area_limit=4096,
    chunk_pixels=1 << 18)


def merge_ciae_test_cfg(*overrides: Optional[dict]) -> dict:
    """:data:`CIAE_TEST_CFG` updated by each of ``overrides`` in turn.

    Raises:
        KeyError: An override has a key :data:`CIAE_TEST_CFG` does not.
    """
    return merge_test_cfg(CIAE_TEST_CFG, *overrides, name='CIAE')


def query_embeddings_at_locations(pixel_embeds: Tensor, levels: Tensor,
                                  cells: Tensor, strides: Sequence[int],
                                  stride: int = 4) -> Tensor:
    """The embedding of ``P = L2norm(up4(P' + P''))`` at the location that
    produced each proposal (Sec. IV-C: "if the proposed instance is detected
    from the location (x, y), then we use P_{x,y}").

    The location of cell ``(i, j)`` of level ``l`` is the input pixel ``(x,
    y) = (s_l j + s_l // 2, s_l i + s_l // 2)``; the upsampled map's value
    there is the bilinear sample of the stride-``stride`` map at the pixel
    centre ``(x + 0.5, y + 0.5)`` (``F.interpolate(align_corners=False)``
    and ``grid_sample`` agree), so the full-resolution map is never built.

    Args:
        pixel_embeds (Tensor): (B, E, h, w) ``P' + P''`` at ``stride``.
        levels (Tensor): (B, N) int64 level index of each proposal (-1
            padding).
        cells (Tensor): (B, N, 2) int64 ``(y, x)`` cell on that level.
        strides (Sequence[int]): Strides of the proposal levels.
        stride (int): Stride of ``pixel_embeds``. Defaults to 4.

    Returns:
        Tensor: (B, N, E) unit embeddings (padding slots: the location of
        cell (0, 0) of level 0, to be masked by the caller).
    """
    height, width = pixel_embeds.shape[-2:]
    level_strides = levels.new_tensor(list(strides)).to(
        pixel_embeds.dtype)[levels.clamp(min=0)]
    cells = cells.clamp(min=0).to(pixel_embeds.dtype)
    offset = torch.div(level_strides, 2, rounding_mode='floor')
    ys = cells[..., 0] * level_strides + offset + 0.5
    xs = cells[..., 1] * level_strides + offset + 0.5
    grid = torch.stack((grid_sample_coordinates(xs, stride, width),
                        grid_sample_coordinates(ys, stride, height)), -1)
    sampled = F.grid_sample(
        pixel_embeds,
        grid[:, None],
        mode='bilinear',
        padding_mode='border',
        align_corners=False)  # (B, E, 1, N)
    return F.normalize(sampled[:, :, 0].transpose(1, 2), dim=-1)


def assign_pixels(pixel_embeds: Tensor,
                  queries: Tensor,
                  boxes: Optional[Tensor],
                  num_stuff: int,
                  remote_similarity: float = 0.0,
                  chunk_pixels: int = 1 << 18) -> Tensor:
    """Per-pixel argmax of ``S = P V^T`` with remote filtering (Eq. 16,
    Sec. IV-B), for one image.

    ``P`` is L2-normalised (Eq. 16 compares unit vectors). With the
    paper's ``remote_similarity = 0`` the normalisation is skipped: dividing
    all of a pixel's scores (the filtered zeros included) by its norm
    ``|p| > 0`` does not change their argmax, so the result is the same. The
    similarity to instance query ``k`` is ``remote_similarity`` at pixels
    whose centre lies outside ``boxes[k]``; stuff queries are never
    filtered. Computed over bands of rows of at most ``chunk_pixels``
    pixels, in a (pixel, query) layout (one matrix product and one argmax
    over the contiguous query axis per band; memory stays at ``K x
    chunk_pixels``).

    Args:
        pixel_embeds (Tensor): (E, H, W) unnormalised embeddings at the
            output resolution.
        queries (Tensor): (K, E) unit queries, the ``num_stuff`` stuff
            queries first, then the instances.
        boxes (Tensor, optional): (K - num_stuff, 4) x1y1x2y2 instance boxes
            in output pixels; None: no filtering.
        num_stuff (int): Stuff queries.
        remote_similarity (float): Similarity outside a box. Defaults to 0.
        chunk_pixels (int): Pixels per band. Defaults to 2 ** 18.

    Returns:
        Tensor: (H, W) int64 index of the most similar query (ties to the
        lowest index), -1 without queries.
    """
    _, height, width = pixel_embeds.shape
    if len(queries) == 0:
        return torch.full((height, width),
                          -1,
                          dtype=torch.long,
                          device=pixel_embeds.device)
    filtering = boxes is not None and len(boxes) > 0
    pixels = pixel_embeds
    if filtering and remote_similarity != 0:
        pixels = F.normalize(pixel_embeds, dim=0)
    queries = queries.to(pixels.dtype)
    rows = max(1, chunk_pixels // max(width, 1))
    index = torch.empty((height, width),
                        dtype=torch.long,
                        device=pixels.device)
    for top in range(0, height, rows):
        band = pixels[:, top:top + rows]
        num_rows = band.size(1)
        scores = band.flatten(1).T @ queries.T  # (h W, K)
        if filtering:
            outside = ~pixels_in_boxes(
                boxes.to(pixels.dtype), num_rows, width, top=top)
            scores[:, num_stuff:] = scores[:, num_stuff:].masked_fill(
                outside.flatten(1).T, remote_similarity)
        index[top:top + rows] = scores.argmax(dim=1).view(num_rows, width)
    return index


def ciae_panoptic_predict(cls_probs: Sequence[Tensor],
                          centernesses: Sequence[Tensor],
                          bbox_preds: Sequence[Tensor],
                          pixel_embeds: Tensor,
                          stuff_queries: Tensor,
                          batch_img_metas: Sequence[dict],
                          strides: Sequence[int],
                          num_things: int,
                          num_stuff: int,
                          test_cfg: Optional[dict] = None,
                          rescale: bool = True,
                          stride: int = 4) -> List[Dict[str, object]]:
    """Panoptic maps from CIAE's raw predictions for a batch (Sec. IV-C).

    1. Proposals: :func:`select_query_slots` (class probability above
       ``score_thr``, score x sigmoid(centerness), class-wise NMS,
       ``max_per_img``), batched; proposals scoring below
       ``instance_score_thr`` are dropped (0 by default: none; a declared
       option, the paper states no threshold after NMS).
    2. Queries: the stuff classes' memory embeddings and, per proposal, the
       embedding at its location (:func:`query_embeddings_at_locations`),
       gathered for the whole batch at once.
    3. Per image (output sizes differ): ``P' + P''`` resampled from stride
       4 straight to the output size (the valid ``img_shape`` part,
       :func:`resample_to_output`, one bilinear step for the paper's ``up4``
       and the resize to ``ori_shape``), L2-normalised, ``S = P V^T`` and
       its argmax with the predicted boxes as remote filter
       (:func:`assign_pixels`; boxes scaled by ``box_expand``, 1.0 by
       default: the paper expands ground-truth boxes in training only).
    4. :func:`segments_to_panoptic`: instance segments take their box class,
       stuff segments their class; stuff below ``stuff_area_limit`` pixels
       becomes void.

    Args:
        cls_probs (Sequence[Tensor]): Per level (B, T, H_l, W_l) thing
            probabilities (after sigmoid).
        centernesses (Sequence[Tensor]): Per level (B, 1, H_l, W_l) logits.
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb in
            input pixels.
        pixel_embeds (Tensor): (B, E, h, w) ``P' + P''`` at ``stride``.
        stuff_queries (Tensor): (num_stuff, E) memory embeddings of the
            stuff classes, in class order.
        batch_img_metas (Sequence[dict]): ``img_shape`` and, when
            ``rescale``, ``ori_shape`` and ``scale_factor`` (w, h).
        strides (Sequence[int]): Strides of the proposal levels.
        num_things (int): Thing classes.
        num_stuff (int): Stuff classes.
        test_cfg (dict, optional): Overrides of :data:`CIAE_TEST_CFG`.
        rescale (bool): Results at ``ori_shape`` (True) or ``img_shape``.
        stride (int): Stride of ``pixel_embeds``. Defaults to 4.

    Returns:
        list[dict]: Per image ``pan_results`` (PixelData ``sem_seg`` (1, H,
        W) int64, ``label + instance_id * INSTANCE_OFFSET``, void =
        ``num_things + num_stuff``) and ``ins_results`` (InstanceData
        ``bboxes`` (output pixels), ``scores``, ``labels`` of the kept
        proposals).
    """
    cfg = merge_ciae_test_cfg(test_cfg)
    if stuff_queries.shape != (num_stuff, pixel_embeds.size(1)):
        raise ValueError(f'stuff_queries {tuple(stuff_queries.shape)} must '
                         f'be {(num_stuff, pixel_embeds.size(1))}')
    img_shapes = [tuple(meta['img_shape'][:2]) for meta in batch_img_metas]
    slots = select_query_slots(
        cls_probs,
        centernesses,
        bbox_preds,
        strides,
        img_shapes=img_shapes,
        score_thr=cfg['score_thr'],
        nms_pre=cfg['nms_pre'],
        iou_threshold=nms_iou_threshold(cfg['nms']),
        max_per_img=cfg['max_per_img'],
        min_bbox_size=cfg['min_bbox_size'],
        agnostic_iou_thr=cfg['agnostic_iou_thr'])
    instance_queries = query_embeddings_at_locations(
        pixel_embeds, slots.levels, slots.cells, strides, stride)
    stuff_queries = F.normalize(stuff_queries.to(pixel_embeds.dtype), dim=1)
    stuff_labels = torch.arange(
        num_things, num_things + num_stuff, device=pixel_embeds.device)
    results = []
    for img_id, meta in enumerate(batch_img_metas):
        count = int(slots.num_valid[img_id])
        keep = slots.scores[img_id, :count] >= cfg['instance_score_thr']
        bboxes = slots.bboxes[img_id, :count][keep]
        scores = slots.scores[img_id, :count][keep]
        labels = slots.labels[img_id, :count][keep]
        img_shape = img_shapes[img_id]
        out_shape = tuple(meta['ori_shape'][:2]) if rescale else img_shape
        if rescale:
            scale = bboxes.new_tensor(
                tuple(meta.get('scale_factor', (1.0, 1.0)))).repeat(2)
            bboxes = bboxes / scale
        embeds = resample_to_output(pixel_embeds[img_id], img_shape,
                                    out_shape, stride)
        queries = torch.cat(
            (stuff_queries, instance_queries[img_id, :count][keep]))
        filter_boxes = None
        if cfg['remote_filtering']:
            filter_boxes = expand_boxes(bboxes, cfg['box_expand'])
        segments = assign_pixels(embeds, queries, filter_boxes, num_stuff,
                                 cfg['remote_similarity'],
                                 cfg['chunk_pixels'])
        pan = segments_to_panoptic(
            segments[None], [torch.cat((stuff_labels, labels))],
            num_things,
            num_things + num_stuff,
            stuff_area_limit=cfg['stuff_area_limit'])[0]
        results.append(
            dict(
                pan_results=PixelData(sem_seg=pan[None]),
                ins_results=InstanceData(
                    bboxes=bboxes, scores=scores, labels=labels)))
    return results

