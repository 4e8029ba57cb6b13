# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Unified (Li et al., "Unifying Training and Inference for Panoptic
Segmentation", CVPR 2020): a two-stage detector whose *predicted*
detections and semantic probabilities go through a differentiable panoptic
submodule (dynamic potential, dense instance affinity) in training and in
inference alike; inference is an argmax over ``P``."""
import copy
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers import SELayer, multiclass_nms
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmpanoptic_plus.models.layers.paste_masks import paste_masks_in_grid
from mmpanoptic_plus.models.losses import match_segments_to_detections
from mmpanoptic_plus.models.panoptic_fusion_heads import (
    HeuristicPanopticFusionHead, SegmentFusionHead)
from mmpanoptic_plus.models.postprocess import \
    unified_argmax_at_image_resolution
from mmpanoptic_plus.models.utils import segment_boxes, stack_segment_targets
from mmpanoptic_plus.registry import MODELS
from .two_stage_panoptic_base import TwoStagePanopticBase, scale_loss

#: Detections fed into the panoptic submodule, in training as in inference
#: (Sec. 3.3: D detections; the paper's memory example uses D = 100). The
#: score threshold is ours: low, since Eq. 1-2 weight a detection by its
#: score instead of dropping it.
UNIFIED_DETECTION_CFG = dict(
    score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)

INFERENCE_MODES = ('argmax', 'heuristic')
#: Where the argmax of P is taken: at every output pixel (Eq. 2's masks at
#: image resolution) or on V's grid, upsampled.
INFERENCE_RESOLUTIONS = ('image', 'grid')


@MODELS.register_module()
class UnifiedPanoptic(TwoStagePanopticBase):
    """Unified panoptic segmentation on Faster R-CNN or Mask R-CNN.

    - Backbone (Sec. 3.1): ResNet-FPN, a squeeze-and-excitation block
      (mmdet's ``SELayer``) on the top ResNet feature before the FPN.
    - Semantic submodule (Sec. 3.2): ``semantic_head``, a
      :class:`UPSNetSemanticHead` over all classes: ``V`` at stride 4.
    - Detection submodule (Sec. 3.3): the RPN and ``roi_head`` (mask head
      optional); its test-mode detections (``detection_cfg``) with scores
      that keep their gradient (recomputed from the box head's logits at
      the kept proposals/classes) and, with a mask head, mask probabilities
      pasted on V's grid.
    - Panoptic submodule (Sec. 3.4): ``dynamic_potential``
      (:class:`UnifiedDynamicPotentialHead`, ``Psi`` with ``D + N_st``
      channels) and, when ``affinity_head`` is set, Eq. 4
      (:class:`UnifiedAffinityHead`); without it ``P = Psi`` (ablation
      models A, C).
    - Panoptic matching loss (Sec. 3.5) when ``panoptic_loss`` is set
      (``e2e.`` of Table 1).
    - Inference: ``inference='argmax'``: the argmax of ``P`` over its
      channels, nothing else (``panoptic_fusion_head`` a
      :class:`SegmentFusionHead` with ``stuff_area_limit=0`` only writes the
      panoptic encoding); ``'heuristic'`` (rows C1, D1 of Table 1): mmdet's
      Mask R-CNN predictions and the semantic argmax merged by
      :class:`HeuristicPanopticFusionHead`.

    Args:
        backbone, neck, rpn_head, roi_head, semantic_head,
        panoptic_fusion_head, train_cfg, test_cfg, data_preprocessor,
        init_cfg: As :class:`TwoStagePanopticBase` (mask head optional).
        dynamic_potential (dict): Config of the dynamic potential head.
        affinity_head (dict, optional): Config of the affinity head.
        panoptic_loss (dict, optional): Config of the matching loss.
        matching_iou_thr (float): t of Eq. 5 (0.5).
        se_ratio (int, optional): Reduction of the top SE block; None: no
            SE block.
        detection_loss_weight (float): Weight of the RPN and RoI losses
            (Sec. 4: 0.25 on Cityscapes, 1.0 on COCO).
        detection_cfg (dict, optional): Detections of the panoptic
            submodule; defaults to :data:`UNIFIED_DETECTION_CFG`.
        test_detection_cfg (dict, optional): The same at inference; None
            (default): ``detection_cfg``, the paper's one panoptic head for
            training and inference. Thresholds may differ, as mmdet's
            ``test_cfg`` from its ``train_cfg`` (the synthetic configs use
            class-agnostic NMS here: channels of ``P`` compete across
            classes, and a shape detected as two classes splits into two
            segments).
        inference (str): 'argmax' or 'heuristic'.
        inference_resolution (str): Of the argmax inference. 'image'
            (default): ``P`` evaluated at every output pixel, ``Psi`` with
            ``V`` resampled and the masks pasted at image resolution (Eq. 2
            defines ``M`` there), the affinity term of Eq. 4 computed on
            the grid and resampled
            (:func:`unified_argmax_at_image_resolution`). 'grid': ``P`` on
            ``V``'s grid (as in training), upsampled bilinearly, then the
            argmax. The paper does not say which; 'image' keeps the masks'
            outlines and, resampling P's channels once in row bands
            instead of twice over the whole image, is faster (README).
    """

    mask_head_required = False

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
                 dynamic_potential: ConfigType = dict(
                     type='UnifiedDynamicPotentialHead', variant='B'),
                 affinity_head: OptConfigType = None,
                 panoptic_loss: OptConfigType = None,
                 matching_iou_thr: float = 0.5,
                 se_ratio: Optional[int] = 16,
                 detection_loss_weight: float = 1.0,
                 detection_cfg: OptConfigType = None,
                 test_detection_cfg: OptConfigType = None,
                 inference: str = 'argmax',
                 inference_resolution: str = 'image') -> None:
        if inference not in INFERENCE_MODES:
            raise ValueError(f'inference must be one of {INFERENCE_MODES}, '
                             f'got {inference!r}')
        if inference_resolution not in INFERENCE_RESOLUTIONS:
            raise ValueError('inference_resolution must be one of '
                             f'{INFERENCE_RESOLUTIONS}, got '
                             f'{inference_resolution!r}')
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
        expected = SegmentFusionHead if inference == 'argmax' else \
            HeuristicPanopticFusionHead
        if not isinstance(self.panoptic_fusion_head, expected):
            raise ValueError(f"inference='{inference}' needs a "
                             f'{expected.__name__}, got '
                             f'{type(self.panoptic_fusion_head).__name__}')
        if inference == 'heuristic' and not self.roi_head.with_mask:
            raise ValueError('heuristic inference needs a mask head')
        num_things = self.num_things_classes
        num_stuff = self.num_stuff_classes
        if self.semantic_head.num_classes != num_things + num_stuff:
            raise ValueError('semantic_head must predict all '
                             f'{num_things + num_stuff} classes')
        self.inference = inference
        self.inference_resolution = inference_resolution
        self.feat_stride = 2**(self.semantic_head.start_level + 2)
        dynamic_potential = ConfigDict(copy.deepcopy(dynamic_potential))
        dynamic_potential.update(
            num_things_classes=num_things,
            num_stuff_classes=num_stuff,
            stride=self.feat_stride)
        self.dynamic_potential = MODELS.build(dynamic_potential)
        self.affinity_head = MODELS.build(affinity_head) \
            if affinity_head is not None else None
        self.panoptic_loss = MODELS.build(panoptic_loss) \
            if panoptic_loss is not None else None
        self.matching_iou_thr = matching_iou_thr
        self.top_se = SELayer(self.neck.in_channels[-1], ratio=se_ratio) \
            if se_ratio is not None else None
        self.detection_loss_weight = detection_loss_weight
        self.detection_cfg = ConfigDict(
            copy.deepcopy(UNIFIED_DETECTION_CFG
                          if detection_cfg is None else detection_cfg))
        self.test_detection_cfg = self.detection_cfg \
            if test_detection_cfg is None else ConfigDict(
                copy.deepcopy(test_detection_cfg))

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """ResNet, SE on its top feature (Sec. 3.1), FPN.

        Args:
            batch_inputs (Tensor): (B, 3, H, W).

        Returns:
            tuple[Tensor]: FPN levels.
        """
        feats = list(self.backbone(batch_inputs))
        if self.top_se is not None:
            feats[-1] = self.top_se(feats[-1])
        return self.neck(tuple(feats))

    def predicted_detections(
            self,
            x: Tuple[Tensor],
            batch_img_metas: List[dict],
            proposals: InstanceList,
            cfg: OptConfigType = None) -> InstanceList:
        """Test-mode detections whose scores keep their gradient.

        The box head runs once with gradient on the proposals; box decoding,
        score threshold and NMS follow mmdet's ``BBoxHead.predict_by_feat``
        (``rescale=False``) without gradient, and mmdet's
        ``multiclass_nms(return_inds=True)`` says which (proposal, class)
        each detection is, whose softmax probability is the score
        ``s_k`` (Eq. 1-2) with its gradient. With a mask head,
        ``mask_probs`` are the sigmoid mask logits of the labels.

        Args:
            x (tuple[Tensor]): FPN levels.
            batch_img_metas (list[dict]): Image metas.
            proposals (list[InstanceData]): Proposals (``bboxes``).
            cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``;
                None: ``detection_cfg``.

        Returns:
            list[InstanceData]: ``bboxes`` (D, 4) input pixels (no
            gradient), ``scores`` (D, ), ``labels`` (D, ), and
            ``mask_probs`` (D, h, w) with a mask head.
        """
        bbox_head = self.roi_head.bbox_head
        cfg = self.detection_cfg if cfg is None else cfg
        rois = bbox2roi([p.bboxes for p in proposals])
        outs = self.roi_head._bbox_forward(x, rois)
        sizes = [len(p) for p in proposals]
        num_classes = bbox_head.num_classes
        results = []
        for img_rois, cls_score, bbox_pred, meta in zip(
                rois.split(sizes), outs['cls_score'].split(sizes),
                outs['bbox_pred'].split(sizes), batch_img_metas):
            probs = F.softmax(cls_score, dim=-1)
            with torch.no_grad():
                reg_classes = 1 if bbox_head.reg_class_agnostic \
                    else num_classes
                boxes = bbox_head.bbox_coder.decode(
                    img_rois[:, 1:].repeat_interleave(reg_classes, dim=0),
                    bbox_pred.view(-1, bbox_head.bbox_coder.encode_size),
                    max_shape=meta['img_shape']).view(len(img_rois), -1)
                dets, labels, inds = multiclass_nms(
                    boxes,
                    probs.detach(),
                    cfg.score_thr,
                    cfg.nms,
                    cfg.max_per_img,
                    return_inds=True)
            scores = probs[inds // num_classes, inds % num_classes]
            results.append(
                InstanceData(
                    bboxes=dets[:, :4], scores=scores, labels=labels))
        if self.roi_head.with_mask:
            mask_logits = self.label_mask_logits(
                x, [r.bboxes for r in results], [r.labels for r in results])
            for result, logits in zip(results, mask_logits):
                result.mask_probs = logits.sigmoid()
        return results

    def panoptic_logits(self, seg_logits: Tensor, x: Tuple[Tensor],
                        detections: InstanceList,
                        batch_img_metas: List[dict]) -> List[Tensor]:
        """``P`` of every image on V's grid, cropped to the image's cells.

        Args:
            seg_logits (Tensor): (B, N_th + N_st, h, w) semantic logits.
            x (tuple[Tensor]): FPN levels (for the affinity extractor).
            detections (list[InstanceData]): From
                :meth:`predicted_detections`.
            batch_img_metas (list[dict]): Image metas.

        Returns:
            list[Tensor]: (D_b + N_st, h_b, w_b) per image, ``h_b =
            ceil(img_h / stride)``.
        """
        logits = []
        for (probs, phi), det in zip(
                self._grid_inputs(seg_logits, x, batch_img_metas),
                detections):
            potential = self._grid_potential(probs, det)
            if phi is not None:
                potential = self.affinity_head.apply_affinity(potential, *phi)
            logits.append(potential)
        return logits

    def _grid_inputs(
        self, seg_logits: Tensor, x: Tuple[Tensor],
        batch_img_metas: List[dict]
    ) -> List[Tuple[Tensor, Optional[Tuple[Tensor, Tensor]]]]:
        """Per image, cropped to its cells: ``V`` (N_th + N_st, h, w) and,
        with the affinity head, phi0's and phi1's conv outputs (C, h, w)
        (else None)."""
        sem_probs = seg_logits.softmax(dim=1)
        affinity = self.affinity_head(x) \
            if self.affinity_head is not None else None
        inputs = []
        for i, meta in enumerate(batch_img_metas):
            height, width = self._grid_cells(meta, sem_probs.shape[-2:])
            phi = None
            if affinity is not None:
                phi = (affinity['phi0'][i, :, :height, :width],
                       affinity['phi1'][i, :, :height, :width])
            inputs.append((sem_probs[i, :, :height, :width], phi))
        return inputs

    def _grid_cells(self, meta: dict,
                    grid_shape: Tuple[int, int]) -> Tuple[int, int]:
        """Cells of V's grid that cover the image (padding excluded)."""
        height = min(math.ceil(meta['img_shape'][0] / self.feat_stride),
                     grid_shape[0])
        width = min(math.ceil(meta['img_shape'][1] / self.feat_stride),
                    grid_shape[1])
        return height, width

    def _grid_potential(self, sem_probs: Tensor,
                        detections: InstanceData) -> Tensor:
        """``Psi`` (D + N_st, h, w) of one image on V's grid (Eq. 1-2),
        masks pasted on the grid."""
        masks = None
        if 'mask_probs' in detections:
            masks = paste_masks_in_grid(detections.mask_probs,
                                        detections.bboxes,
                                        tuple(sem_probs.shape[-2:]),
                                        self.feat_stride)
        return self.dynamic_potential(sem_probs, detections.bboxes,
                                      detections.scores, detections.labels,
                                      masks)

    def image_resolution_channels(self, seg_logits: Tensor,
                                  x: Tuple[Tensor],
                                  detections: InstanceList,
                                  batch_img_metas: List[dict],
                                  rescale: bool) -> List[Tensor]:
        """Argmax channel of ``P`` at every output pixel
        (``inference_resolution='image'``).

        Args:
            seg_logits (Tensor): (B, N_th + N_st, h, w) semantic logits.
            x (tuple[Tensor]): FPN levels (for the affinity extractor).
            detections (list[InstanceData]): From
                :meth:`predicted_detections`.
            batch_img_metas (list[dict]): Image metas.
            rescale (bool): Output at ``ori_shape`` (else ``img_shape``).

        Returns:
            list[Tensor]: (H, W) int64 channel per pixel, per image.
        """
        channels = []
        for (probs, phi), det, meta in zip(
                self._grid_inputs(seg_logits, x, batch_img_metas),
                detections, batch_img_metas):
            term = None
            if phi is not None:
                term = self.affinity_head.affinity_term(
                    self._grid_potential(probs, det), *phi)
            output_shape = meta['ori_shape'] if rescale else \
                meta['img_shape']
            channels.append(
                unified_argmax_at_image_resolution(
                    probs, term, det.bboxes, det.scores, det.labels,
                    det.get('mask_probs', None), self.dynamic_potential,
                    self.feat_stride, tuple(meta['img_shape'][:2]),
                    tuple(output_shape[:2])))
        return channels

    def channel_labels(self, detections: InstanceList) -> List[Tensor]:
        """Class of every channel of ``P``: the detections', then the stuff
        classes (N_th .. N_th + N_st - 1)."""
        stuff = torch.arange(
            self.num_things_classes,
            self.num_classes,
            device=detections[0].labels.device)
        return [torch.cat([det.labels, stuff]) for det in detections]

    def matching_loss(self, logits: List[Tensor], detections: InstanceList,
                      batch_data_samples: SampleList) -> Tensor:
        """Sec. 3.5 over the batch: matching per image (Eq. 5), cross
        entropy of ``P`` on V's grid (segment ids read at cell centres),
        averaged over the labelled cells of the batch.

        Args:
            logits (list[Tensor]): ``P`` per image (cropped).
            detections (list[InstanceData]): The detections of ``P``.
            batch_data_samples (list[DetDataSample]): With
                ``gt_segment_ids`` and ``gt_segments``.

        Returns:
            Tensor: ``loss_panoptic``.
        """
        segment_ids, labels, is_thing = stack_segment_targets(
            batch_data_samples)
        num_slots = labels.shape[1]
        boxes = segment_boxes(segment_ids, num_slots)  # (B, S, 4) pixels
        stride = self.feat_stride
        cells = segment_ids[:, stride // 2::stride, stride // 2::stride]
        total = logits[0].new_zeros(())
        count = 0
        for i, (p, det) in enumerate(zip(logits, detections)):
            valid = labels[i] >= 0
            channels, keep = match_segments_to_detections(
                boxes[i][valid], labels[i][valid], is_thing[i][valid],
                det.bboxes, det.labels, self.num_things_classes,
                self.num_stuff_classes, self.matching_iou_thr)
            ids = cells[i, :p.shape[1], :p.shape[2]]
            loss, num = self.panoptic_loss(p, keep, ids, channels)
            total = total + loss
            count += int(num)
        return total / max(count, 1)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Detection (weighted), semantic and panoptic matching losses.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``,
                ``gt_sem_seg`` and, with a panoptic loss,
                ``gt_segment_ids`` / ``gt_segments``.

        Returns:
            dict[str, Tensor]: Named losses.
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        losses = dict()
        rpn_losses, proposals = self.rpn_loss_and_proposals(
            x, batch_data_samples)
        losses.update(rpn_losses)
        losses.update(self.roi_head_loss(x, proposals, batch_data_samples))
        for key in list(losses):
            if 'loss' in key:
                losses[key] = scale_loss(losses[key],
                                          self.detection_loss_weight)
        seg_logits = self.semantic_head(x)['seg_preds']
        losses.update(
            self.semantic_head.loss_by_feat(seg_logits, batch_data_samples))
        if self.panoptic_loss is not None:
            detections = self.predicted_detections(x, batch_img_metas,
                                                   proposals)
            logits = self.panoptic_logits(seg_logits, x, detections,
                                          batch_img_metas)
            losses['loss_panoptic'] = self.matching_loss(
                logits, detections, batch_data_samples)
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic prediction: argmax of ``P`` (or the heuristic merger).

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): Metas.
            rescale (bool): Predict at ``ori_shape``. Defaults to True.

        Returns:
            list[DetDataSample]: With ``pred_panoptic_seg`` (``sem_seg``
            (1, H, W): ``label + instance_id * 1000``, void
            ``num_classes``).
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        proposals = self.predict_proposals(x, batch_data_samples)
        seg_logits = self.semantic_head(x)['seg_preds']
        if self.inference == 'heuristic':
            panoptic = self._heuristic_predict(x, proposals, seg_logits,
                                               batch_data_samples, rescale)
        else:
            detections = self.predicted_detections(
                x, batch_img_metas, proposals, self.test_detection_cfg)
            labels = self.channel_labels(detections)
            if self.inference_resolution == 'image':
                channels = self.image_resolution_channels(
                    seg_logits, x, detections, batch_img_metas, rescale)
                panoptic = [
                    self.panoptic_fusion_head.predict(c[None], lab[None])[0]
                    for c, lab in zip(channels, labels)
                ]
            else:
                logits = self.panoptic_logits(seg_logits, x, detections,
                                              batch_img_metas)
                panoptic = [
                    self.panoptic_fusion_head.predict(
                        self._to_image(p, meta, rescale)[None],
                        lab[None])[0]
                    for p, lab, meta in zip(logits, labels, batch_img_metas)
                ]
        for sample, pan in zip(batch_data_samples, panoptic):
            sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        return batch_data_samples

    def _to_image(self, logits: Tensor, meta: dict, rescale: bool) -> Tensor:
        """(K, h, w) grid logits -> (K, H, W) at the input (or original)
        image size, bilinearly (cells cover ``stride`` pixels)."""
        height, width = meta['img_shape'][:2]
        logits = F.interpolate(
            logits[None],
            scale_factor=self.feat_stride,
            mode='bilinear',
            align_corners=False)[:, :, :height, :width]
        if rescale:
            logits = F.interpolate(
                logits,
                size=meta['ori_shape'][:2],
                mode='bilinear',
                align_corners=False)
        return logits[0]

    def _heuristic_predict(self, x: Tuple[Tensor], proposals: InstanceList,
                           seg_logits: Tensor, batch_data_samples: SampleList,
                           rescale: bool) -> List[Tensor]:
        """Rows C1/D1: Mask R-CNN's binary masks and the semantic argmax
        merged by the heuristic of Kirillov et al."""
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        results = self.roi_head.predict(
            x, proposals, batch_data_samples, rescale=rescale)
        sem_logits = self.semantic_predict(seg_logits, batch_img_metas,
                                           rescale)
        return [
            self.panoptic_fusion_head.predict(r.masks, r.labels, r.scores,
                                              s.argmax(dim=0))
            for r, s in zip(results, sem_logits)
        ]

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> tuple:
        """Network outputs without the panoptic encoding: semantic logits
        and ``P`` of each image (argmax inference) or the RoI head's raw
        outputs (heuristic inference).

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): Metas.

        Returns:
            tuple[Tensor]: ``seg_logits`` then one ``P`` per image (argmax),
            or ``seg_logits`` and the RoI head's outputs (heuristic).
        """
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        proposals = self.predict_proposals(x, batch_data_samples)
        seg_logits = self.semantic_head(x)['seg_preds']
        if self.inference == 'heuristic':
            return (seg_logits, ) + tuple(self.roi_head(x, proposals))
        detections = self.predicted_detections(x, batch_img_metas, proposals,
                                               self.test_detection_cfg)
        return (seg_logits, ) + tuple(
            self.panoptic_logits(seg_logits, x, detections, batch_img_metas))
