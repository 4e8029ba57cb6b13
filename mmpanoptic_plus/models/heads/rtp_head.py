# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Unified panoptic head of RealTimePanoptic (RTP).

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 3.1 (architecture), 3.3 (levelness), 3.4 and 4 (losses).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import Scale
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.utils import multi_apply, unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import ConfigType, InstanceList, OptConfigType, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from mmpanoptic_plus.models.losses.rtp_mask_loss import \
    rtp_query_mask_losses
from mmpanoptic_plus.models.postprocess.realtime_panoptic import \
    rtp_panoptic_predict
from mmpanoptic_plus.models.postprocess.rtp_dense_box_masks import (
    sample_level_regressions, stride_grid_coordinates)
from mmpanoptic_plus.registry import MODELS, TASK_UTILS

INF = math.inf
GLOBAL_HEAD_TYPES = ('per_level_1x1', 'concat_3x3')


def resample_to_grid(feat: Tensor, stride: int, size: Tuple[int, int],
                     out_stride: int) -> Tensor:
    """Bilinearly resample a stride-``stride`` map onto the stride-
    ``out_stride`` grid of ``size`` (cell centres at ``s * j + s / 2``, as
    the target assigner and the post-processing place them).

    When ``feat size * stride == size * out_stride`` this is
    ``F.interpolate(size=size, mode='bilinear', align_corners=False)``;
    otherwise (a level whose size padding rounded up, e.g. P6/P7 of an input
    that is a multiple of 32 but not of 128) ``grid_sample`` keeps the same
    alignment. Both are linear with weights summing to 1, so a 1x1 conv
    commutes with this resampling, bias included.

    Args:
        feat (Tensor): (B, C, H_l, W_l).
        stride (int): Stride of ``feat``.
        size (tuple[int, int]): (h, w) of the output grid.
        out_stride (int): Stride of the output grid.

    Returns:
        Tensor: (B, C, h, w).
    """
    height, width = feat.shape[-2:]
    if (height * stride, width * stride) == (size[0] * out_stride,
                                             size[1] * out_stride):
        if (height, width) == tuple(size):
            return feat
        return F.interpolate(
            feat, size=size, mode='bilinear', align_corners=False)
    xs, ys = stride_grid_coordinates(size[0], size[1], out_stride,
                                     feat.device, feat.dtype)
    grid_x = 2 * xs / (stride * width) - 1
    grid_y = 2 * ys / (stride * height) - 1
    grid = torch.stack((grid_x[None, :].expand(size[0], size[1]),
                        grid_y[:, None].expand(size[0], size[1])), -1)
    grid = grid[None].expand(feat.size(0), size[0], size[1], 2)
    return F.grid_sample(
        feat, grid, mode='bilinear', padding_mode='border',
        align_corners=False)


@MODELS.register_module()
class RTPHead(FCOSHead):
    """RTP's unified panoptic head (paper Sec. 3.1, Fig. 2).

    mmdet's :class:`FCOSHead` supplies the two towers shared across the FPN
    levels (each ``stacked_convs`` x (3x3 conv + GN(32) + ReLU)): its
    ``reg_convs`` are the *localization* tower, its ``cls_convs`` the
    *semantics* tower, plus the per-level ``Scale``, the box regression
    ``conv_reg`` and ``conv_centerness`` (on the localization tower,
    ``centerness_on_reg=True``) and the thing-class logits ``conv_cls`` (on
    the semantics tower). Box regressions are ltrb distances *in input
    pixels* in training and inference alike: ``ReLU(scale * x) * stride``
    (``norm_on_bbox=True``, FCOS's improved variant; FCOS applies the
    ``* stride`` only at test time and divides its targets instead) or
    ``exp(scale * x)`` (original FCOS).

    Global heads (paper Sec. 3.1 / 3.3): *levelness* (L + 1 logits, channel
    0 = background) from the localization features and the full *semantic*
    logits (things first, then stuff) from the semantics features, both at
    ``semantic_stride`` (4) over the padded input. The paper and the
    released code (TRI-ML/realtime_panoptic) upsample every level's tower
    output to stride 4, concatenate them (``L * feat_channels`` = 1280
    channels for R50) and apply 3x3 convolutions there; on this project's
    CPU, one such 3x3 conv costs about 1.4 s at 1024x2048. Default here
    (``global_head='per_level_1x1'``): a 1x1 conv per level at the level's
    own resolution, then bilinear resampling to stride 4 and a sum. A 1x1
    conv commutes with bilinear upsampling, so this *equals* a 1x1 conv over
    the upsampled concatenation (same weights, split by level); the
    departure from the paper is 1x1 instead of 3x3 kernels on the
    concatenation. ``global_head='concat_3x3'`` is the paper / released
    code variant (one 3x3 conv on the concatenation per head). The stride-4
    grid size is ``strides[0] / semantic_stride`` times the first level's
    size (P3 upsampled x2, as the released code does: the paper's FPN has no
    P2).

    Losses (Sec. 4, Eq. 11-19), see :meth:`loss_by_feat`.

    Args:
        num_things (int): Thing classes (box classes).
        num_stuff (int): Stuff classes.
        in_channels (int): FPN channels.
        feat_channels (int): Tower channels. Defaults to 256.
        stacked_convs (int): Convs per tower. Defaults to 4.
        strides (Sequence[int]): FPN strides. Defaults to (8, 16, 32, 64,
            128).
        regress_ranges (Sequence[tuple]): Eq. 9 size ranges (used by the
            assigner). Defaults to FCOS's.
        norm_on_bbox (bool): ReLU x stride (True) or exp regression.
        global_head (str): ``'per_level_1x1'`` (default, fast) or
            ``'concat_3x3'`` (paper / released code).
        semantic_stride (int): Stride of the global heads. Defaults to 4.
        assigner (dict): :class:`RTPTargetAssigner` config (``num_things``,
            ``strides``, ``regress_ranges`` and ``levelness_stride`` are
            filled in); ``use_masks=False`` is the weakly supervised mode.
        loss_cls, loss_bbox, loss_centerness (dict): FCOS's losses (sigmoid
            focal, IoU, BCE).
        cls_loss_avg (str): ``'num_pos'`` (FCOS: focal loss summed and
            divided by the foreground count, default) or ``'num_locations'``
            (divided by the number of non-ignored locations).
        loss_levelness (dict): Levelness cross-entropy (ignore 255).
        loss_semantic (dict): Bootstrapped semantic cross-entropy.
        loss_mask (dict, optional): :class:`RTPMaskLoss`; None disables the
            explicit mask loss (weakly supervised mode).
        mask_loss_levelness (str): Level choosing each pixel's dense box in
            the mask loss: ``'pred'`` (argmax of the predicted levelness over
            the L level channels, detached: what inference sees, and every
            pixel has a box so false positives anywhere count) or ``'gt'``
            (the levelness target, where positive; predicted elsewhere).
    """

    def __init__(self,
                 num_things: int,
                 num_stuff: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     (-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
                 norm_on_bbox: bool = True,
                 global_head: str = 'per_level_1x1',
                 semantic_stride: int = 4,
                 assigner: ConfigType = dict(type='RTPTargetAssigner'),
                 loss_cls: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(type='IoULoss', loss_weight=1.0),
                 loss_centerness: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=True,
                     loss_weight=1.0),
                 cls_loss_avg: str = 'num_pos',
                 loss_levelness: ConfigType = dict(
                     type='CrossEntropyLoss',
                     use_sigmoid=False,
                     ignore_index=255,
                     avg_non_ignore=True,
                     loss_weight=1.0),
                 loss_semantic: ConfigType = dict(
                     type='BootstrappedCrossEntropyLoss',
                     top_ratio=0.3,
                     loss_weight=1.0),
                 loss_mask: OptConfigType = dict(
                     type='RTPMaskLoss', max_queries_per_img=32),
                 mask_loss_levelness: str = 'pred',
                 norm_cfg: ConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 **kwargs) -> None:
        if global_head not in GLOBAL_HEAD_TYPES:
            raise ValueError(f'global_head must be one of '
                             f'{GLOBAL_HEAD_TYPES}, got {global_head!r}')
        if cls_loss_avg not in ('num_pos', 'num_locations'):
            raise ValueError("cls_loss_avg must be 'num_pos' or "
                             f"'num_locations', got {cls_loss_avg!r}")
        if mask_loss_levelness not in ('pred', 'gt'):
            raise ValueError("mask_loss_levelness must be 'pred' or 'gt'")
        if strides[0] % semantic_stride:
            raise ValueError(f'the first stride {strides[0]} must be a '
                             f'multiple of semantic_stride {semantic_stride}')
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.global_head = global_head
        self.semantic_stride = semantic_stride
        self.cls_loss_avg = cls_loss_avg
        self.mask_loss_levelness = mask_loss_levelness
        super().__init__(
            num_classes=num_things,
            in_channels=in_channels,
            feat_channels=feat_channels,
            stacked_convs=stacked_convs,
            strides=strides,
            regress_ranges=regress_ranges,
            norm_on_bbox=norm_on_bbox,
            centerness_on_reg=True,
            # built again below with our registry (same types; ours also
            # resolves our loss classes outside a default scope)
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_centerness=loss_centerness,
            norm_cfg=norm_cfg,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            **kwargs)
        assigner = dict(assigner)
        assigner.setdefault('num_things', num_things)
        assigner.setdefault('strides', tuple(strides))
        assigner.setdefault('regress_ranges', tuple(regress_ranges))
        assigner.setdefault('levelness_stride', semantic_stride)
        self.assigner = TASK_UTILS.build(assigner)
        self.loss_levelness = MODELS.build(loss_levelness)
        self.loss_semantic = MODELS.build(loss_semantic)
        self.loss_mask = MODELS.build(loss_mask) if loss_mask else None

    def _init_layers(self) -> None:
        """FCOS's towers and per-level predictors, plus the global heads."""
        super()._init_layers()
        num_levels = len(self.strides)
        out_channels = dict(
            levelness=num_levels + 1,
            semantic=self.num_things + self.num_stuff)
        for name, channels in out_channels.items():
            if self.global_head == 'per_level_1x1':
                convs = nn.ModuleList(
                    nn.Conv2d(self.feat_channels, channels, 1)
                    for _ in range(num_levels))
            else:
                convs = nn.Conv2d(
                    self.feat_channels * num_levels, channels, 3, padding=1)
            setattr(self, f'conv_{name}', convs)

    def forward(
        self, x: Tuple[Tensor, ...]
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor, Tensor]:
        """Raw outputs.

        Args:
            x (tuple[Tensor]): FPN levels, (B, in_channels, H_l, W_l).

        Returns:
            tuple:

            - cls_scores (list[Tensor]): (B, T, H_l, W_l) thing logits.
            - bbox_preds (list[Tensor]): (B, 4, H_l, W_l) ltrb, pixels.
            - centernesses (list[Tensor]): (B, 1, H_l, W_l) logits.
            - levelness_logits (Tensor): (B, L + 1, h, w) at stride 4.
            - sem_logits (Tensor): (B, T + S, h, w) at stride 4.
        """
        if len(x) != len(self.strides):
            raise ValueError(f'{len(x)} feature levels for '
                             f'{len(self.strides)} strides')
        cls_scores, bbox_preds, centernesses, sem_feats, loc_feats = \
            multi_apply(self.forward_single, x, self.scales, self.strides)
        factor = self.strides[0] // self.semantic_stride
        size = (x[0].size(-2) * factor, x[0].size(-1) * factor)
        levelness = self._global_logits(loc_feats, self.conv_levelness, size)
        semantic = self._global_logits(sem_feats, self.conv_semantic, size)
        return cls_scores, bbox_preds, centernesses, levelness, semantic

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, ...]:
        """One level: (cls logits, ltrb in pixels, centerness logits,
        semantics tower features, localization tower features).

        FCOS's own ``forward_single`` is not reused: it drops the tower
        features the global heads need and keeps ``norm_on_bbox`` outputs
        in stride units during training.
        """
        cls_score, bbox_pred, sem_feat, loc_feat = \
            AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(loc_feat)
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0) * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness, sem_feat, loc_feat

    def _global_logits(self, feats: Sequence[Tensor], convs,
                       size: Tuple[int, int]) -> Tensor:
        """Levelness / semantic logits at ``semantic_stride`` from the
        per-level tower features (see the class docstring)."""
        if self.global_head == 'per_level_1x1':
            out = None
            for feat, conv, stride in zip(feats, convs, self.strides):
                level = resample_to_grid(
                    conv(feat), stride, size, self.semantic_stride)
                out = level if out is None else out + level
            return out
        upsampled = [
            resample_to_grid(feat, stride, size, self.semantic_stride)
            for feat, stride in zip(feats, self.strides)
        ]
        return convs(torch.cat(upsampled, dim=1))

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> dict:
        """Losses from FPN features and data samples carrying
        ``gt_instances``, ``ignored_instances`` (optional) and
        ``gt_sem_seg`` (padded like the inputs)."""
        outs = self(x)
        batch_gt_instances, batch_ignored, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        if any('gt_sem_seg' not in ds for ds in batch_data_samples):
            raise ValueError('RTPHead needs data_sample.gt_sem_seg (load '
                             'semantic labels with LoadPanopticAnnotations)')
        gt_sem_seg = torch.stack(
            [ds.gt_sem_seg.sem_seg for ds in batch_data_samples])
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 gt_sem_seg, batch_ignored)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        levelness_logits: Tensor,
        sem_logits: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        gt_sem_seg: Tensor,
        batch_gt_instances_ignore: Optional[InstanceList] = None
    ) -> Dict[str, Tensor]:
        """RTP's losses (paper Sec. 4).

        - ``loss_cls``: sigmoid focal loss over all non-ignored locations
          (Eq. 11), summed and divided by the foreground count (FCOS's
          normalisation, ``cls_loss_avg='num_pos'``) or by the location
          count (``'num_locations'``).
        - ``loss_bbox``: IoU loss of the foreground boxes (Eq. 12), mean
          over the foreground (FCOS in mmdet weights by the centerness
          target instead; the paper averages plainly).
        - ``loss_centerness``: BCE over the foreground (Eq. 13).
        - ``loss_levelness``: cross-entropy over the stride-4 pixels,
          background inside crowd regions ignored (Eq. 14).
        - ``loss_sem``: cross-entropy of the worst 30 % pixels, logits
          bilinearly upsampled to the label size (weight lambda).
        - ``loss_mask``: explicit mask loss on sampled query boxes (Sec. 3.4,
          Eq. 15-19), when enabled.

        Args:
            cls_scores, bbox_preds, centernesses, levelness_logits,
                sem_logits: outputs of :meth:`forward`.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``
                and (mask mode) ``masks`` of the non-crowd things.
            batch_img_metas (list[dict]): Image metas.
            gt_sem_seg (Tensor): (B, 1, H, W) labels, 255 = ignore, padded.
            batch_gt_instances_ignore (list[InstanceData], optional): Crowd
                regions.

        Returns:
            dict[str, Tensor]: the losses above.
        """
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        level_size = tuple(levelness_logits.shape[-2:])
        targets = self.assigner.assign(featmap_sizes, level_size,
                                       batch_gt_instances,
                                       batch_gt_instances_ignore)
        device = cls_scores[0].device
        batch_size = cls_scores[0].size(0)
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=device)

        def flat(maps: List[Tensor], channels: int) -> Tensor:
            return torch.cat([
                m.permute(0, 2, 3, 1).reshape(-1, channels) for m in maps
            ])

        flat_cls = flat(cls_scores, self.cls_out_channels)
        flat_bbox = flat(bbox_preds, 4)
        flat_centerness = flat(centernesses, 1).squeeze(1)
        flat_labels = torch.cat([t.reshape(-1) for t in targets.labels])
        flat_fg = torch.cat([t.reshape(-1) for t in targets.fg_masks])
        flat_ignore = torch.cat([t.reshape(-1) for t in targets.ignore_masks])
        flat_bbox_targets = torch.cat([
            t.permute(0, 2, 3, 1).reshape(-1, 4) for t in targets.bbox_targets
        ])
        flat_centerness_targets = torch.cat(
            [t.reshape(-1) for t in targets.centerness_targets])
        flat_points = torch.cat([p.repeat(batch_size, 1) for p in points])

        pos_inds = flat_fg.nonzero().squeeze(1)
        num_pos = max(
            reduce_mean(flat_cls.new_tensor(float(len(pos_inds)))).item(),
            1.0)
        cls_weight = (~flat_ignore).to(flat_cls.dtype)
        if self.cls_loss_avg == 'num_pos':
            cls_avg = num_pos
        else:
            cls_avg = max(
                reduce_mean(cls_weight.sum().detach()).item(), 1.0)
        losses = dict(
            loss_cls=self.loss_cls(
                flat_cls, flat_labels, weight=cls_weight, avg_factor=cls_avg))

        pos_bbox = flat_bbox[pos_inds]
        pos_centerness = flat_centerness[pos_inds]
        if len(pos_inds):
            pos_points = flat_points[pos_inds]
            decoded = self._decode(pos_points, pos_bbox)
            decoded_targets = self._decode(pos_points,
                                           flat_bbox_targets[pos_inds])
            losses['loss_bbox'] = self.loss_bbox(
                decoded, decoded_targets, avg_factor=num_pos)
            losses['loss_centerness'] = self.loss_centerness(
                pos_centerness,
                flat_centerness_targets[pos_inds],
                avg_factor=num_pos)
        else:
            # keep every parameter in the graph with a zero loss
            losses['loss_bbox'] = pos_bbox.sum() * 0
            losses['loss_centerness'] = pos_centerness.sum() * 0

        levelness_targets = targets.levelness_targets.masked_fill(
            targets.levelness_ignore, 255)
        losses['loss_levelness'] = self.loss_levelness(
            levelness_logits, levelness_targets)

        labels = gt_sem_seg.squeeze(1).long()
        if labels.shape[-2:] != sem_logits.shape[-2:]:
            sem_up = F.interpolate(
                sem_logits,
                size=labels.shape[-2:],
                mode='bilinear',
                align_corners=False)
        else:
            sem_up = sem_logits
        losses[self.loss_semantic.loss_name] = self.loss_semantic(
            sem_up, labels)

        if self.loss_mask is not None:
            losses['loss_mask'] = self._mask_loss(bbox_preds, flat_bbox,
                                                  flat_points, targets,
                                                  levelness_logits,
                                                  sem_logits,
                                                  batch_gt_instances)
        return losses

    @staticmethod
    def _decode(points: Tensor, ltrb: Tensor) -> Tensor:
        """(N, 2) points + (N, 4) ltrb -> (N, 4) x1y1x2y2."""
        return torch.cat((points - ltrb[:, :2], points + ltrb[:, 2:]), 1)

    def _mask_loss(self, bbox_preds: List[Tensor], flat_bbox: Tensor,
                   flat_points: Tensor, targets, levelness_logits: Tensor,
                   sem_logits: Tensor,
                   batch_gt_instances: InstanceList) -> Tensor:
        """Explicit mask loss (Sec. 3.4) on at most ``max_queries_per_img``
        positive locations per image, sampled uniformly.

        Each pixel of the stride-4 grid takes the box predicted by one level
        (see ``mask_loss_levelness``); boxes are bilinearly sampled from the
        level maps, so gradients reach the box regression of both the query
        and the dense map, and the semantic probabilities.
        """
        batch_size, _, height, width = sem_logits.shape
        level_ltrb = sample_level_regressions(
            bbox_preds, self.strides, (height, width),
            self.semantic_stride)  # (B, L, 4, h, w)
        level_choice = levelness_logits.detach()[:, 1:].argmax(dim=1)
        if self.mask_loss_levelness == 'gt':
            gt_level = targets.levelness_targets - 1
            level_choice = torch.where(gt_level >= 0, gt_level, level_choice)
        index = level_choice[:, None, None].expand(batch_size, 1, 4, height,
                                                   width)
        ltrb = level_ltrb.gather(1, index).squeeze(1)  # (B, 4, h, w)
        xs, ys = stride_grid_coordinates(height, width, self.semantic_stride,
                                         ltrb.device, ltrb.dtype)
        xs, ys = xs.view(1, 1, width), ys.view(1, height, 1)
        dense = torch.stack((xs - ltrb[:, 0], ys - ltrb[:, 1],
                             xs + ltrb[:, 2], ys + ltrb[:, 3]), 1)
        sem_probs = sem_logits.softmax(dim=1)

        # flat index layout: level-major, then image, then pixel
        gt_inds = torch.cat([t.reshape(-1) for t in targets.assigned_gt_inds])
        image_of = torch.cat([
            torch.arange(batch_size, device=gt_inds.device).repeat_interleave(
                t[0].numel()) for t in targets.assigned_gt_inds
        ])
        max_queries = self.loss_mask.max_queries_per_img
        losses = []
        for img_id, gt in enumerate(batch_gt_instances):
            pos = ((gt_inds >= 0) & (image_of == img_id)).nonzero().squeeze(1)
            if len(pos) > max_queries:
                pos = pos[torch.randperm(len(pos), device=pos.device)
                          [:max_queries]]
            if len(pos) == 0:
                continue
            matched = gt_inds[pos]
            labels = gt.labels.to(matched.device)[matched]
            losses.append(
                rtp_query_mask_losses(
                    self._decode(flat_points[pos], flat_bbox[pos]),
                    get_box_tensor(gt.bboxes).to(flat_bbox)[matched],
                    self._masks_on_grid(gt, matched, height, width),
                    dense[img_id].flatten(1),
                    sem_probs[img_id, labels].flatten(1),
                    iou_type=self.loss_mask.iou_type))
        if not losses:
            # no foreground in the batch: zero, attached to the graph
            return flat_bbox.sum() * 0 + sem_logits.sum() * 0
        return self.loss_mask.loss_weight * torch.cat(losses).mean()

    def _masks_on_grid(self, gt: InstanceData, inds: Tensor, height: int,
                       width: int) -> Tensor:
        """(K, h * w) float: masks of instances ``inds`` read at the
        stride-4 pixels ``(4 j + 2, 4 i + 2)`` (0 outside the masks)."""
        if 'masks' not in gt:
            raise ValueError('the RTP mask loss needs gt_instances.masks; '
                             'set loss_mask=None for the weakly supervised '
                             'mode')
        masks = gt.masks
        if hasattr(masks, 'masks') and not isinstance(masks, Tensor):
            masks = masks.masks
        masks = torch.as_tensor(masks)
        xs, ys = stride_grid_coordinates(height, width, self.semantic_stride,
                                         masks.device, torch.float32)
        xs, ys = xs.long(), ys.long()
        mask_h, mask_w = masks.shape[-2:]
        inside = (ys[:, None] < mask_h) & (xs[None, :] < mask_w)
        picked = masks[inds.to(masks.device)][:, ys.clamp(max=mask_h - 1)][
            :, :, xs.clamp(max=mask_w - 1)]
        picked = picked.bool() & inside[None]
        return picked.flatten(1).to(inds.device).float()

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def predict(self,
                x: Tuple[Tensor],
                batch_data_samples: SampleList,
                rescale: bool = True) -> List[dict]:
        """Panoptic and instance results per image (see
        :func:`rtp_panoptic_predict`)."""
        batch_img_metas = [ds.metainfo for ds in batch_data_samples]
        outs = self(x)
        return self.predict_by_feat(*outs, batch_img_metas=batch_img_metas,
                                    rescale=rescale)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        centernesses: List[Tensor],
                        levelness_logits: Tensor,
                        sem_logits: Tensor,
                        batch_img_metas: List[dict],
                        rescale: bool = True) -> List[dict]:
        """Raw outputs -> ``pan_results`` / ``ins_results`` per image;
        ``test_cfg`` overrides the post-processing defaults
        (``RTP_TEST_CFG``)."""
        test_cfg = dict(self.test_cfg) if self.test_cfg else None
        return rtp_panoptic_predict(
            [score.sigmoid() for score in cls_scores],
            centernesses,
            bbox_preds,
            levelness_logits,
            sem_logits,
            batch_img_metas,
            self.strides,
            self.num_things,
            self.num_stuff,
            test_cfg=test_cfg,
            rescale=rescale,
            stride=self.semantic_stride)
