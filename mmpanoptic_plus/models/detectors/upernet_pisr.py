# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from ..layers.pisr_encodings import (HEATMAP_RADIUS, check_heatmap_normalizer,
                                     instance_heatmaps_from_offsets)
from ..necks.upernet_fusion_neck import \
    UPerNetFusionNeck  # noqa: F401 (registers it)
from .panoptic_deeplab import PanopticDeepLab
from .panoptic_deeplab_pisr import (FINAL_INPUTS, PanopticDeepLabOutputs,
                                    initial_and_final_losses)


@MODELS.register_module()
class UPerNetPISR(PanopticDeepLab):
    """UPerNet (Xiao et al., ECCV 2018) modified for panoptic segmentation,
    with PISR (Borse et al., CVPR 2022, Sec. 4.3 and Table 2: UPerNet
    Swin-L on COCO, 50.3 -> 52.9 PQ).

    The paper does not describe its panoptic modification of UPerNet. The
    one chosen here keeps UPerNet's feature fusion and gives it
    Panoptic-DeepLab's prediction heads, so that Panoptic-DeepLab's
    targets, losses and bottom-up grouping apply unchanged:

    1. ``F`` = the fused stride-4 map of UPerNet (PPM + FPN +
       ``fpn_bottleneck``, :class:`UPerNetFusionNeck`: mmseg's ``UPerHead``
       without its classifier), ``neck.channels`` (512) channels.
    2. Initial heads, prediction-only (``decoder=None``) Panoptic-DeepLab
       heads on ``F``: semantic (5x5 depthwise-separable conv + 1x1, the
       hard-pixel CE), instance (center heatmap and offsets, MSE and L1).
       Together they are the base model ("UPerNet for panoptic").
    3. ``S`` = softmax of the initial semantic logits; ``I`` = heatmaps of
       the top-K initial centers from the initial offsets, times the thing
       map ``argmax S in things`` (:func:`instance_heatmaps_from_offsets`,
       as :class:`PanopticDeepLabPISR`, with its fixed-radius normaliser of
       footnote 2 by default).
    4. One PISR on ``F`` (there is one shared feature map, not one per
       branch as in Panoptic-DeepLab): ``F_pan``, with as many channels as
       ``F``.
    5. Final heads, prediction-only copies of the initial ones (own
       weights) on ``F_pan`` (``final_input='pan'``, default) or ``[F;
       F_pan]`` (``'concat'``). :meth:`predict` post-processes the final
       outputs as Panoptic-DeepLab does (majority vote by default).

    Loss (Eq. 1): ``loss_sem_init``, ``loss_center_init``,
    ``loss_offset_init`` (times ``gamma``) and ``loss_sem``,
    ``loss_center``, ``loss_offset``.

    **Without PISR** (``pisr=None``): the base model alone, steps 1-2: the
    initial heads are the prediction, their losses are ``loss_sem``,
    ``loss_center``, ``loss_offset`` and there is no PISR module and no
    final head (the baseline configs in ``configs/upernet/``). A switch
    rather than a second class, so that baseline and PISR configs differ
    only in the PISR keys and a baseline checkpoint loads into the PISR
    model's backbone, neck and initial heads.

    Args:
        backbone (dict): Backbone config (ResNet, Swin), 4 levels, strides
            4-32.
        neck (dict): :class:`UPerNetFusionNeck` config.
        semantic_head (dict): :class:`PanopticDeepLabSemanticHead` config;
            ``decoder`` must be None or unset, ``in_channels`` is
            ``neck.channels``.
        instance_head (dict): :class:`PanopticDeepLabInstanceHead` config,
            same rules.
        num_things_classes (int): Thing classes.
        num_stuff_classes (int): Stuff classes.
        pisr (dict, optional): :class:`PISREncoder` config with
            ``num_instances`` (K); ``in_channels``, ``num_semantic``,
            ``out_channels`` are set here; ``channels`` defaults to
            ``neck.channels``. None: no PISR (the base model; the
            arguments below that name PISR or the final heads are then
            unused, and final head overrides are refused). Defaults to None.
        final_semantic_head (dict, optional): Overrides of the final
            semantic head (a copy of ``semantic_head``).
        final_instance_head (dict, optional): Same for the instance head.
        gamma (float): Weight of the initial losses. Defaults to 1.0.
        pisr_center_threshold (float): Center threshold of the top-K.
            Defaults to 0.1.
        pisr_nms_kernel (int): Max-pool NMS window of these centers on the
            stride-4 map. Defaults to 3.
        pisr_heatmap_normalizer (float or str): ``C`` of footnote 2: a
            radius in stride-4 map pixels, or ``'instance'`` / ``'image'``
            (see :func:`instance_heatmaps_from_offsets`). Defaults to
            :data:`HEATMAP_RADIUS`.
        final_input (str): ``'pan'`` (default) or ``'concat'``.
        train_cfg, test_cfg, data_preprocessor, init_cfg,
        panoptic_fusion_head: As :class:`PanopticDeepLab`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 semantic_head: ConfigType,
                 instance_head: ConfigType,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 pisr: OptConfigType = None,
                 final_semantic_head: OptConfigType = None,
                 final_instance_head: OptConfigType = None,
                 gamma: float = 1.0,
                 pisr_center_threshold: float = 0.1,
                 pisr_nms_kernel: int = 3,
                 pisr_heatmap_normalizer: Union[float,
                                                str] = HEATMAP_RADIUS,
                 final_input: str = 'pan',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 panoptic_fusion_head: OptConfigType = None) -> None:
        if gamma < 0:
            raise ValueError(f'gamma must be non-negative, got {gamma}')
        if final_input not in FINAL_INPUTS:
            raise ValueError(f'final_input must be one of {FINAL_INPUTS}, '
                             f'got {final_input!r}')
        check_heatmap_normalizer(pisr_heatmap_normalizer)
        if pisr is None and (final_semantic_head or final_instance_head):
            raise ValueError('final_semantic_head / final_instance_head '
                             'configure the heads after PISR: without pisr '
                             'there are none')
        if pisr is not None and 'num_instances' not in pisr:
            raise ValueError('pisr must set num_instances (K)')
        neck = ConfigDict(neck)
        channels = neck.channels
        heads = []
        for name, head in (('semantic_head', semantic_head),
                           ('instance_head', instance_head)):
            head = ConfigDict(copy.deepcopy(head))
            if head.get('decoder') is not None:
                raise ValueError(f'{name}.decoder must be None: the heads '
                                 "read UPerNet's fused map")
            head.decoder = None
            given = head.setdefault('in_channels', channels)
            if given != channels:
                raise ValueError(f'{name}.in_channels={given} but the neck '
                                 f'gives {channels}: leave it unset')
            heads.append(head)
        super().__init__(
            backbone=backbone,
            semantic_head=heads[0],
            instance_head=heads[1],
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            panoptic_fusion_head=panoptic_fusion_head)
        self.neck = MODELS.build(neck)
        self.gamma = gamma
        self.final_input = final_input
        self.pisr_center_threshold = pisr_center_threshold
        self.pisr_nms_kernel = pisr_nms_kernel
        self.pisr_heatmap_normalizer = pisr_heatmap_normalizer
        self.pisr = None
        self.num_instances = 0
        if pisr is not None:
            self._build_pisr_stage(
                ConfigDict(pisr), heads, channels,
                (final_semantic_head, final_instance_head))

    @property
    def with_pisr(self) -> bool:
        """Whether the PISR stage (module and final heads) exists."""
        return self.pisr is not None

    def _build_pisr_stage(self, pisr: ConfigDict, heads: List[ConfigDict],
                          channels: int,
                          final_overrides: Tuple[OptConfigType,
                                                 OptConfigType]) -> None:
        """The PISR module and the final heads (steps 3-5)."""
        self.num_instances = pisr.num_instances
        pisr.setdefault('channels', channels)
        for key, value in (('in_channels', channels),
                           ('num_semantic', self.num_classes),
                           ('out_channels', channels)):
            given = pisr.setdefault(key, value)
            if given != value:
                raise ValueError(f'pisr.{key}={given} but the model needs '
                                 f'{value}: leave it unset')
        self.pisr = MODELS.build(pisr)
        final_channels = channels * (2 if self.final_input == 'concat' else 1)
        self.final_semantic_head = self._build_final_head(
            heads[0], final_overrides[0], final_channels,
            num_classes=self.num_classes)
        self.final_instance_head = self._build_final_head(
            heads[1], final_overrides[1], final_channels)

    @staticmethod
    def _build_final_head(base: ConfigDict, overrides: OptConfigType,
                          in_channels: int, **defaults) -> nn.Module:
        """A copy of a base head config (own weights, no init_cfg) on
        ``in_channels``, updated by ``overrides``."""
        cfg = copy.deepcopy(base)
        cfg.pop('init_cfg', None)
        cfg.in_channels = in_channels
        for key, value in defaults.items():
            cfg.setdefault(key, value)
        cfg.update(overrides or {})
        return MODELS.build(cfg)

    def extract_feat(self, batch_inputs: Tensor) -> Tensor:
        """UPerNet's fused map ``F``.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.

        Returns:
            Tensor: (B, neck.channels, H/4, W/4).
        """
        return self.neck(self.backbone(batch_inputs))

    def forward_initial(self, feats: Tensor) -> PanopticDeepLabOutputs:
        """Initial stride-4 predictions (the base model's; step 2).

        Args:
            feats (Tensor): (B, C, H/4, W/4) fused map ``F``.

        Returns:
            PanopticDeepLabOutputs: (B, num_classes, H/4, W/4) logits,
            (B, 1, H/4, W/4) centers, (B, 2, H/4, W/4) offsets.
        """
        return PanopticDeepLabOutputs(
            self.semantic_head.forward_prediction(feats),
            *self.instance_head.forward_prediction(feats))

    def forward_initial_and_final(
        self, batch_inputs: Tensor
    ) -> Tuple[PanopticDeepLabOutputs, PanopticDeepLabOutputs]:
        """Initial and final stride-4 predictions (needs PISR).

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.

        Returns:
            tuple[PanopticDeepLabOutputs, PanopticDeepLabOutputs]: Initial
            (heads on ``F``) and final (heads on ``F_pan``) outputs, each
            (B, num_classes, H/4, W/4) logits, (B, 1, H/4, W/4) centers,
            (B, 2, H/4, W/4) offsets.
        """
        if not self.with_pisr:
            raise RuntimeError('built without pisr: there is no final '
                               'prediction, use forward_initial')
        feats = self.extract_feat(batch_inputs)
        initial = self.forward_initial(feats)
        sem_probs = initial.sem_logits.softmax(dim=1)
        thing_map = (sem_probs.argmax(dim=1, keepdim=True) <
                     self.num_things_classes).to(sem_probs.dtype)
        inst_heatmaps, inst_valid = instance_heatmaps_from_offsets(
            initial.center,
            initial.offsets,
            thing_map,
            num_instances=self.num_instances,
            threshold=self.pisr_center_threshold,
            nms_kernel=self.pisr_nms_kernel,
            normalizer=self.pisr_heatmap_normalizer)
        context = self.pisr(feats, sem_probs, inst_heatmaps, inst_valid)
        if self.final_input == 'concat':
            context = torch.cat([feats, context], dim=1)
        final = PanopticDeepLabOutputs(
            self.final_semantic_head.forward_prediction(context),
            *self.final_instance_head.forward_prediction(context))
        return initial, final

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """Final stride-4 outputs (what ``predict`` post-processes; the
        initial ones without PISR).

        Returns:
            tuple[Tensor, Tensor, Tensor]: (B, num_classes, H/4, W/4)
            semantic logits, (B, 1, H/4, W/4) centers, (B, 2, H/4, W/4)
            offsets (stride-4 pixels).
        """
        if not self.with_pisr:
            return tuple(self.forward_initial(self.extract_feat(batch_inputs)))
        return tuple(self.forward_initial_and_final(batch_inputs)[1])

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of the initial (times gamma) and final predictions.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                and the Panoptic-DeepLab dense targets, padded.

        Returns:
            dict[str, Tensor]: ``loss_{sem,center,offset}`` and
            ``loss_{sem,center,offset}_init`` (only the former without
            PISR).
        """
        if not self.with_pisr:
            initial = self.forward_initial(self.extract_feat(batch_inputs))
            losses = self.semantic_head.loss_by_feat(initial.sem_logits,
                                                     batch_data_samples)
            losses.update(
                self.instance_head.loss_by_feat(initial.center,
                                                initial.offsets,
                                                batch_data_samples))
            return losses
        initial, final = self.forward_initial_and_final(batch_inputs)
        return initial_and_final_losses(self, initial, final,
                                        batch_data_samples)
