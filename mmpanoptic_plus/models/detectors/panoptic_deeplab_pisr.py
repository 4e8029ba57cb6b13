# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import copy
from typing import Dict, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from ..layers.pisr_encodings import (HEATMAP_RADIUS, check_heatmap_normalizer,
                                     instance_heatmaps_from_offsets)
from .panoptic_deeplab import PanopticDeepLab

#: What the final heads see: ``'pan'`` = ``F_pan`` alone (default: the
#: literal reading of "F_pan is fed to the final heads"), ``'concat'`` =
#: ``[F; F_pan]`` (the decoder features next to the relational context, as
#: the Panoptic FPN wrapper does for its semantic head).
FINAL_INPUTS = ('concat', 'pan')


class PanopticDeepLabOutputs(NamedTuple):
    """Stride-4 outputs of one set of Panoptic-DeepLab prediction heads.

    Attributes:
        sem_logits (Tensor): (B, num_classes, h, w).
        center (Tensor): (B, 1, h, w) center heatmap.
        offsets (Tensor): (B, 2, h, w) (dy, dx) in pixels of the map.
    """
    sem_logits: Tensor
    center: Tensor
    offsets: Tensor


@MODELS.register_module()
class PanopticDeepLabPISR(PanopticDeepLab):
    """Panoptic-DeepLab with PISR (Borse et al., "Panoptic, Instance and
    Semantic Relations: A Relational Context Encoder to Enhance Panoptic
    Segmentation", CVPR 2022, Sec. 3).

    Data flow (one image, stride-4 maps):

    1. The backbone and both decoders of Panoptic-DeepLab give the semantic
       features ``F_s`` and the instance features ``F_i``.
    2. The base heads (``semantic_head``, ``instance_head``) predict the
       *initial* semantic logits, center heatmap and offsets from them.
    3. ``S`` = softmax of the initial logits; the initial instance heatmaps
       ``I`` come from the top-K initial centers and offsets
       (:func:`instance_heatmaps_from_offsets`, ``pisr_center_threshold``,
       ``pisr_nms_kernel``, ``pisr_heatmap_normalizer``: footnote 2's
       normalisation, by default a fixed 16-map-pixel radius so that
       neighbouring instances get separate heatmaps), multiplied by the
       binary thing map
       ``argmax(S) in things`` (the paper's thing/stuff binary map).
    4. Dual decoder, one PISR per branch: ``semantic_pisr`` runs on
       ``F_s`` and ``instance_pisr`` on ``F_i``, both with the same shared
       ``S`` and ``I`` (the encodings of a branch summarise that branch's
       features; the paper shows PISR on one feature map, and this is its
       direct application to each of Panoptic-DeepLab's two).
    5. Final heads (prediction-only copies of the base heads: head conv +
       predictor, no decoder, own weights) predict the final outputs from
       each branch's ``F_pan`` (``final_input='pan'``, default) or
       ``[F; F_pan]`` (``final_input='concat'``). The paper feeds F_pan to
       the final heads without saying whether F goes along. With ``'pan'``
       every pixel's final features are a combination of the N + K
       encodings (a low-rank bottleneck when N + K is small, e.g. the
       synthetic set's 5 + 10), yet on that set it scored 59.4 PQ against
       57.7 for ``'concat'`` (same budget, one seed each; see
       configs/pisr/README.md). Inference uses the final outputs only, with
       the parent's post-processing (:meth:`_forward` is overridden).

    Loss (the paper's training objective):
    ``L = gamma (L'_sem + L'_ins) + L_sem + L_ins``, each term the base
    model's own loss: the initial terms are reported as ``loss_sem_init``,
    ``loss_center_init``, ``loss_offset_init`` (already multiplied by
    ``gamma``), the final ones under the base names ``loss_sem``,
    ``loss_center``, ``loss_offset``.

    Gradients: ``S`` stays attached (the initial semantic head learns from
    the final losses too); center selection and the heatmap geometry are
    not differentiable (see :func:`instance_heatmaps_from_offsets`), so the
    initial instance head learns from its own losses.

    Args:
        backbone (dict): Backbone config.
        semantic_head (dict): Base (initial) semantic head,
            :class:`PanopticDeepLabSemanticHead`.
        instance_head (dict): Base (initial) instance head,
            :class:`PanopticDeepLabInstanceHead`.
        num_things_classes (int): Thing classes.
        num_stuff_classes (int): Stuff classes.
        pisr (dict): :class:`PISREncoder` config shared by both branches,
            without ``in_channels`` / ``num_semantic`` / ``out_channels``
            (set per branch: the decoder channels and the number of
            classes). Must give ``num_instances`` (K); ``channels`` (the
            affinity space) defaults to each branch's decoder channels.
        final_semantic_head (dict, optional): Overrides of the final
            semantic head, a copy of ``semantic_head`` with ``decoder=None``
            and ``in_channels`` = the PISR output channels.
        final_instance_head (dict, optional): Same for the final instance
            head.
        gamma (float): Weight of the initial-prediction losses. Defaults to
            1.0.
        pisr_center_threshold (float): Center score threshold for the top-K
            instances of PISR. Defaults to 0.1 (Panoptic-DeepLab's
            inference threshold).
        pisr_nms_kernel (int): Max-pool NMS window for these centers, on the
            stride-4 map. Defaults to 3 (about the 7 input pixels of the
            Cityscapes inference NMS, divided by the stride).
        pisr_heatmap_normalizer (float or str): ``C`` of footnote 2 for the
            initial instance heatmaps: a radius in stride-4 map pixels, or
            ``'instance'`` / ``'image'`` (see
            :func:`instance_heatmaps_from_offsets`). Defaults to
            :data:`HEATMAP_RADIUS` (16).
        final_input (str): ``'pan'`` (default) or ``'concat'``, see step
            5 above.
        train_cfg (dict, optional): Unused.
        test_cfg (dict, optional): Post-processing settings, see
            :class:`PanopticDeepLab`.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 semantic_head: ConfigType,
                 instance_head: ConfigType,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 pisr: ConfigType,
                 final_semantic_head: OptConfigType = None,
                 final_instance_head: OptConfigType = None,
                 gamma: float = 1.0,
                 pisr_center_threshold: float = 0.1,
                 pisr_nms_kernel: int = 3,
                 pisr_heatmap_normalizer: Union[float, str] = HEATMAP_RADIUS,
                 final_input: str = 'pan',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 panoptic_fusion_head: OptConfigType = None) -> None:
        super().__init__(
            backbone=backbone,
            semantic_head=semantic_head,
            instance_head=instance_head,
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            panoptic_fusion_head=panoptic_fusion_head)
        if gamma < 0:
            raise ValueError(f'gamma must be non-negative, got {gamma}')
        if final_input not in FINAL_INPUTS:
            raise ValueError(f'final_input must be one of {FINAL_INPUTS}, '
                             f'got {final_input!r}')
        self.final_input = final_input
        self.gamma = gamma
        self.pisr_center_threshold = pisr_center_threshold
        self.pisr_nms_kernel = pisr_nms_kernel
        check_heatmap_normalizer(pisr_heatmap_normalizer)
        self.pisr_heatmap_normalizer = pisr_heatmap_normalizer
        pisr = ConfigDict(pisr)
        set_by_detector = {'in_channels', 'num_semantic', 'out_channels'}
        if set_by_detector & set(pisr):
            raise ValueError(
                f'pisr must not set {sorted(set_by_detector & set(pisr))}: '
                'the detector sets them per branch (decoder channels, '
                'number of classes)')
        if 'num_instances' not in pisr:
            raise ValueError('pisr must set num_instances (K)')
        self.num_instances = pisr.num_instances
        for head, branch in ((self.semantic_head, 'semantic'),
                             (self.instance_head, 'instance')):
            if head.decoder is None:
                raise ValueError(f'{branch}_head needs its decoder: PISR '
                                 'runs on the decoded features')
        self.semantic_pisr = self._build_pisr(
            pisr, self.semantic_head.decoder.decoder_channels)
        self.instance_pisr = self._build_pisr(
            pisr, self.instance_head.decoder.decoder_channels)
        extra = 1 if final_input == 'concat' else 0
        self.final_semantic_head = self._build_final_head(
            semantic_head,
            final_semantic_head,
            self.semantic_pisr.out_channels +
            extra * self.semantic_head.decoder.decoder_channels,
            num_classes=self.num_classes)
        self.final_instance_head = self._build_final_head(
            instance_head, final_instance_head,
            self.instance_pisr.out_channels +
            extra * self.instance_head.decoder.decoder_channels)

    def _build_pisr(self, pisr: ConfigDict, channels: int) -> nn.Module:
        """The PISR of one branch, on ``channels`` decoder channels (also
        its output channels, so the final head sees the base head's
        width)."""
        cfg = copy.deepcopy(pisr)
        cfg.setdefault('channels', channels)
        cfg.update(
            in_channels=channels,
            num_semantic=self.num_classes,
            out_channels=channels)
        return MODELS.build(cfg)

    def _build_final_head(self, base: ConfigType, overrides: OptConfigType,
                          in_channels: int, **defaults) -> nn.Module:
        """A prediction-only copy of a base head config (own weights, no
        decoder, no init_cfg), updated by ``overrides``."""
        cfg = ConfigDict(copy.deepcopy(base))
        cfg.pop('init_cfg', None)
        cfg.update(decoder=None, in_channels=in_channels)
        for key, value in defaults.items():
            cfg.setdefault(key, value)
        cfg.update(overrides or {})
        return MODELS.build(cfg)

    def forward_initial_and_final(
        self, batch_inputs: Tensor
    ) -> Tuple[PanopticDeepLabOutputs, PanopticDeepLabOutputs]:
        """Initial and final stride-4 predictions.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.

        Returns:
            tuple[PanopticDeepLabOutputs, PanopticDeepLabOutputs]: The
            initial (base heads) and final (heads on ``F_pan``) outputs,
            each (B, num_classes, H/4, W/4) logits, (B, 1, H/4, W/4) center
            heatmap, (B, 2, H/4, W/4) offsets.
        """
        feats = self.extract_feat(batch_inputs)
        semantic_feats = self.semantic_head.forward_decoder(feats)
        instance_feats = self.instance_head.forward_decoder(feats)
        initial = PanopticDeepLabOutputs(
            self.semantic_head.forward_prediction(semantic_feats),
            *self.instance_head.forward_prediction(instance_feats))
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
        semantic_context = self.semantic_pisr(semantic_feats, sem_probs,
                                              inst_heatmaps, inst_valid)
        instance_context = self.instance_pisr(instance_feats, sem_probs,
                                              inst_heatmaps, inst_valid)
        if self.final_input == 'concat':
            semantic_context = torch.cat([semantic_feats, semantic_context],
                                         dim=1)
            instance_context = torch.cat([instance_feats, instance_context],
                                         dim=1)
        final = PanopticDeepLabOutputs(
            self.final_semantic_head.forward_prediction(semantic_context),
            *self.final_instance_head.forward_prediction(instance_context))
        return initial, final

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """Final stride-4 outputs (what ``predict`` post-processes).

        Returns:
            tuple[Tensor, Tensor, Tensor]: (B, num_classes, H/4, W/4)
            semantic logits, (B, 1, H/4, W/4) center heatmap, (B, 2, H/4,
            W/4) offsets (stride-4 pixels).
        """
        return tuple(self.forward_initial_and_final(batch_inputs)[1])

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of the initial (weighted by ``gamma``) and final
        predictions.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                and the Panoptic-DeepLab dense targets, padded.

        Returns:
            dict[str, Tensor]: ``loss_sem``, ``loss_center``,
            ``loss_offset`` (final) and ``loss_sem_init``,
            ``loss_center_init``, ``loss_offset_init`` (initial x gamma).
        """
        initial, final = self.forward_initial_and_final(batch_inputs)
        return initial_and_final_losses(self, initial, final,
                                        batch_data_samples)


def initial_and_final_losses(model: nn.Module,
                             initial: PanopticDeepLabOutputs,
                             final: PanopticDeepLabOutputs,
                             batch_data_samples: SampleList
                             ) -> Dict[str, Tensor]:
    """PISR's Eq. 1 on Panoptic-DeepLab-style heads: the losses of the
    initial predictions times ``gamma`` (suffix ``_init``) plus those of the
    final predictions. Shared by every PISR wrapper whose initial and final
    heads are Panoptic-DeepLab's (``semantic_head`` / ``instance_head`` and
    ``final_semantic_head`` / ``final_instance_head`` on ``model``).

    Args:
        model (nn.Module): The wrapper (its heads and ``gamma``).
        initial (PanopticDeepLabOutputs): Initial predictions.
        final (PanopticDeepLabOutputs): Final predictions.
        batch_data_samples (list[DetDataSample]): With the dense targets.

    Returns:
        dict[str, Tensor]: ``loss_{sem,center,offset}`` and
        ``loss_{sem,center,offset}_init``.
    """
    initial_losses = model.semantic_head.loss_by_feat(initial.sem_logits,
                                                      batch_data_samples)
    initial_losses.update(
        model.instance_head.loss_by_feat(initial.center, initial.offsets,
                                         batch_data_samples))
    losses = {
        f'{name}_init': model.gamma * value
        for name, value in initial_losses.items()
    }
    losses.update(
        model.final_semantic_head.loss_by_feat(final.sem_logits,
                                               batch_data_samples))
    losses.update(
        model.final_instance_head.loss_by_feat(final.center, final.offsets,
                                               batch_data_samples))
    return losses
