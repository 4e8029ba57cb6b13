# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Unified panoptic head of RealTimePanoptic (RTP).

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 4 and 4.2 (architecture, levelness); the losses (Sec. 4.2-4.3)
are in :mod:`.rtp_head_loss_mixin`.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import Scale
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.dense_heads.anchor_free_head import AnchorFreeHead
from mmdet.models.utils import multi_apply
from mmdet.utils import ConfigType, OptConfigType
from torch import Tensor

from mmpanoptic_plus.models.utils import resample_to_grid
from mmpanoptic_plus.registry import MODELS, TASK_UTILS
from .rtp_head_loss_mixin import RTPHeadLossMixin

INF = math.inf
GLOBAL_HEAD_TYPES = ('per_level_1x1', 'concat_3x3')


@MODELS.register_module()
class RTPHead(RTPHeadLossMixin, FCOSHead):
    """RTP's unified panoptic head (paper Sec. 4.2, Fig. 3).

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

    Global heads (paper Sec. 4.2): *levelness* (L + 1 logits, channel
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

    Losses (Sec. 4.2-4.3, Eq. 11-19): :class:`RTPHeadLossMixin`. Inference: the
    head gives the raw outputs of :meth:`forward`; the detector
    (:class:`RealTimePanoptic`) turns them into panoptic results.

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
        assigner (dict): :class:`RTPTargetAssigner` config, or an
            :class:`FCOSMaskTargetAssigner` one with ``with_levelness=True``
            (``num_things``, ``strides``, ``regress_ranges`` and
            ``levelness_stride`` are filled in); ``use_masks=False`` is the
            weakly supervised mode.
        loss_cls, loss_bbox, loss_centerness (dict): FCOS's losses (sigmoid
            focal, IoU, BCE).
        cls_loss_avg (str): ``'num_pos'`` (FCOS: focal loss summed and
            divided by the foreground count, the class default) or
            ``'num_locations'`` (divided by the number of non-ignored
            locations: the paper, Sec. 4.2, and the paper configs).
        loss_levelness (dict): Levelness cross-entropy (ignore 255).
        loss_semantic (dict): Bootstrapped semantic cross-entropy.
        loss_mask (dict, optional): :class:`RTPMaskLoss` (Eq. 16-18 over the
            inference's query boxes, selected with this head's
            ``test_cfg``); None disables the explicit mask loss (weakly
            supervised mode).
        mask_loss_levelness (str): Level choosing each pixel's dense box in
            the mask loss: ``'pred'`` (Eq. 14, the argmax of the predicted
            levelness over all L + 1 channels, detached: exactly the
            inference's map, background pixels without a box) or ``'gt'``
            (the levelness target where it is positive, the prediction
            elsewhere; a declared option).
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
                     type='HardPixelCrossEntropyLoss',
                     top_ratio=0.3,
                     count='valid',
                     rounding='round',
                     loss_weight=1.0),
                 loss_mask: OptConfigType = dict(type='RTPMaskLoss'),
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
        if not getattr(self.assigner, 'with_levelness', False):
            raise ValueError('RTPHead needs levelness targets: use '
                             'RTPTargetAssigner or an assigner with '
                             'with_levelness=True')
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

    def predict_by_feat(self, *args, **kwargs):
        """Not available on the head: RTP's post-processing
        (:func:`rtp_panoptic_predict`, query selection, mask construction
        and panoptic fusion) runs on the raw outputs of :meth:`forward` in
        :meth:`RealTimePanoptic.predict`, so that heads never import
        ``models/postprocess``."""
        raise NotImplementedError(
            'RTPHead returns raw outputs (forward); RealTimePanoptic.predict '
            'turns them into panoptic results with rtp_panoptic_predict')
