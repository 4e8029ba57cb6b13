# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from .panoptic_deeplab_utils import (build_optional_decoder,
                                     resize_center_and_offsets,
                                     stack_dense_targets)


@MODELS.register_module()
class PanopticDeepLabInstanceHead(BaseModule):
    """Class-agnostic instance branch of Panoptic-DeepLab (Cheng et al.,
    CVPR 2020, Sec. 3.1): its own decoder (:class:`PanopticDeepLabDecoder`,
    128 channels) feeding two prediction heads, each a depthwise-separable
    5x5 conv to ``head_channels`` (32) and a 1x1 conv: the center heatmap
    (1 channel) and the center offsets (2 channels, (dy, dx)), at stride 4.

    Offsets are predicted in pixels of the stride-4 map; for the loss the
    outputs are upsampled bilinearly to the padded input size and the
    offsets multiplied by the upsampling ratio (4), as the reference.
    Losses: ``loss_center`` (MSE weighted by ``gt_center_weights``, weight
    200) and ``loss_offset`` (L1 weighted by ``gt_offset_weights``, weight
    0.01), each normalized by its weight sum.

    ``forward`` is :meth:`forward_decoder` (the decoder) followed by
    :meth:`forward_prediction` (head convs and predictors); built with
    ``decoder=None`` and ``in_channels`` the head is prediction-only and
    takes decoded features (PISR's final heads).

    Args:
        decoder (dict, optional): :class:`PanopticDeepLabDecoder` config;
            None for a prediction-only head.
        head_channels (int): Channels of each head conv. Defaults to 32.
        head_kernel_size (int): Kernel of the head convs. Defaults to 5.
        loss_center (dict): Center loss config.
        loss_offset (dict): Offset loss config.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        align_corners (bool): For the upsampling. Defaults to False.
        in_channels (int, optional): Channels of the decoded features, only
            (and then required) when ``decoder`` is None.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 decoder: Optional[ConfigType],
                 head_channels: int = 32,
                 head_kernel_size: int = 5,
                 loss_center: ConfigType = dict(
                     type='DeepLabWeightedPixelLoss',
                     criterion='mse',
                     loss_weight=200.0),
                 loss_offset: ConfigType = dict(
                     type='DeepLabWeightedPixelLoss',
                     criterion='l1',
                     loss_weight=0.01),
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 in_channels: Optional[int] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.align_corners = align_corners
        self.decoder, decoder_channels = build_optional_decoder(
            decoder, in_channels)

        def head_conv() -> nn.Module:
            return DepthwiseSeparableConvModule(
                decoder_channels,
                head_channels,
                head_kernel_size,
                padding=head_kernel_size // 2,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)

        self.center_head = head_conv()
        self.center_predictor = nn.Conv2d(head_channels, 1, 1)
        self.offset_head = head_conv()
        self.offset_predictor = nn.Conv2d(head_channels, 2, 1)
        self.loss_center = MODELS.build(loss_center)
        self.loss_offset = MODELS.build(loss_offset)

    def init_weights(self) -> None:
        """Small normal init of the predictors (std 0.001, bias 0), as the
        reference."""
        super().init_weights()
        for predictor in (self.center_predictor, self.offset_predictor):
            nn.init.normal_(predictor.weight, 0, 0.001)
            nn.init.constant_(predictor.bias, 0)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Center heatmap and offsets at stride 4.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.

        Returns:
            tuple[Tensor, Tensor]: (B, 1, H/4, W/4) center heatmap and
            (B, 2, H/4, W/4) (dy, dx) offsets in stride-4 pixels.
        """
        return self.forward_prediction(self.forward_decoder(feats))

    def forward_decoder(self, feats: Sequence[Tensor]) -> Tensor:
        """Decoded features.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.

        Returns:
            Tensor: (B, decoder_channels, H/4, W/4).
        """
        if self.decoder is None:
            raise RuntimeError('prediction-only head (decoder=None): call '
                               'forward_prediction on decoded features')
        return self.decoder(feats)

    def forward_prediction(self, decoded: Tensor) -> Tuple[Tensor, Tensor]:
        """Center heatmap and offsets of decoded features.

        Args:
            decoded (Tensor): (B, C, h, w) decoded features.

        Returns:
            tuple[Tensor, Tensor]: (B, 1, h, w) center heatmap and
            (B, 2, h, w) (dy, dx) offsets in pixels of that map.
        """
        center = self.center_predictor(self.center_head(decoded))
        offsets = self.offset_predictor(self.offset_head(decoded))
        return center, offsets

    def loss_by_feat(self, center: Tensor, offsets: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Center and offset losses of stride-4 outputs.

        Args:
            center (Tensor): (B, 1, h, w) heatmap.
            offsets (Tensor): (B, 2, h, w) offsets in pixels of that map.
            batch_data_samples (list[DetDataSample]): With
                ``gt_center_heatmap``, ``gt_center_weights``,
                ``gt_offsets``, ``gt_offset_weights`` padded to
                ``batch_input_shape``.

        Returns:
            dict[str, Tensor]: ``loss_center`` and ``loss_offset``.
        """
        gt_center = stack_dense_targets(batch_data_samples,
                                        'gt_center_heatmap')
        center_weights = stack_dense_targets(batch_data_samples,
                                             'gt_center_weights')
        gt_offsets = stack_dense_targets(batch_data_samples, 'gt_offsets')
        offset_weights = stack_dense_targets(batch_data_samples,
                                             'gt_offset_weights')
        center, offsets = resize_center_and_offsets(
            center, offsets, gt_center.shape[-2:], self.align_corners)
        return dict(
            loss_center=self.loss_center(center, gt_center, center_weights),
            loss_offset=self.loss_offset(offsets, gt_offsets,
                                         offset_weights))

    def loss(self, feats: Sequence[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Forward and losses.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.
            batch_data_samples (list[DetDataSample]): Ground truth.

        Returns:
            dict[str, Tensor]: ``loss_center`` and ``loss_offset``.
        """
        center, offsets = self(feats)
        return self.loss_by_feat(center, offsets, batch_data_samples)
