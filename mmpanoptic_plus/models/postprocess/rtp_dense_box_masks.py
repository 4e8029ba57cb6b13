# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Parameter-free mask construction of RealTimePanoptic (RTP).

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections",
CVPR 2020, Sec. 3.3 ("mask construction"): every stride-4 pixel carries the
box that the FPN level chosen by the *levelness* map predicts there (the dense
box map); a query box ``j`` (a detection kept by NMS) gets the localization
probability ``P_loc_j(x, y) = IoU(dense_box(x, y), query_box_j)``, its mask
probability is ``M_j = P_loc_j * P_sem(class_j)`` and its mask is
``M_j >= sigma``, upsampled to the output size.

Two variants are supported (``iou_type`` / ``mask_thr``):

- ``'iou'`` with ``sigma = 0.3``: the paper's (plain IoU). **Default**, as
  the project takes paper hyper-parameters as defaults; the authors' released
  code is inference-only (no training recipe), so its threshold cannot be
  re-validated against training here.
- ``'giou'`` with ``sigma = 0.4``: the authors' released inference code
  (TRI-ML/realtime_panoptic, ``PanopticFromDenseBox``), which scores boxes by
  a GIoU whose IoU term is Laplace-smoothed, ``(I + 1) / (U + 1) - (C - U) /
  C`` (``C`` the smallest enclosing box), thresholds at 0.4 and thresholds
  *after* bilinear upsampling of the soft mask (as done here for both
  variants).

The paper's appendix B alternative without levelness (``use_levelness=False``)
takes, at each pixel, the maximum over FPN levels of the IoU between that
level's box and the query box. Pixels whose levelness argmax is the background
channel get no box (``P_loc = 0``); the released code instead takes the argmax
over the level channels only, giving every pixel a box.

The geometry (dense box map, ``P_loc`` IoU, resampling) lives in
:mod:`mmpanoptic_plus.models.utils`, shared with the mask loss; this module
holds the inference mask construction on top of it.

All functions are pure tensor functions. No Python loop runs over pixels, and
none does tensor work per query: :func:`rtp_instance_masks` loops over
*chunks* of queries to bound memory at 1024x2048 inputs, and
:func:`threshold_upsampled_masks` over batches of crops (slicing each query's
crop out of its batch is the only per-query step).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.models.utils import (IOU_TYPES, box_iou_map,
                                          output_sample_coordinates)
from mmpanoptic_plus.structures import CroppedMasks


def box_localization_map(query_bboxes: Tensor,
                         dense_boxes: Tensor,
                         valid: Optional[Tensor] = None,
                         iou_type: str = 'iou') -> Tensor:
    """``P_loc`` of the paper (Sec. 3.3): IoU of each pixel's dense box with
    each query box, maximised over the K candidates of a pixel (K = 1 with
    levelness; all levels in appendix B), 0 where ``valid`` is False.

    Args:
        query_bboxes (Tensor): (n, 4) x1y1x2y2.
        dense_boxes (Tensor): (K, 4, h, w) of one image.
        valid (Tensor, optional): (h, w) bool.
        iou_type (str): ``'iou'`` or ``'giou'``.

    Returns:
        Tensor: (n, h, w).
    """
    num_candidates, _, h, w = dense_boxes.shape
    flat = dense_boxes.reshape(num_candidates, 4, h * w)
    loc = box_iou_map(query_bboxes, flat[0], iou_type)
    # a running maximum keeps memory at one (n, h * w) map per level
    for k in range(1, num_candidates):
        loc = torch.maximum(loc, box_iou_map(query_bboxes, flat[k], iou_type))
    if valid is not None:
        loc = loc * valid.reshape(1, h * w).to(loc.dtype)
    return loc.view(-1, h, w)


def rtp_mask_probabilities(query_bboxes: Tensor,
                           query_labels: Tensor,
                           dense_boxes: Tensor,
                           sem_probs: Tensor,
                           valid: Optional[Tensor] = None,
                           iou_type: str = 'iou') -> Tensor:
    """Soft masks ``M_j = P_loc_j * P_sem(class_j)`` (paper Sec. 3.3) at the
    dense map's resolution, for one image.

    Classes are ordered things first, so thing label ``t`` is semantic channel
    ``t``. Pure tensor ops without data-dependent control flow (traceable for
    export).

    Args:
        query_bboxes (Tensor): (n, 4) x1y1x2y2 in image pixels.
        query_labels (Tensor): (n,) thing labels.
        dense_boxes (Tensor): (K, 4, h, w), see :func:`build_dense_boxes`.
        sem_probs (Tensor): (C, h, w) semantic softmax.
        valid (Tensor, optional): (h, w) bool.
        iou_type (str): ``'iou'`` (paper) or ``'giou'`` (released code).

    Returns:
        Tensor: (n, h, w) mask probabilities.
    """
    loc = box_localization_map(query_bboxes, dense_boxes, valid, iou_type)
    return loc * sem_probs[query_labels]


def threshold_upsampled_masks(soft_masks: Tensor,
                              mask_thr: float,
                              img_shape: Tuple[int, int],
                              out_shape: Tuple[int, int],
                              stride: int = 4,
                              max_elements: Optional[int] = None
                              ) -> CroppedMasks:
    """``resample_to_output(soft_masks) >= mask_thr`` without resampling the
    whole output for every mask.

    A bilinear sample is a convex combination of its 4 neighbouring cells, so
    it can reach ``mask_thr`` only next to a cell that does: each mask is
    resampled only over the output pixels whose neighbourhood holds such a
    cell (its crop), all masks of a batch at once with crops padded to the
    largest one. Exact, not an approximation.

    Args:
        soft_masks (Tensor): (n, h, w) soft masks on the padded input.
        mask_thr (float): Threshold sigma.
        img_shape (tuple[int, int]): Valid (H_img, W_img) of the input.
        out_shape (tuple[int, int]): (H_out, W_out).
        stride (int): Stride of ``soft_masks``. Defaults to 4.
        max_elements (int, optional): Upper bound of padded crop elements
            resampled at once (masks are split into smaller batches beyond
            it; a single mask always goes through). Defaults to ``n * h *
            w``, so memory stays proportional to the soft masks.

    Returns:
        CroppedMasks: n masks of size ``out_shape``; crop boxes are
        conservative (they may hold empty rows or columns).
    """
    num_masks, h, w = soft_masks.shape
    out_h, out_w = out_shape
    device = soft_masks.device
    above = soft_masks >= mask_thr
    rows_hit = above.any(dim=2)  # (n, h)
    cols_hit = above.any(dim=1)  # (n, w)
    has_any = rows_hit.any(dim=1)

    def axis_bounds(hit: Tensor, map_size: int, img_size: int,
                    out_size: int) -> Tuple[Tensor, Tensor]:
        # first / last cell at or above threshold, widened by one cell
        cells = torch.arange(map_size, device=device)
        first = torch.where(hit, cells, map_size).min(dim=1).values - 1
        last = torch.where(hit, cells, -1).max(dim=1).values + 1
        # output pixel i samples cell coordinate u = (i + .5) * scale - .5
        # and reads cells floor(u) and floor(u) + 1 (border-clamped): one of
        # them is a hit only if first <= u < last
        scale = img_size / (out_size * stride)
        start = torch.floor((first.to(torch.float64) + 0.5) / scale - 0.5)
        stop = torch.ceil((last.to(torch.float64) + 0.5) / scale - 0.5) + 1
        start = start.clamp(0, out_size).long()
        stop = stop.clamp(0, out_size).long()
        return start, torch.maximum(stop, start)

    y0, y1 = axis_bounds(rows_hit, h, img_shape[0], out_h)
    x0, x1 = axis_bounds(cols_hit, w, img_shape[1], out_w)
    boxes = torch.stack((x0, y0, x1, y1), 1)
    boxes[~has_any] = 0
    crop_h, crop_w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    crops: List[Optional[Tensor]] = [
        torch.zeros((0, 0), dtype=torch.bool, device=device)
    ] * num_masks
    # largest crops first so that each batch pads to similar sizes
    order = torch.argsort(crop_h * crop_w, descending=True)
    order = order[has_any[order]]
    if len(order) == 0:
        return CroppedMasks(boxes, crops, (out_h, out_w))
    gy_full = output_sample_coordinates(out_h, img_shape[0], h, stride,
                                        device, soft_masks.dtype)
    gx_full = output_sample_coordinates(out_w, img_shape[1], w, stride,
                                        device, soft_masks.dtype)
    if max_elements is None:
        max_elements = num_masks * h * w
    order_list = order.tolist()
    crop_h_list = crop_h[order].tolist()
    crop_w_list = crop_w[order].tolist()
    start = 0
    while start < len(order_list):
        # the first mask of a batch has the largest area; grow the batch while
        # its padded size stays under the budget
        stop = start + 1
        pad_h, pad_w = crop_h_list[start], crop_w_list[start]
        while stop < len(order_list):
            new_h = max(pad_h, crop_h_list[stop])
            new_w = max(pad_w, crop_w_list[stop])
            if (stop + 1 - start) * new_h * new_w > max_elements:
                break
            pad_h, pad_w, stop = new_h, new_w, stop + 1
        index = order[start:stop]
        rows = boxes[index, 1, None] + torch.arange(pad_h, device=device)
        cols = boxes[index, 0, None] + torch.arange(pad_w, device=device)
        gy = gy_full[rows.clamp(max=out_h - 1)]  # (m, pad_h)
        gx = gx_full[cols.clamp(max=out_w - 1)]  # (m, pad_w)
        grid = torch.stack((gx[:, None, :].expand(-1, pad_h, pad_w),
                            gy[:, :, None].expand(-1, pad_h, pad_w)), -1)
        sampled = F.grid_sample(
            soft_masks[index, None],
            grid,
            mode='bilinear',
            padding_mode='border',
            align_corners=False)[:, 0] >= mask_thr
        # the padding of smaller crops is cut off here
        for k, mask_index in enumerate(order_list[start:stop]):
            crops[mask_index] = sampled[k, :crop_h_list[start + k], :
                                        crop_w_list[start + k]].clone()
        start = stop
    return CroppedMasks(boxes, crops, (out_h, out_w))


def rtp_instance_masks(query_bboxes: Tensor,
                       query_labels: Tensor,
                       dense_boxes: Tensor,
                       sem_probs: Tensor,
                       valid: Optional[Tensor] = None,
                       img_shape: Optional[Tuple[int, int]] = None,
                       out_shape: Optional[Tuple[int, int]] = None,
                       stride: int = 4,
                       iou_type: str = 'iou',
                       mask_thr: float = 0.3,
                       chunk_size: int = 8) -> CroppedMasks:
    """Binary instance masks of RTP's parameter-free mask construction
    (paper Sec. 3.3) for one image.

    ``M_j = P_loc_j * P_sem(class_j)`` at stride 4, bilinearly resampled to
    ``out_shape`` (cropping the padding off ``img_shape``) and thresholded at
    ``mask_thr``. Defaults are the paper's (``'iou'``, 0.3); the released
    code's are ``iou_type='giou', mask_thr=0.4`` (see the module docstring).

    Queries are processed ``chunk_size`` at a time: the extra memory is a few
    ``chunk_size * h * w`` float maps (``P_loc`` and its temporaries; the
    resampled crops are bounded to ``chunk_size * h * w`` elements or one
    full-size mask by :func:`threshold_upsampled_masks`); the output holds
    crops only. Measured at 1024x2048 with 100 queries: about 3.6 MiB, i.e.
    7 ``h * w`` float maps, per query of the chunk (35 MiB at the default 8;
    larger chunks were not faster on a CPU).

    Args:
        query_bboxes (Tensor): (n, 4) x1y1x2y2 in input-image pixels.
        query_labels (Tensor): (n,) thing labels (= semantic channels).
        dense_boxes (Tensor): (K, 4, h, w), see :func:`build_dense_boxes`.
        sem_probs (Tensor): (C, h, w) semantic softmax at ``stride``.
        valid (Tensor, optional): (h, w) bool, pixels with a dense box.
        img_shape (tuple[int, int], optional): Valid (H, W) of the padded
            input. Defaults to ``(stride * h, stride * w)``.
        out_shape (tuple[int, int], optional): Output (H, W), e.g. the
            original image size. Defaults to ``img_shape``.
        stride (int): Stride of the dense maps. Defaults to 4.
        iou_type (str): ``'iou'`` (paper, default) or ``'giou'`` (released
            code).
        mask_thr (float): sigma. Defaults to 0.3 (paper).
        chunk_size (int): Queries per chunk. Defaults to 8.

    Returns:
        CroppedMasks: n masks of size ``out_shape`` (``.to_dense()`` gives
        (n, H_out, W_out) bool).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type must be one of {IOU_TYPES}, got '
                         f'{iou_type!r}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    h, w = dense_boxes.shape[-2:]
    if tuple(sem_probs.shape[-2:]) != (h, w):
        raise ValueError(
            f'semantic probabilities {tuple(sem_probs.shape)} and dense boxes '
            f'{tuple(dense_boxes.shape)} must share their (h, w)')
    if query_labels.numel() and (int(query_labels.min()) < 0 or int(
            query_labels.max()) >= sem_probs.size(0)):
        raise ValueError(
            f'query labels must lie in [0, {sem_probs.size(0)}) (things '
            f'first), got {query_labels.tolist()}')
    if img_shape is None:
        img_shape = (stride * h, stride * w)
    img_shape = tuple(img_shape)
    out_shape = img_shape if out_shape is None else tuple(out_shape)
    boxes, crops = [], []
    for start in range(0, len(query_bboxes), chunk_size):
        stop = start + chunk_size
        soft = rtp_mask_probabilities(query_bboxes[start:stop],
                                      query_labels[start:stop], dense_boxes,
                                      sem_probs, valid, iou_type)
        chunk = threshold_upsampled_masks(
            soft,
            mask_thr,
            img_shape,
            out_shape,
            stride,
            max_elements=chunk_size * h * w)
        boxes.append(chunk.boxes)
        crops.extend(chunk.crops)
    if boxes:
        boxes = torch.cat(boxes)
    else:
        boxes = torch.zeros((0, 4), dtype=torch.long,
                            device=query_bboxes.device)
    return CroppedMasks(boxes, crops, out_shape)
