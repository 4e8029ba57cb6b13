# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from .pisr_encodings import instance_encodings, semantic_encodings


@MODELS.register_module()
class PISREncoder(BaseModule):
    """Panoptic, Instance and Semantic Relations module (PISR, Borse et al.,
    CVPR 2022, Sec. 3.1-3.4): relational context from panoptic encodings.

    With ``F`` the (C_in, HW) feature map, ``S`` the (N, HW) soft semantic
    map and ``I`` the (K, HW) initial instance heatmaps:

    - Panoptic encodings (Sec. 3.1-3.2): ``E_pan = [S F^T; I F^T]``,
      (N + K) x C_in (:func:`semantic_encodings`,
      :func:`instance_encodings`: region-weighted mean features).
    - Reweighting (Sec. 3.3): a 2-layer fully connected network
      (C_in -> ``reweight_channels`` -> 1, ReLU between, sigmoid after),
      shared by all encodings, gives one weight per encoding;
      ``E~ = w * E_pan``. ``use_reweighting=False`` (the paper's ablation)
      drops it: ``E~ = E_pan`` and there are no FC parameters.
    - Panoptic Relational Attention (Sec. 3.4):
      ``F_sp = g_s(E~)^T h(F)``, (N + K) x HW: the affinity of every
      encoding with every pixel, ``g_s`` a 1x1 conv on the encodings
      (C_in -> ``channels``) and ``h`` a 3x3 conv on ``F`` (C_in ->
      ``channels``); then ``F_pan = g_q(E~)^T g_p(F_sp)``, C_out x HW,
      ``g_p`` a 1x1 conv mixing the N + K affinity maps (the relations
      across classes and instances) and ``g_q`` a 1x1 conv on the encodings
      (C_in -> ``out_channels``): every pixel gathers the encodings weighted
      by its related affinities.

    Layer details the equations leave open, chosen here: ``h`` and ``g_p``
    are conv + norm + activation (``ConvModule``; the norm after ``g_p``
    also keeps the unscaled affinities in range), ``g_s`` and ``g_q`` are
    plain linear maps of each encoding (a 1x1 conv over the encodings, no
    norm: batch statistics would mix in the masked slots).

    Invalid instance slots (``inst_valid`` False: fewer centers than K, or
    none) are removed from the attention: their affinity maps are zeroed
    before ``g_p`` and their ``g_q`` rows are zeroed, so they contribute
    nothing whatever the biases.

    Args:
        in_channels (int): C_in, channels of the feature map ``F``.
        num_semantic (int): N, semantic classes (rows of ``S``).
        num_instances (int): K, instance slots (rows of ``I``).
        channels (int): Channels of the affinity space of ``g_s`` and
            ``h``. Defaults to 256.
        out_channels (int, optional): C_out of ``F_pan``. Defaults to
            ``in_channels``.
        use_reweighting (bool): Panoptic encodings reweighting (Sec. 3.3).
            Defaults to True.
        reweight_channels (int, optional): Hidden width of the reweighting
            network. Defaults to ``max(in_channels // 4, 1)``.
        conv_cfg (dict, optional): Conv config of ``h`` and ``g_p``.
        norm_cfg (dict): Norm config of ``h`` and ``g_p``. Defaults to BN.
        act_cfg (dict): Activation config of ``h`` and ``g_p``. Defaults to
            ReLU.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 num_semantic: int,
                 num_instances: int,
                 channels: int = 256,
                 out_channels: Optional[int] = None,
                 use_reweighting: bool = True,
                 reweight_channels: Optional[int] = None,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('num_semantic', num_semantic),
                            ('num_instances', num_instances),
                            ('channels', channels)):
            if value < 1:
                raise ValueError(f'{name} must be positive, got {value}')
        self.in_channels = in_channels
        self.num_semantic = num_semantic
        self.num_instances = num_instances
        self.channels = channels
        self.out_channels = out_channels or in_channels
        self.use_reweighting = use_reweighting
        num_encodings = num_semantic + num_instances
        if use_reweighting:
            reweight_channels = reweight_channels or max(in_channels // 4, 1)
            self.reweight = nn.Sequential(
                nn.Linear(in_channels, reweight_channels),
                nn.ReLU(inplace=True), nn.Linear(reweight_channels, 1),
                nn.Sigmoid())
        else:
            self.reweight = None
        conv_kwargs = dict(
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.h = ConvModule(
            in_channels, channels, 3, padding=1, **conv_kwargs)
        self.g_s = nn.Linear(in_channels, channels)
        self.g_p = ConvModule(num_encodings, num_encodings, 1, **conv_kwargs)
        self.g_q = nn.Linear(in_channels, self.out_channels)

    def panoptic_encodings(self, feats: Tensor, sem_probs: Tensor,
                           inst_heatmaps: Tensor) -> Tensor:
        """``E_pan = [E_sem; E_ins]`` (Sec. 3.1-3.2).

        Args:
            feats (Tensor): (B, C_in, H, W).
            sem_probs (Tensor): (B, N, H, W).
            inst_heatmaps (Tensor): (B, K, H, W).

        Returns:
            Tensor: (B, N + K, C_in).
        """
        return torch.cat([
            semantic_encodings(sem_probs, feats),
            instance_encodings(inst_heatmaps, feats)
        ], dim=1)

    def reweight_encodings(self,
                           encodings: Tensor) -> Tuple[Tensor, Tensor]:
        """Panoptic encodings reweighting (Sec. 3.3).

        Args:
            encodings (Tensor): (B, N + K, C_in) ``E_pan``.

        Returns:
            tuple[Tensor, Tensor]: (B, N + K, C_in) ``E~`` and the (B, N + K)
            weights (all ones when reweighting is off).
        """
        if self.reweight is None:
            return encodings, encodings.new_ones(encodings.shape[:2])
        weights = self.reweight(encodings).squeeze(-1)
        return encodings * weights[..., None], weights

    def forward(self, feats: Tensor, sem_probs: Tensor, inst_heatmaps: Tensor,
                inst_valid: Tensor) -> Tensor:
        """Relational context features ``F_pan``.

        Args:
            feats (Tensor): (B, C_in, H, W) feature map ``F``.
            sem_probs (Tensor): (B, N, H, W) soft semantic map ``S``.
            inst_heatmaps (Tensor): (B, K, H, W) initial instance heatmaps
                ``I``.
            inst_valid (Tensor): (B, K) bool, False for empty slots.

        Returns:
            Tensor: (B, C_out, H, W) ``F_pan``.
        """
        batch, _, height, width = feats.shape
        if feats.size(1) != self.in_channels:
            raise ValueError(f'feats must have {self.in_channels} channels, '
                             f'got {tuple(feats.shape)}')
        if sem_probs.shape != (batch, self.num_semantic, height, width):
            raise ValueError(
                'sem_probs must be '
                f'{(batch, self.num_semantic, height, width)}, got '
                f'{tuple(sem_probs.shape)}')
        if inst_heatmaps.shape != (batch, self.num_instances, height,
                                   width):
            raise ValueError(
                'inst_heatmaps must be '
                f'{(batch, self.num_instances, height, width)} (K = '
                f'num_instances), got {tuple(inst_heatmaps.shape)}')
        if inst_valid.shape != (batch, self.num_instances):
            raise ValueError(
                f'inst_valid must be {(batch, self.num_instances)}, got '
                f'{tuple(inst_valid.shape)}')
        encodings = self.panoptic_encodings(feats, sem_probs, inst_heatmaps)
        encodings, _ = self.reweight_encodings(encodings)
        # (B, N + K): semantic slots always take part
        slot_mask = torch.cat([
            inst_valid.new_ones(batch, self.num_semantic),
            inst_valid.to(torch.bool)
        ], dim=1).to(feats.dtype)
        keys = self.g_s(encodings)  # (B, N + K, channels)
        affinity = torch.einsum('bkc,bchw->bkhw', keys, self.h(feats))
        affinity = affinity * slot_mask[..., None, None]
        values = self.g_q(encodings) * slot_mask[..., None]  # (B, N+K, C_out)
        return torch.einsum('bkc,bkhw->bchw', values, self.g_p(affinity))
