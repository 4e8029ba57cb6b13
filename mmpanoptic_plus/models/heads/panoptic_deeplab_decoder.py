# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPModule
from mmseg.models.utils import resize
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class PanopticDeepLabDecoder(BaseModule):
    """One decoder of Panoptic-DeepLab (Cheng et al., CVPR 2020, Sec. 3.1,
    Fig. 2): ASPP on the last backbone feature, then a DeepLabV3+ style
    fusion with each low-level feature in turn (stride 8, then 4).

    Layout (reference: detectron2 ``DeepLabV3PlusHead`` with
    ``USE_DEPTHWISE_SEPARABLE_CONV``, the paper's decoder):

    - ASPP: image pooling branch (global average pool + 1x1 conv, upsampled
      back), a 1x1 branch and one 3x3 atrous branch per dilation (mmseg's
      :class:`ASPPModule`; with ``aspp_depthwise_separable`` the atrous
      branches are depthwise-separable, mmseg's
      :class:`DepthwiseSeparableASPPModule`, as detectron2's
      ``ASPP(use_depthwise_separable_conv=True)``: the paper configs use
      it), concatenated, projected by a 1x1 conv to ``aspp_channels``,
      dropout ``aspp_dropout``.
    - Per low-level feature ``i`` (``low_level_in_indices``, e.g. C3 then
      C2): 1x1 projection to ``project_channels[i]``; the running decoder
      feature is bilinearly upsampled to its size, concatenated with it and
      fused by one depthwise-separable ``fuse_kernel_size`` conv (5x5 in
      the paper) to ``decoder_channels``.

    The image pooling branch pools globally (as mmseg's ASPP head); the
    detectron2 reference instead average-pools with a window equal to the
    training crop / 16 and stride 1, which equals global pooling on the
    training crops but not on full test images.

    Args:
        in_channels (Sequence[int]): Channels of every backbone output
            (e.g. (256, 512, 1024, 2048) for ResNet-50).
        aspp_in_index (int): Backbone output fed to ASPP. Defaults to -1.
        low_level_in_indices (Sequence[int]): Backbone outputs fused in
            order. Defaults to (1, 0) (stride 8, then stride 4).
        project_channels (Sequence[int]): 1x1 projection channels of each
            low-level feature. Defaults to (64, 32) (semantic decoder; the
            instance decoder uses (32, 16)).
        aspp_channels (int): ASPP output channels. Defaults to 256.
        aspp_dilations (Sequence[int]): Atrous rates of the 3x3 branches.
            Defaults to (6, 12, 18) (output stride 16).
        aspp_dropout (float): Dropout after ASPP. Defaults to 0.1.
        aspp_depthwise_separable (bool): Depthwise-separable atrous convs
            (mmseg's :class:`DepthwiseSeparableASPPModule`). Defaults to
            False.
        decoder_channels (int): Channels of the fused features. Defaults to
            256 (semantic; 128 instance).
        fuse_kernel_size (int): Kernel of the depthwise-separable fusion
            conv. Defaults to 5.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        align_corners (bool): For the bilinear upsampling. Defaults to
            False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 aspp_in_index: int = -1,
                 low_level_in_indices: Sequence[int] = (1, 0),
                 project_channels: Sequence[int] = (64, 32),
                 aspp_channels: int = 256,
                 aspp_dilations: Sequence[int] = (6, 12, 18),
                 aspp_dropout: float = 0.1,
                 aspp_depthwise_separable: bool = False,
                 decoder_channels: int = 256,
                 fuse_kernel_size: int = 5,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(project_channels) != len(low_level_in_indices):
            raise ValueError(
                f'{len(low_level_in_indices)} low-level features but '
                f'{len(project_channels)} project_channels')
        self.in_channels = tuple(in_channels)
        self.aspp_in_index = aspp_in_index
        self.low_level_in_indices = tuple(low_level_in_indices)
        self.decoder_channels = decoder_channels
        self.align_corners = align_corners
        conv_kwargs = dict(
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        aspp_in_channels = self.in_channels[aspp_in_index]
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(aspp_in_channels, aspp_channels, 1, **conv_kwargs))
        aspp_type = DepthwiseSeparableASPPModule \
            if aspp_depthwise_separable else ASPPModule
        # dilation 1 is the 1x1 branch (ASPPModule's convention)
        self.aspp = aspp_type(
            dilations=(1, ) + tuple(aspp_dilations),
            in_channels=aspp_in_channels,
            channels=aspp_channels,
            **conv_kwargs)
        self.aspp_project = ConvModule(
            (len(aspp_dilations) + 2) * aspp_channels, aspp_channels, 1,
            **conv_kwargs)
        self.aspp_dropout = nn.Dropout(aspp_dropout) \
            if aspp_dropout > 0 else nn.Identity()

        self.projections = nn.ModuleList()
        self.fusions = nn.ModuleList()
        previous_channels = aspp_channels
        for index, channels in zip(self.low_level_in_indices,
                                   project_channels):
            self.projections.append(
                ConvModule(self.in_channels[index], channels, 1,
                           **conv_kwargs))
            self.fusions.append(
                DepthwiseSeparableConvModule(
                    channels + previous_channels,
                    decoder_channels,
                    fuse_kernel_size,
                    padding=fuse_kernel_size // 2,
                    **conv_kwargs))
            previous_channels = decoder_channels

    def forward_aspp(self, feature: Tensor) -> Tensor:
        """ASPP of the deepest feature.

        Args:
            feature (Tensor): (B, C_in, h, w).

        Returns:
            Tensor: (B, aspp_channels, h, w).
        """
        pooled = resize(
            self.image_pool(feature),
            size=feature.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        branches = [pooled] + self.aspp(feature)
        return self.aspp_dropout(self.aspp_project(torch.cat(branches, 1)))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Decode the backbone features.

        Args:
            feats (Sequence[Tensor]): Backbone outputs, ``feats[i]`` of
                shape (B, in_channels[i], H_i, W_i).

        Returns:
            Tensor: (B, decoder_channels, H_l, W_l) at the size of the last
            low-level feature (stride 4 with the defaults).
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} backbone '
                             f'features, got {len(feats)}')
        decoded = self.forward_aspp(feats[self.aspp_in_index])
        for index, projection, fusion in zip(self.low_level_in_indices,
                                             self.projections, self.fusions):
            low_level = projection(feats[index])
            decoded = resize(
                decoded,
                size=low_level.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
            decoded = fusion(torch.cat([low_level, decoded], dim=1))
        return decoded
