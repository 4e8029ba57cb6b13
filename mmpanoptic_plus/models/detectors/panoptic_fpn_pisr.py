# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import copy
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.model import ModuleList
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from ..layers.paste_masks import topk_instance_heatmaps
from ..layers.pisr_encoder import PISREncoder  # noqa: F401 (registers it)
from .two_stage_panoptic_base import TwoStagePanopticBase, scale_loss

#: Detections that make the instance heatmaps ``I``: a low score threshold
#: and class-agnostic NMS, so that the K slots hold the K best *distinct*
#: objects and the reweighting network (PISR Sec. 3.3), not a hand-set
#: threshold, decides how much each one counts. ``max_per_img`` is K.
PISR_INSTANCE_CFG = dict(
    score_thr=0.05,
    nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True))


@MODELS.register_module()
class PanopticFPNPISR(TwoStagePanopticBase):
    """Panoptic FPN (Kirillov et al., CVPR 2019) wrapped by PISR (Borse et
    al., "Panoptic, Instance and Semantic Relations: A Relational Context
    Encoder to Enhance Panoptic Segmentation", CVPR 2022), which the paper
    presents as a module for any panoptic architecture.

    The initial predictions are mmdet's Panoptic FPN ones (``semantic_head``
    and ``roi_head``); :class:`PISREncoder` turns them into the relational
    context ``F_pan``, which feeds *final* semantic and instance heads. In
    one forward:

    1. ``x``: ResNet-FPN levels; proposals from the (single) RPN.
    2. ``F``: the fused stride-4 feature of the semantic head (``seg_feats``
       of mmdet's ``PanopticFPNHead``, ``inner_channels`` channels: the one
       map where every FPN level meets, the analogue of the decoder feature
       PISR uses in Panoptic-DeepLab).
    3. ``S``: softmax of the initial semantic logits. The semantic head of
       Panoptic FPN predicts the stuff classes and *one* "things" class;
       ``S`` keeps those ``N = num_stuff + 1`` channels: the things channel
       summarises all object pixels, the instance encodings then tell the
       objects apart.
    4. ``I``: the initial RoI head's top-K detections, in training too
       (:meth:`~TwoStagePanopticBase.detections_with_mask_probs`): the box
       branch runs in test mode on the proposals (no gradient: scoring, NMS
       with :data:`PISR_INSTANCE_CFG`, ``max_per_img=K``), the mask branch
       predicts the mask of each kept box (sigmoid of the channel of its
       label), and the masks are pasted at stride 4,
       score-sorted, into K slots (:func:`topk_instance_heatmaps`: one
       ``grid_sample`` for the batch; zero slots with ``valid=False`` when
       fewer than K). Test-mode detections rather than ground-truth matched
       positives so that training sees the heatmaps inference will see. The
       mask probabilities keep their gradient (like ``S``): the final losses
       also reach the initial mask head; box selection is discrete.
    5. ``F_pan = PISREncoder(F, S, I, valid)`` (Sec. 3.1-3.4), module
       ``pisr``.
    6. Final semantic logits: a 1x1 conv over ``[F; F_pan]`` (the original
       context is kept, ``F_pan`` adds the relational one).
    7. Final instances: ``final_roi_head`` (a second Mask R-CNN head, same
       config as ``roi_head`` unless given, own weights) on the same
       proposals but on enhanced FPN levels ``x_l + P_l(F_pan)``: ``P_l`` a
       1x1 conv to the FPN width (zero-initialised), ``F_pan``
       average-pooled to level ``l``, for the levels the RoI extractors pool
       from (strides 4-32).

    Loss (the paper's ``L = gamma (L'_sem + L'_ins) + L_sem + L_ins``):
    the initial heads' losses (``loss_seg_init``, ``loss_cls_init``,
    ``loss_bbox_init``, ``loss_mask_init``, as Panoptic-DeepLab + PISR names
    them) are multiplied by ``gamma``, the final ones (``loss_seg``,
    ``loss_cls``, ``loss_bbox``, ``loss_mask``) are not; accuracies
    (``acc_init``, ``acc``) are only reported. The RPN is shared by both
    RoI heads and keeps its weight 1 (``loss_rpn_cls``, ``loss_rpn_bbox``).

    Inference fuses the final detections and final semantic logits with the
    usual ``panoptic_fusion_head`` (mmdet's ``HeuristicFusionHead``).

    The RPN, the semantic loss and prediction on given logits and the
    test-mode detections come from :class:`TwoStagePanopticBase`.

    Args:
        backbone, neck, rpn_head, roi_head, semantic_head,
        panoptic_fusion_head (dict): As mmdet's ``PanopticFPN``.
        pisr (dict): :class:`PISREncoder` config; must set
            ``num_instances`` (K, the detections encoded); ``in_channels``
            (``semantic_head.inner_channels``) and ``num_semantic``
            (``num_stuff + 1``) are filled in; ``out_channels`` (C_pan) is
            free.
        gamma (float): Weight of the initial predictions' losses. Defaults
            to 1.0.
        final_roi_head (dict, optional): Config of the final RoI head.
            Defaults to a copy of ``roi_head``.
        instance_cfg (dict, optional): Test-mode config of the initial box
            head for the detections of ``I`` (``score_thr``, ``nms``);
            defaults to :data:`PISR_INSTANCE_CFG`. ``max_per_img`` is K.
        train_cfg, test_cfg, data_preprocessor, init_cfg: As mmdet's.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 rpn_head: OptConfigType = None,
                 roi_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 semantic_head: OptConfigType = None,
                 panoptic_fusion_head: OptMultiConfig = None,
                 pisr: OptConfigType = None,
                 gamma: float = 1.0,
                 final_roi_head: OptConfigType = None,
                 instance_cfg: OptConfigType = None) -> None:
        if pisr is None:
            raise ValueError('PanopticFPNPISR needs a pisr')
        pisr = ConfigDict(pisr)
        if 'num_instances' not in pisr:
            raise ValueError('pisr must set num_instances (K)')
        num_instances = pisr.num_instances
        if num_instances < 1:
            raise ValueError(
                f'pisr.num_instances must be positive, got {num_instances}')
        if gamma < 0:
            raise ValueError(f'gamma must be non-negative, got {gamma}')
        train_cfg = ConfigDict(train_cfg) if train_cfg is not None else None
        test_cfg = ConfigDict(test_cfg) if test_cfg is not None else None
        # the parent fills roi_head in place: copy it first
        final_roi_head = ConfigDict(
            copy.deepcopy(roi_head if final_roi_head is None else
                          final_roi_head))
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            semantic_head=semantic_head,
            panoptic_fusion_head=panoptic_fusion_head)
        final_roi_head.update(
            train_cfg=train_cfg.rcnn if train_cfg is not None else None,
            test_cfg=test_cfg.rcnn)
        self.final_roi_head = MODELS.build(final_roi_head)

        self.num_instances = num_instances
        self.gamma = gamma
        instance_cfg = ConfigDict(
            copy.deepcopy(PISR_INSTANCE_CFG
                          if instance_cfg is None else instance_cfg))
        instance_cfg.max_per_img = num_instances
        self.instance_cfg = instance_cfg

        feat_channels = self.semantic_head.inner_channels
        num_semantic = self.semantic_head.num_classes  # stuff + "things"
        for key, value in (('in_channels', feat_channels),
                           ('num_semantic', num_semantic)):
            given = pisr.setdefault(key, value)
            if given != value:
                raise ValueError(
                    f'pisr.{key}={given} but the model needs {value} '
                    '(semantic_head.inner_channels, num_stuff_classes + 1): '
                    'leave it unset')
        self.pisr = MODELS.build(pisr)
        pan_channels = self.pisr.out_channels

        self.final_semantic_logits = nn.Conv2d(
            feat_channels + pan_channels, num_semantic, 1)
        extractors = [self.final_roi_head.bbox_roi_extractor]
        if self.final_roi_head.with_mask:
            extractors.append(self.final_roi_head.mask_roi_extractor)
        self.num_enhanced_levels = max(e.num_inputs for e in extractors)
        fpn_channels = {e.out_channels for e in extractors}
        if len(fpn_channels) != 1:
            raise ValueError('the RoI extractors of final_roi_head must share '
                             f'out_channels, got {sorted(fpn_channels)}')
        fpn_channels = fpn_channels.pop()
        self.level_projections = ModuleList([
            nn.Conv2d(pan_channels, fpn_channels, 1)
            for _ in range(self.num_enhanced_levels)
        ])

    def init_weights(self) -> None:
        """Initialize the weights: the final semantic classifier as mmdet's
        ``PanopticFPNHead.conv_logits`` (normal, std 0.01, zero bias); the
        level projections ``P_l`` at zero, so the final RoI head starts on
        the plain FPN levels and learns the PISR context as a residual
        (random projections would add noise as large as the features)."""
        super().init_weights()
        nn.init.normal_(self.final_semantic_logits.weight, 0, 0.01)
        nn.init.zeros_(self.final_semantic_logits.bias)
        for projection in self.level_projections:
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)

    @property
    def feat_stride(self) -> int:
        """Stride of ``F`` (and of the semantic logits) in input pixels."""
        return 2**(self.semantic_head.start_level + 2)

    def initial_instance_heatmaps(
            self, x: Tuple[Tensor], batch_img_metas: List[dict],
            rpn_results_list: InstanceList,
            grid_shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """``I``: mask probabilities of the initial head's top-K detections
        at the stride of ``F``.

        Args:
            x (tuple[Tensor]): FPN levels.
            batch_img_metas (list[dict]): Image metas.
            rpn_results_list (list[InstanceData]): Proposals (``bboxes``),
                not modified.
            grid_shape (tuple[int, int]): (H, W) of ``F``.

        Returns:
            tuple[Tensor, Tensor]: (B, K, H, W) heatmaps and (B, K) valid.
        """
        detections = self.detections_with_mask_probs(
            x, batch_img_metas, rpn_results_list, self.instance_cfg)
        mask_probs = [det.mask_probs for det in detections]
        boxes = [det.bboxes for det in detections]
        scores = [det.scores for det in detections]
        return topk_instance_heatmaps(mask_probs, boxes, scores,
                                      self.num_instances, grid_shape,
                                      self.feat_stride)

    def enhance_levels(self, x: Tuple[Tensor],
                       pan_feats: Tensor) -> Tuple[Tensor]:
        """FPN levels for the final RoI head: ``x_l + P_l(pool_l(F_pan))``
        for the levels its extractors use (others unchanged).

        Args:
            x (tuple[Tensor]): FPN levels, (B, C_fpn, H_l, W_l).
            pan_feats (Tensor): (B, C_pan, H, W) ``F_pan`` at stride 4.

        Returns:
            tuple[Tensor]: The enhanced levels.
        """
        enhanced = []
        for level, feat in enumerate(x):
            if level >= self.num_enhanced_levels:
                enhanced.append(feat)
                continue
            size = feat.shape[-2:]
            if size == pan_feats.shape[-2:]:
                context = pan_feats
            elif size[0] <= pan_feats.shape[-2] and \
                    size[1] <= pan_feats.shape[-1]:
                # averaging keeps every stride-4 position's context
                context = F.adaptive_avg_pool2d(pan_feats, size)
            else:  # a level finer than F (semantic start_level > 0)
                context = F.interpolate(
                    pan_feats, size=size, mode='bilinear',
                    align_corners=False)
            enhanced.append(feat + self.level_projections[level](context))
        return tuple(enhanced)

    def pisr_forward(self, x: Tuple[Tensor], batch_img_metas: List[dict],
                     rpn_results_list: InstanceList) -> Dict[str, object]:
        """Initial semantic prediction, instance heatmaps, ``F_pan`` and the
        inputs of the final heads.

        Args:
            x (tuple[Tensor]): FPN levels.
            batch_img_metas (list[dict]): Image metas.
            rpn_results_list (list[InstanceData]): Proposals.

        Returns:
            dict: ``init_seg_logits`` and ``final_seg_logits`` (B, N, H, W),
            ``inst_heatmaps`` (B, K, H, W), ``inst_valid`` (B, K),
            ``pan_feats`` (B, C_pan, H, W) and ``enhanced_x`` (FPN levels).
        """
        sem_out = self.semantic_head(x)
        feats, init_seg_logits = sem_out['seg_feats'], sem_out['seg_preds']
        inst_heatmaps, inst_valid = self.initial_instance_heatmaps(
            x, batch_img_metas, rpn_results_list, feats.shape[-2:])
        pan_feats = self.pisr(feats, init_seg_logits.softmax(dim=1),
                                      inst_heatmaps.to(feats.dtype),
                                      inst_valid)
        final_seg_logits = self.final_semantic_logits(
            torch.cat([feats, pan_feats], dim=1))
        return dict(
            init_seg_logits=init_seg_logits,
            final_seg_logits=final_seg_logits,
            inst_heatmaps=inst_heatmaps,
            inst_valid=inst_valid,
            pan_feats=pan_feats,
            enhanced_x=self.enhance_levels(x, pan_feats))

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> dict:
        """Losses of the RPN, the initial heads (times gamma, suffixed
        ``_init``) and the final heads.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``,
                ``ignored_instances`` and ``gt_sem_seg``.

        Returns:
            dict: Named losses.
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        losses = dict()

        rpn_losses, rpn_results_list = self.rpn_loss_and_proposals(
            x, batch_data_samples)
        losses.update(rpn_losses)

        pisr = self.pisr_forward(x, batch_img_metas, rpn_results_list)

        init_losses = self.roi_head_loss(x, rpn_results_list,
                                         batch_data_samples)
        init_losses['loss_seg'] = self.semantic_loss(pisr['init_seg_logits'],
                                                     batch_data_samples)
        for key, value in init_losses.items():
            if 'loss' in key:
                value = scale_loss(value, self.gamma)
            losses[f'{key}_init'] = value

        losses.update(
            self.roi_head_loss(pisr['enhanced_x'], rpn_results_list,
                               batch_data_samples, self.final_roi_head))
        losses['loss_seg'] = self.semantic_loss(pisr['final_seg_logits'],
                                                batch_data_samples)
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic prediction from the final heads.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): Metas.
            rescale (bool): Predict at ``ori_shape``. Defaults to True.

        Returns:
            list[DetDataSample]: With ``pred_panoptic_seg`` (``PixelData``,
            ``sem_seg`` (1, H, W): ``label + instance_id * 1000``, void
            ``num_classes``).
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        rpn_results_list = self.predict_proposals(x, batch_data_samples)
        pisr = self.pisr_forward(x, batch_img_metas, rpn_results_list)
        results_list = self.final_roi_head.predict(
            pisr['enhanced_x'],
            rpn_results_list,
            batch_data_samples,
            rescale=rescale)
        seg_preds = self.semantic_predict(pisr['final_seg_logits'],
                                          batch_img_metas, rescale)
        results_list = self.panoptic_fusion_head.predict(
            results_list, seg_preds)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        """Raw outputs: RPN maps, the final RoI head's outputs and the final
        semantic logits (no post-processing).

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): Metas.

        Returns:
            tuple: ``rpn_cls_scores, rpn_bbox_preds, cls_score, bbox_pred,
            mask_preds, final_seg_logits``.
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        rpn_outs = self.rpn_head.forward(x)
        if batch_data_samples[0].get('proposals', None) is None:
            rpn_results_list = self.rpn_head.predict_by_feat(
                *rpn_outs, batch_img_metas=batch_img_metas, rescale=False)
        else:
            rpn_results_list = [s.proposals for s in batch_data_samples]
        pisr = self.pisr_forward(x, batch_img_metas, rpn_results_list)
        roi_outs = self.final_roi_head(pisr['enhanced_x'], rpn_results_list)
        return tuple(rpn_outs) + tuple(roi_outs) + (
            pisr['final_seg_logits'], )
