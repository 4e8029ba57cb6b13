# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Embedding branch of CIAE (Gao et al., "Learning Category- and Instance-
Aware Pixel Embedding for Fast Panoptic Segmentation", Sec. IV-A, Fig. 3)."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.layers import ConvUpsample
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmpanoptic_plus.models.utils import resample_to_grid
from mmpanoptic_plus.registry import MODELS


def coord_channels(feat: Tensor) -> Tensor:
    """(B, 2, H, W) CoordConv channels (Liu et al., NeurIPS 2018): x and y
    of every cell, linearly from -1 to 1 over the map."""
    batch, _, height, width = feat.shape
    ys = torch.linspace(-1, 1, height, device=feat.device, dtype=feat.dtype)
    xs = torch.linspace(-1, 1, width, device=feat.device, dtype=feat.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((grid_x, grid_y))[None].expand(batch, -1, -1, -1)


class CoordConvUpsample(BaseModule):
    """mmdet's :class:`ConvUpsample` (3x3 conv + norm + ReLU, then 2x
    bilinear upsampling, per layer) whose convolutions are CoordConvs: two
    coordinate channels are concatenated to every conv input. Written out
    because ``ConvUpsample`` has no hook for extra input channels.

    Args:
        in_channels (int): Input channels.
        inner_channels (int): Channels of every conv.
        num_layers (int): Convs, each followed by a 2x upsampling.
        norm_cfg (dict, optional): Normalisation of the convs.
    """

    def __init__(self,
                 in_channels: int,
                 inner_channels: int,
                 num_layers: int,
                 norm_cfg: Optional[ConfigType] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.ModuleList()
        for _ in range(num_layers):
            self.conv.append(
                ConvModule(
                    in_channels + 2,
                    inner_channels,
                    3,
                    padding=1,
                    norm_cfg=norm_cfg))
            in_channels = inner_channels

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.conv:
            x = conv(torch.cat((x, coord_channels(x)), dim=1))
            x = F.interpolate(
                x, scale_factor=2, mode='bilinear', align_corners=False)
        return x


@MODELS.register_module()
class CIAEEmbeddingBranch(BaseModule):
    """Pixel embeddings of CIAE before the final upsampling (Sec. IV-A).

    Panoptic FPN's semantic branch (Kirillov et al., CVPR 2019): level
    ``P_{2+k}`` (stride ``4 * 2^k``) passes ``max(k, 1)`` times 3x3 conv +
    GN + ReLU, each followed by 2x bilinear upsampling for ``k > 0`` (none
    for P2), so that every level reaches stride 4; the maps are summed.
    With ``use_coord_conv`` (Table III) the convolutions of the coarsest
    level (P5) are CoordConvs. ``P'`` is a ``final_kernel`` conv of the sum
    to E channels. With ``use_box_embedding`` (Table III), ``P''`` is a
    ``final_kernel`` conv of the sum of the proposal head's box-embedding
    maps (E channels per FPN level P3-P7), each bilinearly resampled to the
    stride-4 grid (exact cell alignment, :func:`resample_to_grid`).

    The output is ``P' + P''`` at stride 4, *before* the paper's 4x bilinear
    upsampling and L2 normalisation (``P = L2norm(up4(P' + P''))``): the
    loss upsamples to the input resolution and takes segment means of the
    unnormalised map (Eq. 3-4: "calculated with the embedding map before L2
    normalization"), inference resamples straight to the output size
    (:func:`mmpanoptic_plus.models.utils.resample_to_output`) and then
    normalises.

    The paper says "a convolution" for both ``P'`` and ``P''`` without a
    kernel size; ``final_kernel=1`` (Panoptic FPN's predictor) is used.

    Args:
        in_channels (int): FPN channels.
        embed_dim (int): E. Defaults to 32 (the paper's).
        inner_channels (int): Channels of the level convs. Defaults to 128
            (Panoptic FPN's).
        num_levels (int): FPN levels used, from P2. Defaults to 4 (P2-P5).
        use_coord_conv (bool): CoordConv in the coarsest level's convs.
            Defaults to True.
        use_box_embedding (bool): Add ``P''``. Defaults to True.
        final_kernel (int): Kernel of the ``P'`` / ``P''`` convs. Defaults
            to 1.
        norm_cfg (dict): Norm of the level convs. Defaults to GN(32).
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int = 32,
                 inner_channels: int = 128,
                 num_levels: int = 4,
                 use_coord_conv: bool = True,
                 use_box_embedding: bool = True,
                 final_kernel: int = 1,
                 norm_cfg: ConfigType = dict(
                     type='GN', num_groups=32, requires_grad=True),
                 init_cfg: OptMultiConfig = dict(
                     type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg)
        if num_levels < 1:
            raise ValueError(f'num_levels must be >= 1, got {num_levels}')
        self.embed_dim = embed_dim
        self.num_levels = num_levels
        self.use_coord_conv = use_coord_conv
        self.use_box_embedding = use_box_embedding
        self.level_convs = nn.ModuleList()
        for level in range(num_levels):
            num_layers = max(level, 1)
            if use_coord_conv and level == num_levels - 1 and level > 0:
                block = CoordConvUpsample(in_channels, inner_channels,
                                          num_layers, norm_cfg)
            else:
                block = ConvUpsample(
                    in_channels,
                    inner_channels,
                    num_layers=num_layers,
                    num_upsample=level,
                    norm_cfg=norm_cfg)
            self.level_convs.append(block)
        padding = final_kernel // 2
        self.conv_embed = nn.Conv2d(
            inner_channels, embed_dim, final_kernel, padding=padding)
        if use_box_embedding:
            self.conv_box_embed = nn.Conv2d(
                embed_dim, embed_dim, final_kernel, padding=padding)

    def forward(self,
                feats: Sequence[Tensor],
                box_embeds: Optional[List[Tensor]] = None,
                box_strides: Optional[Sequence[int]] = None) -> Tensor:
        """``P' + P''`` at stride 4.

        Args:
            feats (Sequence[Tensor]): FPN levels from P2, (B, C, H_l, W_l);
                the first ``num_levels`` are used, P2 at stride 4.
            box_embeds (list[Tensor], optional): (B, E, H_l, W_l) box
                embeddings of the proposal head's levels; required with
                ``use_box_embedding``.
            box_strides (Sequence[int], optional): Their strides.

        Returns:
            Tensor: (B, E, H_2, W_2) unnormalised embeddings at stride 4.
        """
        if len(feats) < self.num_levels:
            raise ValueError(f'{len(feats)} FPN levels for an embedding '
                             f'branch on {self.num_levels}')
        size = tuple(feats[0].shape[-2:])
        summed = None
        for level, block in enumerate(self.level_convs):
            out = block(feats[level])
            if tuple(out.shape[-2:]) != size:
                # a level whose size padding rounded up: crop to P2's grid
                out = out[..., :size[0], :size[1]]
            summed = out if summed is None else summed + out
        embeds = self.conv_embed(summed)
        if self.use_box_embedding:
            if box_embeds is None or box_strides is None:
                raise ValueError('use_box_embedding=True needs the box '
                                 'embeddings and their strides')
            fused = None
            for box_embed, stride in zip(box_embeds, box_strides):
                level = resample_to_grid(box_embed, stride, size, 4)
                fused = level if fused is None else fused + level
            embeds = embeds + self.conv_box_embed(fused)
        return embeds
