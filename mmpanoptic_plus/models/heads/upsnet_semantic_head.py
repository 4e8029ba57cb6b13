# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""UPSNet's semantic head (Xiong et al., "UPSNet: A Unified Panoptic
Segmentation Network", CVPR 2019, Sec. 3.1) with Group Normalisation after
each convolution, as Unified uses it (Li et al., "Unifying Training and
Inference for Panoptic Segmentation", CVPR 2020, Sec. 3.2); PSS builds on the
same head."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.models.seg_heads.base_semantic_head import BaseSemanticHead
from mmdet.models.utils import interpolate_as
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from mmpanoptic_plus.models.utils import resample_to_grid
from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class UPSNetSemanticHead(BaseSemanticHead):
    """UPSNet-style semantic head: one subnetwork shared by the FPN levels,
    their outputs resampled to the finest level, concatenated, classified by
    a 1x1 conv into *all* semantic classes (things first, then stuff).

    Layout (UPSNet Sec. 3.1; Unified Sec. 3.2 adds GroupNorm):

    - every level ``P_l`` (``start_level`` to ``end_level - 1``, 256 channels
      for a standard FPN) goes through the *same* ``num_convs`` 3x3 convs of
      ``feat_channels`` channels, each followed by ``norm_cfg`` (GroupNorm,
      32 groups) and ReLU; UPSNet's convs are deformable
      (``conv_cfg=dict(type='DCN')``, mmcv's ``DeformConv2dPack``), the
      default; ``conv_cfg=None`` gives plain convs;
    - the coarser levels are bilinearly resampled to the first level's grid
      (:func:`resample_to_grid`, cell centres aligned) and concatenated:
      ``feats`` of ``num_levels * feat_channels`` channels at the first
      level's stride (4 for P2: Unified's ``d = 4``);
    - a 1x1 conv gives ``seg_preds`` with ``out_channels`` channels
      (``num_things_classes + num_stuff_classes`` by default: the map ``V``
      of Unified Sec. 3.2; Unified's affinity feature extractor, Sec. 3.4.2,
      is this head with ``out_channels=128`` and no loss).

    Constructor (what PSS and Unified configs write)::

        dict(type='UPSNetSemanticHead',
             num_things_classes=8, num_stuff_classes=11,
             in_channels=256, feat_channels=128, num_convs=2,
             start_level=0, end_level=4, conv_cfg=dict(type='DCN'),
             norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
             out_channels=None, seg_rescale_factor=1 / 4,
             loss_seg=dict(type='CrossEntropyLoss', ignore_index=255,
                           avg_non_ignore=True, loss_weight=1.0))

    Args:
        num_things_classes (int): Thing classes (first in the label order).
        num_stuff_classes (int): Stuff classes.
        in_channels (int): Channels of every input level.
        feat_channels (int): Channels of the shared subnetwork (128).
        num_convs (int): Convs of the shared subnetwork (2).
        start_level (int): First input level used (0 = P2).
        end_level (int): One past the last level used (4 = P2..P5).
        conv_cfg (dict, optional): Conv type of the subnetwork; UPSNet's
            deformable conv by default.
        norm_cfg (dict, optional): Norm after each conv (GroupNorm, 32).
        out_channels (int, optional): Output channels; defaults to
            ``num_things_classes + num_stuff_classes``.
        seg_rescale_factor (float): ``gt_sem_seg`` is resized by it (nearest)
            to the logits' stride, as mmdet's ``PanopticFPNHead``.
        loss_seg (dict): Per-pixel loss on the full label set, averaged over
            the labelled pixels (255 ignore), as UPSNet's and detectron2's
            ``F.cross_entropy(ignore_index=255)``.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 in_channels: int = 256,
                 feat_channels: int = 128,
                 num_convs: int = 2,
                 start_level: int = 0,
                 end_level: int = 4,
                 conv_cfg: OptConfigType = dict(type='DCN'),
                 norm_cfg: OptConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 out_channels: Optional[int] = None,
                 seg_rescale_factor: float = 1 / 4.,
                 loss_seg: ConfigType = dict(
                     type='CrossEntropyLoss', ignore_index=255,
                     avg_non_ignore=True, loss_weight=1.0),
                 init_cfg: OptMultiConfig = None) -> None:
        num_classes = num_things_classes + num_stuff_classes
        super().__init__(
            num_classes=num_classes,
            seg_rescale_factor=seg_rescale_factor,
            loss_seg=loss_seg,
            init_cfg=init_cfg)
        if end_level <= start_level:
            raise ValueError(f'end_level ({end_level}) must exceed '
                             f'start_level ({start_level})')
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.start_level = start_level
        self.end_level = end_level
        self.num_levels = end_level - start_level
        self.out_channels = num_classes if out_channels is None \
            else out_channels
        # One subnetwork applied to every level (UPSNet shares its weights).
        self.subnet = nn.Sequential(*[
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                3,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=dict(type='ReLU')) for i in range(num_convs)
        ])
        self.conv_logits = nn.Conv2d(self.num_levels * feat_channels,
                                     self.out_channels, 1)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Dict[str, Tensor]:
        """Shared subnetwork on each level, resampled and concatenated.

        Args:
            x (Sequence[Tensor]): FPN levels, (B, in_channels, H_l, W_l),
                level ``l`` at stride ``2^l`` times the first level's
                stride.

        Returns:
            dict[str, Tensor]: ``seg_preds`` (B, out_channels, H_0, W_0) and
            ``feats`` (B, num_levels * feat_channels, H_0, W_0) at the
            ``start_level`` level's grid.
        """
        levels = list(x[self.start_level:self.end_level])
        if len(levels) != self.num_levels:
            raise ValueError(f'expected {self.num_levels} levels from '
                             f'{self.start_level}, got {len(levels)}')
        size = tuple(levels[0].shape[-2:])
        feats = [
            resample_to_grid(self.subnet(level), 2**i, size, 1)
            for i, level in enumerate(levels)
        ]
        feats = torch.cat(feats, dim=1)
        return dict(seg_preds=self.conv_logits(feats), feats=feats)

    def loss_by_feat(self, seg_preds: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Cross entropy of given logits against the full semantic labels.

        Args:
            seg_preds (Tensor): (B, num_classes, H, W) logits (bilinearly
                resized to the label size when they differ).
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                (things first, then stuff; 255 ignore), padded to the batch.

        Returns:
            dict[str, Tensor]: ``loss_seg``.
        """
        gt_sem_seg = torch.stack(
            [sample.gt_sem_seg.sem_seg for sample in batch_data_samples])
        if self.seg_rescale_factor != 1.0:
            gt_sem_seg = nn.functional.interpolate(
                gt_sem_seg.float(),
                scale_factor=self.seg_rescale_factor,
                mode='nearest')
        gt_sem_seg = gt_sem_seg.squeeze(1).long()
        if seg_preds.shape[-2:] != gt_sem_seg.shape[-2:]:
            seg_preds = interpolate_as(seg_preds, gt_sem_seg)
        loss_seg = self.loss_seg(
            seg_preds.permute(0, 2, 3, 1).reshape(-1, self.num_classes),
            gt_sem_seg.reshape(-1))
        return dict(loss_seg=loss_seg)

    def loss(self, x: Union[Tensor, Tuple[Tensor]],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """:meth:`forward` then :meth:`loss_by_feat`.

        Args:
            x (Sequence[Tensor]): FPN levels.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``loss_seg``.
        """
        return self.loss_by_feat(self.forward(x)['seg_preds'],
                                 batch_data_samples)
