# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dense box map of RealTimePanoptic (Hou et al., "Real-Time Panoptic
Segmentation from Dense Detections", CVPR 2020, Sec. 4.2, Eq. 14; appendix B
without levelness): every pixel of a stride-4 map carries the box that one FPN
level predicts there. Inference and the explicit mask loss (Sec. 4.3) both
query it with the NMS-kept boxes B_query."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .level_resampling import sample_level_regressions
from .stride_grid import stride_grid_coordinates


def build_dense_boxes(bbox_preds: Sequence[Tensor],
                      strides: Sequence[int],
                      levelness_logits: Optional[Tensor] = None,
                      size: Optional[Tuple[int, int]] = None,
                      use_levelness: bool = True,
                      out_stride: int = 4,
                      include_background: bool = True,
                      forced_levels: Optional[Tensor] = None
                      ) -> Tuple[Tensor, Tensor]:
    """Dense box map of RTP (paper Eq. 14; appendix B without levelness).

    With levelness, pixel ``(y, x)`` of the stride-4 map takes the box that
    the level chosen by the levelness logits predicts there, anchored at the
    pixel's own image coordinate ``(X, Y) = (4x + 2, 4y + 2)``: ``(X - l, Y -
    t, X + r, Y + b)``. The level is chosen in one of two ways:

    - ``include_background=True`` (Eq. 14; inference and the mask loss):
      ``argmax_c levelness[c]`` over all ``L + 1`` channels, level ``c -
      1``; pixels whose argmax is channel 0 (background) get no box
      (``valid`` False, hence ``P_loc = 0``).
    - ``include_background=False`` (the released inference code; the mask
      loss used it before issue 9): the argmax over the level channels
      ``1..L`` only, so every pixel has a box.

    ``forced_levels`` overrides that choice where it is >= 0 (e.g. the
    levelness *targets* in the mask loss).

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
        include_background (bool): Take the levelness argmax over all
            channels, background pixels getting no box (True, default), or
            over the level channels only (False).
        forced_levels (Tensor, optional): (B, h, w) int64 level index
            (0-based) that replaces the levelness choice where >= 0.

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
        if include_background:
            choice = levelness_logits.argmax(dim=1)  # 0 = background
            valid = choice > 0
            level_index = (choice - 1).clamp(min=0)
        else:
            level_index = levelness_logits[:, 1:].argmax(dim=1)
            valid = torch.ones_like(level_index, dtype=torch.bool)
        if forced_levels is not None:
            level_index = torch.where(forced_levels >= 0, forced_levels,
                                      level_index)
            valid = valid | (forced_levels >= 0)
        index = level_index[:, None, None].expand(batch_size, 1, 4, h, w)
        ltrb = level_ltrb.gather(1, index)  # (B, 1, 4, h, w)
    else:
        ltrb = level_ltrb
        valid = torch.ones((batch_size, h, w),
                           dtype=torch.bool,
                           device=level_ltrb.device)
    return anchor_ltrb_on_grid(ltrb, out_stride), valid


def anchor_ltrb_on_grid(ltrb: Tensor, stride: int) -> Tensor:
    """Boxes of dense ltrb maps anchored at their own cells.

    Cell ``(i, j)`` of the stride-``stride`` map sits at ``(X, Y)`` (see
    :func:`stride_grid_coordinates`) and gets ``(X - l, Y - t, X + r, Y +
    b)``. Written out rather than through ``distance2bbox`` because the
    coordinates are a channel axis here, not the last one.

    Args:
        ltrb (Tensor): (..., 4, h, w) distances in image pixels.
        stride (int): Stride of the map.

    Returns:
        Tensor: (..., 4, h, w) x1y1x2y2 in image pixels.
    """
    h, w = ltrb.shape[-2:]
    xs, ys = stride_grid_coordinates(h, w, stride, ltrb.device, ltrb.dtype)
    ys = ys.view(h, 1)
    coord_dim = ltrb.dim() - 3
    left, top, right, bottom = ltrb.unbind(coord_dim)
    return torch.stack((xs - left, ys - top, xs + right, ys + bottom),
                       coord_dim)
