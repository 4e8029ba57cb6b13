# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""FCOS-style target assignment with positives inside instance masks.

FCOS (Tian et al., ICCV 2019, Sec. 3.1-3.3) assigns a location to a box that
contains it, by per-level size ranges, with centerness targets. Panoptic
methods built on FCOS restrict positives to the instance *mask*: RTP (Hou et
al., CVPR 2020, Sec. 3.2, Eq. 9-10, plus its levelness targets of Sec. 3.3
and the weakly supervised box mode of Sec. 5.6 / appendix C) and CIAE (Gao
et al., 2021, without levelness).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.structures.bbox import get_box_tensor
from mmengine.structures import InstanceData
from torch import Tensor

from mmpanoptic_plus.models.utils import masks_at_points
from mmpanoptic_plus.registry import TASK_UTILS
from .fcos_mask_targets import FCOSMaskTargets

INF = math.inf


def _points_in_boxes(xs: Tensor, ys: Tensor, boxes: Tensor) -> Tensor:
    """(P, N) bool: point ``p`` lies in box ``n``, ``x1 <= x < x2`` and
    ``y1 <= y < y2``."""
    return (xs[:, None] >= boxes[None, :, 0]) & (
        ys[:, None] >= boxes[None, :, 1]) & (
            xs[:, None] < boxes[None, :, 2]) & (
                ys[:, None] < boxes[None, :, 3])


@TASK_UTILS.register_module()
class FCOSMaskTargetAssigner:
    """Per-level class / box / centerness targets of FCOS with positives
    inside ground-truth masks, and optionally RTP's levelness targets.

    Every location (level ``l``, cell ``(i, j)``) sits at the image pixel
    ``(x, y) = (s_l * j + s_l // 2, s_l * i + s_l // 2)`` (mmdet's
    ``MlvlPointGenerator(offset=0.5)`` for even strides); levelness pixels at
    ``(4 * j + 2, 4 * i + 2)``. A location is owned by at most one instance:

    - mask mode (RTP Sec. 3.2): the instance whose mask contains the pixel
      (masks do not overlap, so there is no ambiguity), provided the pixel
      also lies in its box; a location inside a box but outside its mask is
      background.
    - box mode (weakly supervised, RTP Sec. 5.6 / appendix C): the
      smallest-area box containing the pixel, i.e. boxes act as masks with
      smaller boxes painted over larger ones. A pixel ``x`` is inside a box
      when ``x1 <= x < x2`` (and likewise in y), so for a tight box of a mask
      (``x2 = max x + 1``) the box-mode foreground contains the mask-mode
      one.

    An owned location is foreground at level ``l`` when the largest of its
    ltrb distances ``m`` lies in the level's size range ``lo_l <= m <= hi_l``
    (RTP Eq. 9, FCOS's inclusive test), with box targets ltrb, the owner's
    label and the centerness of RTP Eq. 10 (FCOS Eq. 3), ``sqrt(min(l, r) /
    max(l, r) * min(t, b) / max(t, b))``. With levelness (RTP Sec. 3.3), the
    target of a pixel owned by an instance is 1 + the lowest level whose
    range contains ``m`` at that pixel (0 when none does, or when no
    instance owns it). Background locations inside a crowd region (crowd
    masks in mask mode, crowd boxes in box mode) are flagged for ignoring.

    All of it is vectorized over locations and instances: masks are only
    read at the location pixels (a gather), never processed at full size.

    Args:
        num_things (int): Number of thing classes (background label).
        strides (Sequence[int]): FPN strides. Defaults to (8, 16, 32, 64,
            128).
        regress_ranges (Sequence[tuple[float, float]]): Size range of each
            level. Defaults to FCOS's ((-1, 64), (64, 128), (128, 256),
            (256, 512), (512, inf)).
        with_levelness (bool): Also assign levelness targets (RTP). Defaults
            to False.
        levelness_stride (int): Stride of the levelness map. Defaults to 4.
        use_masks (bool): Mask mode (True) or weakly supervised box mode.
            Defaults to True.
    """

    def __init__(self,
                 num_things: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     (-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
                 with_levelness: bool = False,
                 levelness_stride: int = 4,
                 use_masks: bool = True) -> None:
        if len(strides) != len(regress_ranges):
            raise ValueError(f'{len(strides)} strides but '
                             f'{len(regress_ranges)} regress ranges')
        for low, high in regress_ranges:
            if not low < high:
                raise ValueError(f'bad regress range ({low}, {high})')
        self.num_things = num_things
        self.strides = tuple(strides)
        self.regress_ranges = tuple(
            (float(low), float(high)) for low, high in regress_ranges)
        self.with_levelness = with_levelness
        self.levelness_stride = levelness_stride
        self.use_masks = use_masks
        point_strides = list(self.strides)
        if with_levelness:
            # the levelness pixels are one more "level" of points
            point_strides.append(levelness_stride)
        self.prior_generator = MlvlPointGenerator(point_strides, offset=0.5)

    def assign(
        self,
        featmap_sizes: Sequence[Tuple[int, int]],
        batch_gt_instances: Sequence[InstanceData],
        batch_ignored_instances: Optional[Sequence[InstanceData]] = None,
        levelness_size: Optional[Tuple[int, int]] = None
    ) -> FCOSMaskTargets:
        """Targets of a batch.

        Args:
            featmap_sizes (Sequence[tuple[int, int]]): (H_l, W_l) per level.
            batch_gt_instances (Sequence[InstanceData]): Per image non-crowd
                things with ``bboxes`` (N, 4) x1y1x2y2 (Tensor or mmdet
                boxes), ``labels`` (N,) and, in mask mode, ``masks`` (N, H,
                W) (BitmapMasks, Tensor or ndarray; non-overlapping).
            batch_ignored_instances (Sequence[InstanceData], optional): Per
                image crowd regions: ``masks`` (mask mode; their ``bboxes``
                when they have none) or ``bboxes`` (box mode).
            levelness_size (tuple[int, int], optional): (h, w) of the
                levelness map; required with levelness, else unused.

        Returns:
            FCOSMaskTargets: see its docstring; levelness fields None
            without levelness.
        """
        if len(featmap_sizes) != len(self.strides):
            raise ValueError(f'{len(featmap_sizes)} feature map sizes for '
                             f'{len(self.strides)} strides')
        if self.with_levelness and levelness_size is None:
            raise ValueError('with_levelness=True needs levelness_size')
        if batch_ignored_instances is None:
            batch_ignored_instances = [None] * len(batch_gt_instances)
        if len(batch_ignored_instances) != len(batch_gt_instances):
            raise ValueError('one ignored_instances per image is needed')
        sizes = [tuple(size) for size in featmap_sizes]
        if self.with_levelness:
            sizes.append(tuple(levelness_size))
        device = self._device(batch_gt_instances)
        points = self.prior_generator.grid_priors(
            sizes, dtype=torch.float32, device=device)
        num_points = [len(p) for p in points]
        points = torch.cat(points)
        per_image = [
            self._assign_single(points, num_points, gt, ignored)
            for gt, ignored in zip(batch_gt_instances,
                                   batch_ignored_instances)
        ]
        # stack images, split levels, restore the (H_l, W_l) layout
        stacked = [torch.stack(field) for field in zip(*per_image)]
        labels, bbox_targets, centerness, gt_inds, ignore, levelness = \
            stacked
        batch_size = len(batch_gt_instances)
        outputs = dict(
            labels=[], bbox_targets=[], centerness_targets=[], fg_masks=[],
            ignore_masks=[], assigned_gt_inds=[])
        start = 0
        num_levels = len(self.strides)
        for (height, width), count in zip(sizes[:num_levels],
                                          num_points[:num_levels]):
            part = slice(start, start + count)
            start += count
            level_labels = labels[:, part].view(batch_size, height, width)
            outputs['labels'].append(level_labels)
            outputs['fg_masks'].append(level_labels < self.num_things)
            outputs['bbox_targets'].append(
                bbox_targets[:, part].view(batch_size, height, width,
                                           4).permute(0, 3, 1, 2))
            outputs['centerness_targets'].append(
                centerness[:, part].view(batch_size, height, width))
            outputs['ignore_masks'].append(
                ignore[:, part].view(batch_size, height, width))
            outputs['assigned_gt_inds'].append(
                gt_inds[:, part].view(batch_size, height, width))
        if self.with_levelness:
            part = slice(start, start + num_points[-1])
            outputs['levelness_targets'] = levelness[:, part].view(
                batch_size, *levelness_size)
            outputs['levelness_ignore'] = ignore[:, part].view(
                batch_size, *levelness_size)
        return FCOSMaskTargets(**outputs)

    @staticmethod
    def _device(batch_gt_instances: Sequence[InstanceData]) -> torch.device:
        for gt in batch_gt_instances:
            if 'bboxes' in gt:
                return get_box_tensor(gt.bboxes).device
        return torch.device('cpu')

    def _assign_single(self, points: Tensor, num_points: List[int],
                       gt: InstanceData,
                       ignored: Optional[InstanceData]) -> Tuple[Tensor, ...]:
        """Targets of one image at all points (levels, then the levelness
        pixels when assigned).

        Returns:
            tuple[Tensor, ...]: over the P points: labels (P,), ltrb (P, 4),
            centerness (P,), assigned instance (P,), ignore (P,) and the
            levelness value (P,) (meaningful on the levelness points, 0
            elsewhere).
        """
        num_total = len(points)
        device = points.device
        num_levels = len(self.strides)
        if 'bboxes' in gt:
            gt_bboxes = get_box_tensor(gt.bboxes).to(device).float()
        else:
            gt_bboxes = points.new_zeros((0, 4))
        gt_labels = gt.labels.to(device).long() if 'labels' in gt else \
            torch.zeros((0, ), dtype=torch.long, device=device)
        num_gts = len(gt_bboxes)
        if len(gt_labels) != num_gts:
            raise ValueError(f'{num_gts} gt boxes but {len(gt_labels)} '
                             'labels')
        if num_gts and (int(gt_labels.min()) < 0
                        or int(gt_labels.max()) >= self.num_things):
            raise ValueError(
                f'gt labels must be thing labels in [0, {self.num_things}), '
                f'got {gt_labels.tolist()}')

        # level index of every point; the levelness points (if any) come
        # last, as level num_levels
        point_level = torch.cat([
            torch.full((count, ), level, dtype=torch.long, device=device)
            for level, count in enumerate(num_points)
        ])
        is_levelness = point_level == num_levels
        xs, ys = points[:, 0], points[:, 1]
        pixel_x, pixel_y = xs.floor().long(), ys.floor().long()

        # owner instance of every point: instances sorted by box area, the
        # first covering one (argmax returns the first maximum) is the
        # smallest; (P, N) bools only, no (P, N, 4) distances
        areas = (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (
            gt_bboxes[:, 3] - gt_bboxes[:, 1])
        by_area = torch.argsort(areas, stable=True)
        covered = _points_in_boxes(xs, ys, gt_bboxes[by_area])  # (P, N)
        if self.use_masks and num_gts:
            if 'masks' not in gt:
                raise ValueError(
                    f'{type(self).__name__}(use_masks=True) needs '
                    'gt_instances.masks; use use_masks=False for the weakly '
                    'supervised box mode')
            mask_hit = masks_at_points(gt.masks, pixel_x, pixel_y)
            if len(mask_hit) != num_gts:
                raise ValueError(f'{len(mask_hit)} gt masks for {num_gts} '
                                 'gt boxes')
            covered &= mask_hit[by_area].T
        owned = covered.any(dim=1)
        if num_gts:
            owner = by_area[covered.to(torch.uint8).argmax(dim=1)]
            owner_box = gt_bboxes[owner]
        else:
            owner = torch.zeros((num_total, ), dtype=torch.long,
                                device=device)
            owner_box = points.new_zeros((num_total, 4))
        ltrb = torch.stack((xs - owner_box[:, 0], ys - owner_box[:, 1],
                            owner_box[:, 2] - xs, owner_box[:, 3] - ys), 1)
        ltrb = torch.where(owned[:, None], ltrb, ltrb.new_zeros(()))

        # size ranges (Eq. 9): which levels' ranges hold max(l, t, r, b)
        ranges = points.new_tensor(self.regress_ranges)  # (L, 2)
        max_dist = ltrb.max(dim=1).values
        in_range = (max_dist[:, None] >= ranges[None, :, 0]) & (
            max_dist[:, None] <= ranges[None, :, 1])  # (P, L)
        in_range &= owned[:, None]
        fg = ~is_levelness & in_range[
            torch.arange(num_total, device=device),
            point_level.clamp(max=num_levels - 1)]
        if self.with_levelness:
            # levelness: 1 + the lowest level whose range holds the maximum
            range_level = torch.where(
                in_range.any(dim=1),
                in_range.to(torch.uint8).argmax(dim=1) + 1,
                torch.zeros_like(point_level))  # 0 = none
            levelness = torch.where(is_levelness, range_level,
                                    torch.zeros_like(range_level))
        else:
            levelness = torch.zeros_like(point_level)

        labels = torch.full((num_total, ),
                            self.num_things,
                            dtype=torch.long,
                            device=device)
        if num_gts:
            labels[fg] = gt_labels[owner[fg]]
        gt_inds = torch.where(fg, owner, torch.full_like(owner, -1))
        ltrb = torch.where(fg[:, None], ltrb, ltrb.new_zeros(()))
        centerness = self.centerness_target(ltrb)

        crowd = self._crowd_at(ignored, xs, ys, pixel_x, pixel_y)
        positive = torch.where(is_levelness, levelness > 0, fg)
        ignore = crowd & ~positive
        return labels, ltrb, centerness, gt_inds, ignore, levelness

    @staticmethod
    def centerness_target(ltrb: Tensor) -> Tensor:
        """Centerness (FCOS Eq. 3, RTP Eq. 10): ``sqrt(min(l, r) / max(l, r)
        * min(t, b) / max(t, b))`` of (P, 4) ltrb distances; 0 where a side
        pair is all zero (e.g. on background), never NaN."""
        left_right, top_bottom = ltrb[:, 0::2], ltrb[:, 1::2]
        ratio_x = left_right.min(dim=1).values / left_right.max(
            dim=1).values.clamp(min=1e-12)
        ratio_y = top_bottom.min(dim=1).values / top_bottom.max(
            dim=1).values.clamp(min=1e-12)
        return (ratio_x * ratio_y).clamp(min=0).sqrt()

    def _crowd_at(self, ignored: Optional[InstanceData], xs: Tensor,
                  ys: Tensor, pixel_x: Tensor, pixel_y: Tensor) -> Tensor:
        """(P,) bool: point inside a crowd region."""
        crowd = torch.zeros_like(xs, dtype=torch.bool)
        if ignored is None or len(ignored) == 0:
            return crowd
        if self.use_masks and 'masks' in ignored:
            return masks_at_points(ignored.masks, pixel_x,
                                   pixel_y).any(dim=0)
        if 'bboxes' not in ignored:
            return crowd
        boxes = get_box_tensor(ignored.bboxes).to(xs.device).float()
        return _points_in_boxes(xs, ys, boxes).any(dim=1)
