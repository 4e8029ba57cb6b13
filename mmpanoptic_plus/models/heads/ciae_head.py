# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Proposal head + embedding branch of CIAE.

Gao et al., "Learning Category- and Instance-Aware Pixel Embedding for Fast
Panoptic Segmentation", Sec. IV-A (Fig. 3); the losses (Eq. 1-15) are in
:mod:`.ciae_head_loss_mixin`.
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

from mmpanoptic_plus.models.losses.ciae_embedding_loss import category_rows
from mmpanoptic_plus.registry import MODELS, TASK_UTILS
from .ciae_head_loss_mixin import CIAEHeadLossMixin
from .ciae_memory_embeddings import CIAEMemoryEmbeddings

INF = math.inf


@MODELS.register_module()
class CIAEHead(CIAEHeadLossMixin, FCOSHead):
    """CIAE's proposal head (on P3-P7) and embedding branch (on P2-P5).

    Proposal head (Sec. IV-A "Proposal head"): mmdet's :class:`FCOSHead`
    towers, each ``stacked_convs`` x (3x3 conv + GN + ReLU), shared across
    levels; box classification (``conv_cls``) from the classification tower,
    centerness (``conv_centerness``, ``centerness_on_reg=True``), ltrb box
    regression (``conv_reg``, in input pixels: ``ReLU(scale * x) * stride``
    with ``norm_on_bbox``, as RTP's head) and a **box embedding** of
    ``embed_dim`` channels (``conv_box_embed``, 3x3 like FCOS's other
    predictors) from the regression tower. The box embedding is not
    supervised directly: it only feeds ``P''`` of the embedding branch.
    Targets: :class:`FCOSMaskTargetAssigner` without levelness (a location
    is positive only inside a ground-truth *mask*).

    Embedding branch: :class:`CIAEEmbeddingBranch` (``P' + P''`` at stride
    4); the category memory ``M_t`` (Sec. III-C) is
    :class:`CIAEMemoryEmbeddings`, ``memory``.

    Input: the FPN levels P2-P7 (``len(strides) + 1`` maps, P2 at stride
    ``strides[0] / 2``); the proposal head runs on ``x[1:]``, the embedding
    branch on ``x[:num_levels]``.

    Args:
        num_things (int): Thing classes (box classes).
        num_stuff (int): Stuff classes.
        in_channels (int): FPN channels.
        embed_dim (int): E. Defaults to 32 (the paper's).
        feat_channels (int): Tower channels. Defaults to 256.
        stacked_convs (int): Convs per tower. Defaults to 4.
        strides (Sequence[int]): Strides of P3-P7.
        regress_ranges (Sequence[tuple]): FCOS's size ranges.
        norm_on_bbox (bool): ``ReLU * stride`` (True) or ``exp`` boxes.
        merge_things (bool): One thing category in the memory and L_CAE
            (Table II's default). Defaults to True.
        embedding_branch (dict): :class:`CIAEEmbeddingBranch` config
            (``in_channels`` and ``embed_dim`` are filled in).
        assigner (dict): :class:`FCOSMaskTargetAssigner` config (without
            levelness; ``num_things``, ``strides``, ``regress_ranges``
            filled in).
        loss_cls, loss_bbox, loss_centerness (dict): FCOS's losses (sigmoid
            focal, IoU, BCE; Eq. 15).
        loss_embedding (dict): :class:`CIAEEmbeddingLoss` config
            (``num_things``, ``num_stuff``, ``merge_things`` filled in).
        memory_total_iters (int): T of Eq. 13 (set it to the training's
            iterations). Defaults to 90000.
        memory_momentum_gap (float): ``1 - lambda_0``. Defaults to 1e-4.
    """

    def __init__(self,
                 num_things: int,
                 num_stuff: int,
                 in_channels: int,
                 embed_dim: int = 32,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     (-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
                 norm_on_bbox: bool = True,
                 merge_things: bool = True,
                 embedding_branch: ConfigType = dict(
                     type='CIAEEmbeddingBranch'),
                 assigner: ConfigType = dict(
                     type='FCOSMaskTargetAssigner', with_levelness=False),
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
                 loss_embedding: ConfigType = dict(type='CIAEEmbeddingLoss'),
                 memory_total_iters: int = 90000,
                 memory_momentum_gap: float = 1e-4,
                 norm_cfg: ConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 **kwargs) -> None:
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.embed_dim = embed_dim
        self.merge_things = merge_things
        super().__init__(
            num_classes=num_things,
            in_channels=in_channels,
            feat_channels=feat_channels,
            stacked_convs=stacked_convs,
            strides=strides,
            regress_ranges=regress_ranges,
            norm_on_bbox=norm_on_bbox,
            centerness_on_reg=True,
            loss_cls=loss_cls,
            loss_bbox=loss_bbox,
            loss_centerness=loss_centerness,
            norm_cfg=norm_cfg,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            **kwargs)
        branch = dict(embedding_branch)
        branch.setdefault('type', 'CIAEEmbeddingBranch')
        branch.setdefault('in_channels', in_channels)
        branch.setdefault('embed_dim', embed_dim)
        self.embedding_branch = MODELS.build(branch)
        if self.embedding_branch.embed_dim != embed_dim:
            raise ValueError('embedding_branch.embed_dim must equal '
                             f'embed_dim={embed_dim}')
        self.conv_box_embed = nn.Conv2d(
            feat_channels, embed_dim, 3, padding=1) \
            if self.embedding_branch.use_box_embedding else None
        assigner = dict(assigner)
        assigner.setdefault('num_things', num_things)
        assigner.setdefault('strides', tuple(strides))
        assigner.setdefault('regress_ranges', tuple(regress_ranges))
        self.assigner = TASK_UTILS.build(assigner)
        if getattr(self.assigner, 'with_levelness', False):
            raise ValueError('CIAE has no levelness: use '
                             'FCOSMaskTargetAssigner(with_levelness=False)')
        loss_embedding = dict(loss_embedding)
        loss_embedding.setdefault('type', 'CIAEEmbeddingLoss')
        loss_embedding.setdefault('num_things', num_things)
        loss_embedding.setdefault('num_stuff', num_stuff)
        loss_embedding.setdefault('merge_things', merge_things)
        self.loss_embedding = MODELS.build(loss_embedding)
        self.memory = CIAEMemoryEmbeddings(
            self.loss_embedding.num_categories, embed_dim,
            memory_total_iters, memory_momentum_gap)

    def forward(
        self, x: Tuple[Tensor, ...]
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor]:
        """Raw outputs.

        Args:
            x (tuple[Tensor]): FPN levels P2-P7, (B, in_channels, H_l, W_l).

        Returns:
            tuple:

            - cls_scores (list[Tensor]): P3-P7 (B, T, H_l, W_l) thing logits.
            - bbox_preds (list[Tensor]): (B, 4, H_l, W_l) ltrb in pixels.
            - centernesses (list[Tensor]): (B, 1, H_l, W_l) logits.
            - pixel_embeds (Tensor): (B, E, H_2, W_2) ``P' + P''`` at stride
              4, before upsampling and L2 normalisation.
        """
        if len(x) != len(self.strides) + 1:
            raise ValueError(f'CIAEHead takes P2 and the {len(self.strides)} '
                             f'proposal levels, got {len(x)} maps')
        cls_scores, bbox_preds, centernesses, box_embeds = multi_apply(
            self.forward_single, x[1:], self.scales, self.strides)
        pixel_embeds = self.embedding_branch(
            x, box_embeds if self.conv_box_embed is not None else None,
            self.strides)
        return cls_scores, bbox_preds, centernesses, pixel_embeds

    def forward_single(self, x: Tensor, scale: Scale,
                       stride: int) -> Tuple[Tensor, ...]:
        """One proposal level: (cls logits, ltrb in pixels, centerness
        logits, box embedding or None).

        FCOS's own ``forward_single`` is not reused: it drops the regression
        tower features the box embedding needs and keeps ``norm_on_bbox``
        outputs in stride units during training.
        """
        cls_score, bbox_pred, _, reg_feat = \
            AnchorFreeHead.forward_single(self, x)
        centerness = self.conv_centerness(reg_feat)
        box_embed = self.conv_box_embed(reg_feat) \
            if self.conv_box_embed is not None else None
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0) * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness, box_embed

    def stuff_memory(self) -> Tensor:
        """(num_stuff, E) unit memory embeddings ``M_T`` of the stuff
        classes in class order: their query embeddings at inference (Sec.
        IV-C)."""
        stuff_classes = torch.arange(
            self.num_things,
            self.num_things + self.num_stuff,
            device=self.memory.embeddings.device)
        rows = category_rows(stuff_classes, self.num_things,
                             self.merge_things)
        return self.memory.normalized()[rows]

    def predict_by_feat(self, *args, **kwargs):
        """Not available on the head: CIAE's inference
        (:func:`mmpanoptic_plus.models.postprocess.ciae.ciae_panoptic_predict`)
        runs on the raw outputs of :meth:`forward` in :meth:`CIAE.predict`,
        so that heads never import ``models/postprocess``."""
        raise NotImplementedError(
            'CIAEHead returns raw outputs (forward); CIAE.predict turns them '
            'into panoptic results with ciae_panoptic_predict')
