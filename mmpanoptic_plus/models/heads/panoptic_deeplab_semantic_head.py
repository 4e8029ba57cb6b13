# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import DepthwiseSeparableConvModule
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from .panoptic_deeplab_utils import (build_optional_decoder,
                                     stack_dense_targets)


@MODELS.register_module()
class PanopticDeepLabSemanticHead(BaseModule):
    """Semantic branch of Panoptic-DeepLab (Cheng et al., CVPR 2020, Sec.
    3.1): its own decoder (:class:`PanopticDeepLabDecoder`, 256 channels),
    a depthwise-separable 5x5 conv to ``head_channels`` (256) and a 1x1
    conv to ``num_classes`` logits at stride 4.

    Loss: the stride-4 logits are upsampled bilinearly to the padded input
    size (x4, as the reference) and scored by ``loss_sem`` (hard pixel
    mining CE) against ``gt_sem_seg`` with ``gt_semantic_weights`` as pixel
    weights.

    ``forward`` is :meth:`forward_decoder` (the decoder) followed by
    :meth:`forward_prediction` (head conv and predictor); built with
    ``decoder=None`` and ``in_channels`` the head is prediction-only and
    takes decoded features (PISR's final heads, which run on the relational
    features instead of the decoder's).

    Args:
        num_classes (int): Things + stuff classes.
        decoder (dict, optional): :class:`PanopticDeepLabDecoder` config;
            None for a prediction-only head.
        head_channels (int): Channels of the head conv. Defaults to 256.
        head_kernel_size (int): Kernel of the head conv. Defaults to 5.
        loss_sem (dict): Loss config. Defaults to
            ``HardPixelCrossEntropyLoss(top_ratio=0.2, count='all',
            rounding='floor')`` (Sec. 3.1).
        semantic_weights_key (str, optional): Data sample field with the
            pixel weights; None for unweighted. Defaults to
            ``'gt_semantic_weights'``.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        align_corners (bool): For the upsampling. Defaults to False.
        in_channels (int, optional): Channels of the decoded features, only
            (and then required) when ``decoder`` is None.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 num_classes: int,
                 decoder: Optional[ConfigType],
                 head_channels: int = 256,
                 head_kernel_size: int = 5,
                 loss_sem: ConfigType = dict(
                     type='HardPixelCrossEntropyLoss',
                     top_ratio=0.2,
                     count='all',
                     rounding='floor',
                     ignore_index=255,
                     loss_weight=1.0),
                 semantic_weights_key: str = 'gt_semantic_weights',
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 in_channels: Optional[int] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.align_corners = align_corners
        self.semantic_weights_key = semantic_weights_key
        self.decoder, in_channels = build_optional_decoder(
            decoder, in_channels)
        self.head = DepthwiseSeparableConvModule(
            in_channels,
            head_channels,
            head_kernel_size,
            padding=head_kernel_size // 2,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.predictor = nn.Conv2d(head_channels, num_classes, 1)
        self.loss_sem = MODELS.build(loss_sem)
        self.ignore_index = getattr(self.loss_sem, 'ignore_index', 255)

    def init_weights(self) -> None:
        """Small normal init of the predictor (std 0.001, bias 0), as the
        reference."""
        super().init_weights()
        nn.init.normal_(self.predictor.weight, 0, 0.001)
        nn.init.constant_(self.predictor.bias, 0)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Semantic logits.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.

        Returns:
            Tensor: (B, num_classes, H/4, W/4) logits.
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

    def forward_prediction(self, decoded: Tensor) -> Tensor:
        """Semantic logits of decoded features.

        Args:
            decoded (Tensor): (B, C, h, w) decoded features.

        Returns:
            Tensor: (B, num_classes, h, w) logits.
        """
        return self.predictor(self.head(decoded))

    def loss_by_feat(self, sem_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Semantic loss of stride-4 logits.

        Args:
            sem_logits (Tensor): (B, num_classes, h, w) logits.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                (and the weights field) padded to ``batch_input_shape``.

        Returns:
            dict[str, Tensor]: ``loss_sem``.
        """
        labels = stack_dense_targets(batch_data_samples, 'gt_sem_seg',
                                     'sem_seg')[:, 0]
        sem_logits = resize(
            sem_logits,
            size=labels.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)
        weights = None
        if self.semantic_weights_key is not None:
            weights = stack_dense_targets(batch_data_samples,
                                          self.semantic_weights_key)[:, 0]
        return dict(loss_sem=self.loss_sem(sem_logits, labels, weights))

    def loss(self, feats: Sequence[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Forward and loss.

        Args:
            feats (Sequence[Tensor]): Backbone outputs.
            batch_data_samples (list[DetDataSample]): Ground truth.

        Returns:
            dict[str, Tensor]: ``loss_sem``.
        """
        return self.loss_by_feat(self(feats), batch_data_samples)
