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

All functions are pure tensor functions. No Python loop runs over pixels, and
none does tensor work per query: :func:`rtp_instance_masks` loops over
*chunks* of queries to bound memory at 1024x2048 inputs, and
:func:`threshold_upsampled_masks` over batches of crops (slicing each query's
crop out of its batch is the only per-query step).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.structures import CroppedMasks

IOU_TYPES = ('iou', 'giou')


def stride_grid_coordinates(height: int,
                            width: int,
                            stride: int,
                            device=None,
                            dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """Image coordinates of the cells of a stride-``stride`` map.

    Cell ``(i, j)`` sits at ``(x, y) = (stride * j + stride // 2, stride * i
    + stride // 2)``, the convention of FCOS and of mmdet's
    ``MlvlPointGenerator(offset=0.5)`` for even strides.

    Returns:
        tuple[Tensor, Tensor]: ``xs`` (width,) and ``ys`` (height,).
    """
    offset = stride // 2
    xs = torch.arange(width, device=device, dtype=dtype) * stride + offset
    ys = torch.arange(height, device=device, dtype=dtype) * stride + offset
    return xs, ys


def sample_level_regressions(bbox_preds: Sequence[Tensor],
                             strides: Sequence[int],
                             size: Tuple[int, int],
                             out_stride: int = 4) -> Tensor:
    """Sample every level's box regression at the pixels of a finer map.

    Each level ``l`` is a map of cells centred at ``s_l * j + s_l / 2``; it is
    bilinearly sampled (border-clamped) at the image coordinate of each output
    cell, ``out_stride * x + out_stride // 2``. When ``size * out_stride ==
    level size * s_l`` this equals ``F.interpolate(scale_factor=s_l /
    out_stride, mode='bilinear', align_corners=False)`` (what the released
    code does); ``grid_sample`` keeps the alignment exact also when padding
    made the level sizes round up.

    Args:
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb
            distances in image pixels.
        strides (Sequence[int]): Stride of each level.
        size (tuple[int, int]): (h, w) of the output map.
        out_stride (int): Stride of the output map. Defaults to 4.

    Returns:
        Tensor: (B, L, 4, h, w) ltrb distances.
    """
    if len(bbox_preds) != len(strides):
        raise ValueError(f'got {len(bbox_preds)} box regression levels but '
                         f'{len(strides)} strides')
    h, w = size
    first = bbox_preds[0]
    xs, ys = stride_grid_coordinates(h, w, out_stride, first.device,
                                     first.dtype)
    sampled = []
    for bbox_pred, stride in zip(bbox_preds, strides):
        if bbox_pred.dim() != 4 or bbox_pred.size(1) != 4:
            raise ValueError('box regressions must be (B, 4, H_l, W_l), got '
                             f'{tuple(bbox_pred.shape)}')
        level_h, level_w = bbox_pred.shape[-2:]
        # grid_sample (align_corners=False) puts cell centres at normalized
        # (2 * j + 1) / W - 1; a cell centre at image x = s * (j + 0.5) hence
        # maps to 2 * x / (s * W) - 1.
        grid_x = 2 * xs / (stride * level_w) - 1
        grid_y = 2 * ys / (stride * level_h) - 1
        grid = torch.stack(
            (grid_x[None, :].expand(h, w), grid_y[:, None].expand(h, w)), -1)
        grid = grid[None].expand(bbox_pred.size(0), h, w, 2)
        sampled.append(
            F.grid_sample(
                bbox_pred,
                grid,
                mode='bilinear',
                padding_mode='border',
                align_corners=False))
    return torch.stack(sampled, 1)


def build_dense_boxes(bbox_preds: Sequence[Tensor],
                      strides: Sequence[int],
                      levelness_logits: Optional[Tensor] = None,
                      size: Optional[Tuple[int, int]] = None,
                      use_levelness: bool = True,
                      out_stride: int = 4) -> Tuple[Tensor, Tensor]:
    """Dense box map of RTP (paper Sec. 3.3; appendix B without levelness).

    With levelness, pixel ``(y, x)`` of the stride-4 map takes the box that
    level ``argmax_c levelness[c] - 1`` predicts there, anchored at the
    pixel's own image coordinate ``(X, Y) = (4x + 2, 4y + 2)``: ``(X - l, Y -
    t, X + r, Y + b)``. Pixels whose levelness argmax is channel 0
    (background) get no box (``valid`` False, hence ``P_loc = 0``).
    Without levelness every level's box is kept (``K = L`` candidates per
    pixel) and all pixels are valid; :func:`box_localization_map` then takes
    the maximum IoU over the candidates.

    Args:
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb
            distances in image pixels.
        strides (Sequence[int]): Stride of each level, e.g. (8, 16, 32, 64,
            128).
        levelness_logits (Tensor, optional): (B, L + 1, h, w) logits at
            ``out_stride``, channel 0 = background. Required when
            ``use_levelness``.
        size (tuple[int, int], optional): (h, w) of the dense map; defaults
            to the levelness size. Required without levelness.
        use_levelness (bool): Pick one level per pixel by levelness (paper)
            or keep all levels (appendix B). Defaults to True.
        out_stride (int): Stride of the dense map. Defaults to 4.

    Returns:
        tuple[Tensor, Tensor]:

        - boxes (Tensor): (B, K, 4, h, w) x1y1x2y2 in image pixels, K = 1
          with levelness, L without.
        - valid (Tensor): (B, h, w) bool, False where no box exists.
    """
    num_levels = len(bbox_preds)
    if use_levelness:
        if levelness_logits is None:
            raise ValueError('use_levelness=True needs levelness_logits')
        if levelness_logits.dim() != 4 or \
                levelness_logits.size(1) != num_levels + 1:
            raise ValueError(
                f'levelness logits must be (B, {num_levels + 1}, h, w) for '
                f'{num_levels} levels (channel 0 = background), got '
                f'{tuple(levelness_logits.shape)}')
        size = tuple(levelness_logits.shape[-2:])
    elif size is None:
        if levelness_logits is None:
            raise ValueError('without levelness, pass size=(h, w)')
        size = tuple(levelness_logits.shape[-2:])
    h, w = size
    level_ltrb = sample_level_regressions(bbox_preds, strides, (h, w),
                                          out_stride)
    batch_size = level_ltrb.size(0)
    if use_levelness:
        choice = levelness_logits.argmax(dim=1)  # (B, h, w), 0 = background
        valid = choice > 0
        level_index = (choice - 1).clamp(min=0)
        index = level_index[:, None, None].expand(batch_size, 1, 4, h, w)
        ltrb = level_ltrb.gather(1, index)  # (B, 1, 4, h, w)
    else:
        ltrb = level_ltrb
        valid = torch.ones((batch_size, h, w),
                           dtype=torch.bool,
                           device=level_ltrb.device)
    xs, ys = stride_grid_coordinates(h, w, out_stride, ltrb.device,
                                     ltrb.dtype)
    xs = xs.view(1, 1, 1, w)
    ys = ys.view(1, 1, h, 1)
    boxes = torch.stack((xs - ltrb[:, :, 0], ys - ltrb[:, :, 1],
                         xs + ltrb[:, :, 2], ys + ltrb[:, :, 3]), 2)
    return boxes, valid


def box_iou_map(query_bboxes: Tensor,
                dense_bboxes: Tensor,
                iou_type: str = 'iou',
                eps: float = 1e-6) -> Tensor:
    """Pairwise IoU between query boxes and a dense set of boxes.

    ``'iou'`` is the plain IoU (paper); ``'giou'`` is the released code's
    GIoU with a Laplace-smoothed IoU term, ``(I + 1) / (U + 1) - (C - U) /
    C``, in (-1, 1]. mmdet's ``bbox_overlaps`` is deliberately not used: it
    has no smoothing term, and it lays its output out as (n, P, ...)
    intermediates where this reads the dense boxes as (4, P) rows.

    Args:
        query_bboxes (Tensor): (n, 4) x1y1x2y2.
        dense_bboxes (Tensor): (4, P) x1y1x2y2 as rows.
        iou_type (str): ``'iou'`` or ``'giou'``.
        eps (float): Guards empty unions / enclosing boxes.

    Returns:
        Tensor: (n, P).
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type must be one of {IOU_TYPES}, got '
                         f'{iou_type!r}')
    qx1, qy1, qx2, qy2 = (c[:, None] for c in query_bboxes.unbind(1))
    dx1, dy1, dx2, dy2 = (c[None, :] for c in dense_bboxes.unbind(0))
    inter = (torch.minimum(qx2, dx2) - torch.maximum(qx1, dx1)).clamp_(min=0)
    inter = inter * (torch.minimum(qy2, dy2) -
                     torch.maximum(qy1, dy1)).clamp_(min=0)
    query_area = (qx2 - qx1).clamp(min=0) * (qy2 - qy1).clamp(min=0)
    dense_area = (dx2 - dx1).clamp(min=0) * (dy2 - dy1).clamp(min=0)
    union = query_area + dense_area - inter
    if iou_type == 'iou':
        return inter / union.clamp(min=eps)
    enclose = (torch.maximum(qx2, dx2) - torch.minimum(qx1, dx1)).clamp_(
        min=0)
    enclose = enclose * (torch.maximum(qy2, dy2) -
                         torch.minimum(qy1, dy1)).clamp_(min=0)
    return (inter + 1) / (union + 1) - (enclose - union) / (enclose + eps)


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


def _output_sample_coords(out_size: int, img_size: int, map_size: int,
                          stride: int, device, dtype) -> Tensor:
    """grid_sample coordinates (align_corners=False) on a stride-``stride``
    map of ``map_size`` cells for each pixel of an output axis that spans the
    valid image extent ``img_size`` (input pixels) at ``out_size`` pixels."""
    centres = (torch.arange(out_size, device=device, dtype=dtype) +
               0.5) * (img_size / out_size)
    return 2 * centres / (stride * map_size) - 1


def resample_to_output(maps: Tensor,
                       img_shape: Tuple[int, int],
                       out_shape: Tuple[int, int],
                       stride: int = 4) -> Tensor:
    """Bilinearly resample stride-``stride`` maps of a padded input to an
    output size, in one step.

    The maps cover the padded input; only its top-left ``img_shape`` part is
    image. The result equals upsampling by ``stride`` (bilinear,
    ``align_corners=False``), cropping to ``img_shape`` and resizing to
    ``out_shape`` as a single bilinear map, e.g. back to ``ori_shape``.

    Args:
        maps (Tensor): (C, h, w).
        img_shape (tuple[int, int]): Valid (H_img, W_img) of the input.
        out_shape (tuple[int, int]): (H_out, W_out).
        stride (int): Stride of ``maps``. Defaults to 4.

    Returns:
        Tensor: (C, H_out, W_out).
    """
    h, w = maps.shape[-2:]
    gy = _output_sample_coords(out_shape[0], img_shape[0], h, stride,
                               maps.device, maps.dtype)
    gx = _output_sample_coords(out_shape[1], img_shape[1], w, stride,
                               maps.device, maps.dtype)
    grid = torch.stack((gx[None, :].expand(len(gy), len(gx)),
                        gy[:, None].expand(len(gy), len(gx))), -1)
    return F.grid_sample(
        maps[None],
        grid[None],
        mode='bilinear',
        padding_mode='border',
        align_corners=False)[0]


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
    gy_full = _output_sample_coords(out_h, img_shape[0], h, stride, device,
                                    soft_masks.dtype)
    gx_full = _output_sample_coords(out_w, img_shape[1], w, stride, device,
                                    soft_masks.dtype)
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


def _channel_argmax(values: Tensor) -> Tensor:
    """``values.argmax(dim=0)`` (first maximum) of a (C, ...) tensor, one
    contiguous channel at a time: on a CPU, a reduction over the outer,
    strided dimension is several times slower."""
    best = values[0].clone()
    index = torch.zeros(values.shape[1:], dtype=torch.long,
                        device=values.device)
    for channel in range(1, len(values)):
        index.masked_fill_(values[channel] > best, channel)
        torch.maximum(best, values[channel], out=best)
    return index


def semantic_labels_to_output(sem_logits: Tensor,
                              img_shape: Tuple[int, int],
                              out_shape: Tuple[int, int],
                              stride: int = 4,
                              chunk_pixels: int = 1 << 18,
                              max_boundary_fraction: float = 0.25) -> Tensor:
    """Argmax of the semantic logits bilinearly resampled to the output size
    (as :func:`resample_to_output`), mostly without resampling C channels.

    A bilinear sample is a convex combination of its 4 neighbouring cells: if
    class ``c`` is the (first) argmax at all 4, it is the argmax of the
    sample. Only output pixels whose neighbours disagree (class boundaries)
    are interpolated, ``chunk_pixels`` at a time; the result equals the argmax
    of the full resampling (up to float rounding at exact ties). When more
    than ``max_boundary_fraction`` of the pixels are boundaries (noisy
    logits, e.g. an untrained network), the full resampling is done instead,
    ``chunk_pixels`` pixels worth of rows at a time, as it is then faster.

    Args:
        sem_logits (Tensor): (C, h, w) at ``stride`` on the padded input.
        img_shape (tuple[int, int]): Valid (H_img, W_img) of the input.
        out_shape (tuple[int, int]): (H_out, W_out).
        stride (int): Stride of ``sem_logits``. Defaults to 4.
        chunk_pixels (int): Pixels interpolated at once. Defaults to 2 ** 18.
        max_boundary_fraction (float): See above. Defaults to 0.25.

    Returns:
        Tensor: (H_out, W_out) int64 labels.
    """
    num_classes, h, w = sem_logits.shape
    out_h, out_w = out_shape
    device, dtype = sem_logits.device, sem_logits.dtype

    def axis(out_size: int, img_size: int,
             map_size: int) -> Tuple[Tensor, Tensor, Tensor]:
        # cell coordinate of each output pixel, clamped as grid_sample's
        # border padding does
        coord = (torch.arange(out_size, device=device, dtype=dtype) + 0.5) * (
            img_size / (out_size * stride)) - 0.5
        coord = coord.clamp(0, map_size - 1)
        low = coord.floor().long()
        high = (low + 1).clamp(max=map_size - 1)
        return low, high, coord - low

    y_low, y_high, y_frac = axis(out_h, img_shape[0], h)
    x_low, x_high, x_frac = axis(out_w, img_shape[1], w)
    cell_labels = _channel_argmax(sem_logits)
    if num_classes <= torch.iinfo(torch.int16).max:
        cell_labels = cell_labels.to(torch.int16)  # 4x less to gather
    rows_low, rows_high = cell_labels[y_low], cell_labels[y_high]
    labels = rows_low[:, x_low]
    boundary = (labels != rows_low[:, x_high]) | (
        labels != rows_high[:, x_low]) | (labels != rows_high[:, x_high])
    del rows_low, rows_high
    labels = labels.long()
    ys, xs = torch.nonzero(boundary, as_tuple=True)
    if len(ys) > max_boundary_fraction * boundary.numel():
        gy = _output_sample_coords(out_h, img_shape[0], h, stride, device,
                                   dtype)
        gx = _output_sample_coords(out_w, img_shape[1], w, stride, device,
                                   dtype)
        band_rows = max(1, chunk_pixels // max(out_w, 1))
        for top in range(0, out_h, band_rows):
            band_gy = gy[top:top + band_rows]
            grid = torch.stack((gx[None, :].expand(len(band_gy), out_w),
                                band_gy[:, None].expand(len(band_gy), out_w)),
                               -1)
            band = F.grid_sample(
                sem_logits[None],
                grid[None],
                mode='bilinear',
                padding_mode='border',
                align_corners=False)[0]
            labels[top:top + band_rows] = _channel_argmax(band)
        return labels
    for start in range(0, len(ys), chunk_pixels):
        py, px = ys[start:start + chunk_pixels], xs[start:start + chunk_pixels]
        y0, y1, fy = y_low[py], y_high[py], y_frac[py]
        x0, x1, fx = x_low[px], x_high[px], x_frac[px]
        values = ((1 - fy) * (1 - fx)) * sem_logits[:, y0, x0]
        values += ((1 - fy) * fx) * sem_logits[:, y0, x1]
        values += (fy * (1 - fx)) * sem_logits[:, y1, x0]
        values += (fy * fx) * sem_logits[:, y1, x1]
        labels[py, px] = _channel_argmax(values)
    return labels
