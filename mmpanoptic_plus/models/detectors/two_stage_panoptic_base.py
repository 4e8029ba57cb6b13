# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import copy
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors import TwoStagePanopticSegmentor
from mmdet.models.utils import interpolate_as
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmpanoptic_plus.registry import MODELS
from ..panoptic_fusion_heads import BaseStatelessFusionHead


class TwoStagePanopticBase(TwoStagePanopticSegmentor):
    """Shared machinery of two-stage (RPN + Mask R-CNN RoI head) panoptic
    models whose semantic logits and panoptic outputs are computed by the
    model itself rather than by mmdet's heads' own forward.

    mmdet's ``TwoStagePanopticSegmentor`` (Panoptic FPN, Kirillov et al.,
    CVPR 2019) runs its semantic head's ``loss``/``predict``, which compute
    their own forward; models that reuse the semantic features, predict a
    second (refined) semantic map or feed detections into a panoptic head
    need the pieces separately. This base provides them, each taking tensors
    computed elsewhere:

    - :meth:`rpn_loss_and_proposals` (training) and :meth:`predict_proposals`
      (inference, or pre-defined ``proposals`` of the samples);
    - :meth:`roi_head_loss`: an RoI head's loss on a private copy of the
      proposals;
    - :meth:`semantic_loss` / :meth:`semantic_predict`: the
      ``semantic_head``'s loss and per-image resizing of *given* logits;
    - :meth:`detections_with_mask_probs`: test-mode detections (boxes,
      scores, labels: no gradient) with the mask probabilities of their
      labels that *keep* their gradient, in training too, so that a model
      trains on the detections it will see at inference.

    Users: :class:`PanopticFPNPISR` (PISR's instance heatmaps are the
    pasted mask probabilities of the top-K detections) and the Unified
    method (Li et al., "Unifying Training and Inference for Panoptic
    Segmentation", CVPR 2020: predicted detections fed into a panoptic
    head, trained on them).

    Not registered: it adds no module and does not override ``loss``,
    ``predict`` or ``_forward``, so built alone it is mmdet's
    ``PanopticFPN``. Subclasses write those three from the pieces above.

    Args:
        backbone, neck, rpn_head, roi_head, semantic_head,
        panoptic_fusion_head, train_cfg, test_cfg, data_preprocessor,
        init_cfg (dict): As mmdet's ``TwoStagePanopticSegmentor``;
            ``rpn_head``, ``roi_head`` (with a mask head unless the subclass
            sets ``mask_head_required = False``), ``semantic_head`` and
            ``panoptic_fusion_head`` are required. A parameter-free fusion
            head of ours (:class:`BaseStatelessFusionHead`) is built from
            its own arguments (no ``test_cfg.panoptic``).
    """

    #: A subclass that also runs mask-free (Faster R-CNN) sets it False.
    mask_head_required: bool = True

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
                 panoptic_fusion_head: OptMultiConfig = None) -> None:
        for name, cfg in (('rpn_head', rpn_head), ('roi_head', roi_head),
                          ('semantic_head', semantic_head),
                          ('panoptic_fusion_head', panoptic_fusion_head)):
            if cfg is None:
                raise ValueError(f'{type(self).__name__} needs a {name}')
        fusion_cfg = ConfigDict(panoptic_fusion_head)
        # mmdet passes test_cfg.panoptic to the fusion head it builds; a
        # parameter-free head of ours takes its settings as arguments only
        stateless = _is_stateless_fusion_head(fusion_cfg)
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=ConfigDict(rpn_head),
            roi_head=ConfigDict(roi_head),
            train_cfg=ConfigDict(train_cfg) if train_cfg is not None else None,
            test_cfg=ConfigDict(test_cfg) if test_cfg is not None else None,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            semantic_head=ConfigDict(semantic_head),
            panoptic_fusion_head=None if stateless else fusion_cfg)
        if stateless:
            self.panoptic_fusion_head = MODELS.build(fusion_cfg)
            self.num_things_classes = \
                self.panoptic_fusion_head.num_things_classes
            self.num_stuff_classes = \
                self.panoptic_fusion_head.num_stuff_classes
            self.num_classes = self.panoptic_fusion_head.num_classes
        if self.mask_head_required and not (self.with_roi_head
                                            and self.roi_head.with_mask):
            raise ValueError(f'{type(self).__name__} needs a roi_head with a '
                             'mask head (detections carry mask probabilities)')

    def rpn_loss_and_proposals(
            self, x: Tuple[Tensor],
            batch_data_samples: SampleList) -> Tuple[dict, InstanceList]:
        """RPN losses and training proposals, as mmdet's
        ``TwoStagePanopticSegmentor.loss``: class-agnostic ground truth
        (labels set to 0 on a copy of the samples), proposals with
        ``train_cfg.rpn_proposal`` (else ``test_cfg.rpn``), loss keys
        prefixed ``rpn_`` (``loss_rpn_cls``, ``loss_rpn_bbox``).

        Args:
            x (tuple[Tensor]): FPN levels, (B, C, H_l, W_l).
            batch_data_samples (list[DetDataSample]): With ``gt_instances``;
                not modified.

        Returns:
            tuple[dict, list[InstanceData]]: The losses and the per-image
            proposals (``bboxes`` (n, 4), ``scores`` (n, )).
        """
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
            x, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        return rpn_losses, rpn_results_list

    def predict_proposals(self, x: Tuple[Tensor],
                          batch_data_samples: SampleList) -> InstanceList:
        """Test-mode RPN proposals, or the pre-defined ``proposals`` of the
        samples when they have them.

        Args:
            x (tuple[Tensor]): FPN levels.
            batch_data_samples (list[DetDataSample]): Metas.

        Returns:
            list[InstanceData]: Per-image proposals in input pixels.
        """
        if batch_data_samples[0].get('proposals', None) is None:
            return self.rpn_head.predict(x, batch_data_samples, rescale=False)
        return [sample.proposals for sample in batch_data_samples]

    def roi_head_loss(self,
                      x: Tuple[Tensor],
                      rpn_results_list: InstanceList,
                      batch_data_samples: SampleList,
                      roi_head: Optional[nn.Module] = None) -> dict:
        """An RoI head's losses on the proposals.

        ``StandardRoIHead.loss`` renames the proposals' ``bboxes`` in place:
        the head gets its own (shallow) copy of the proposal list, so that
        several heads (or a later step) can use the same proposals.

        Args:
            x (tuple[Tensor]): FPN levels the head pools from.
            rpn_results_list (list[InstanceData]): Proposals, not modified.
            batch_data_samples (list[DetDataSample]): Ground truth.
            roi_head (nn.Module, optional): Defaults to ``self.roi_head``.

        Returns:
            dict: The head's losses (``loss_cls``, ``acc``, ``loss_bbox``,
            ``loss_mask``).
        """
        roi_head = self.roi_head if roi_head is None else roi_head
        return roi_head.loss(x, [r.clone() for r in rpn_results_list],
                             batch_data_samples)

    def semantic_loss(self, seg_logits: Tensor,
                      batch_data_samples: SampleList) -> Tensor:
        """The semantic head's loss on given logits.

        mmdet's ``PanopticFPNHead.loss`` runs its own forward; a model that
        needs the features of that forward or scores a second prediction
        computes the logits itself, so the loss is computed here from the
        head's own pieces (``gt`` rescaling, ``_set_things_to_void``,
        ``loss_seg``), as that method does: the same value for the same
        logits.

        Args:
            seg_logits (Tensor): (B, num_stuff + 1, H, W) logits (bilinearly
                resized to the label size when they differ).
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                padded to the batch shape.

        Returns:
            Tensor: The loss.
        """
        head = self.semantic_head
        gt_sem_seg = torch.stack(
            [sample.gt_sem_seg.sem_seg for sample in batch_data_samples])
        if head.seg_rescale_factor != 1.0:
            gt_sem_seg = F.interpolate(
                gt_sem_seg.float(),
                scale_factor=head.seg_rescale_factor,
                mode='nearest')
        gt_sem_seg = head._set_things_to_void(gt_sem_seg.squeeze(1))
        if seg_logits.shape[-2:] != gt_sem_seg.shape[-2:]:
            seg_logits = interpolate_as(seg_logits, gt_sem_seg)
        return head.loss_seg(
            seg_logits.permute(0, 2, 3, 1).reshape(-1, head.num_classes),
            gt_sem_seg.reshape(-1).long())

    def semantic_predict(self, seg_logits: Tensor, batch_img_metas: List[dict],
                         rescale: bool) -> List[Tensor]:
        """Per-image semantic logits at the input (or original) size.

        As mmdet's ``BaseSemanticHead.predict``, which cannot be reused
        because it runs the head's own forward: upsample to the padded batch
        shape, crop the padding, resize to ``ori_shape`` when ``rescale``.

        Args:
            seg_logits (Tensor): (B, N, H, W) logits at any stride.
            batch_img_metas (list[dict]): With ``batch_input_shape``,
                ``img_shape``, ``ori_shape``.
            rescale (bool): Resize to ``ori_shape``.

        Returns:
            list[Tensor]: (N, H_i, W_i) logits per image (the padded batch
            shape when not ``rescale``).
        """
        seg_logits = F.interpolate(
            seg_logits,
            size=batch_img_metas[0]['batch_input_shape'],
            mode='bilinear',
            align_corners=False)
        results = []
        for logits, meta in zip(seg_logits, batch_img_metas):
            if rescale:
                height, width = meta['img_shape'][:2]
                logits = F.interpolate(
                    logits[None, :, :height, :width],
                    size=meta['ori_shape'][:2],
                    mode='bilinear',
                    align_corners=False)[0]
            results.append(logits)
        return results

    def detections_with_mask_probs(self, x: Tuple[Tensor],
                                   batch_img_metas: List[dict],
                                   rpn_results_list: InstanceList,
                                   rcnn_test_cfg: ConfigType) -> InstanceList:
        """Test-mode detections of ``roi_head`` with differentiable mask
        probabilities, in training as in inference.

        The box branch runs in test mode without gradient (scoring, box
        decoding, score threshold and NMS of ``rcnn_test_cfg``, in input
        pixels: ``rescale=False``); the mask branch then predicts each kept
        box's mask, and the sigmoid of its label's channel (channel 0 for a
        class-agnostic mask head) keeps its gradient: losses on what is
        built from the masks reach the mask head, box selection is discrete.

        Args:
            x (tuple[Tensor]): FPN levels.
            batch_img_metas (list[dict]): Image metas.
            rpn_results_list (list[InstanceData]): Proposals, not modified.
            rcnn_test_cfg (dict): ``score_thr``, ``nms``, ``max_per_img``.

        Returns:
            list[InstanceData]: Per image ``bboxes`` (n, 4) in input pixels,
            ``scores`` (n, ), ``labels`` (n, ) (no gradient), and
            ``mask_logits``, ``mask_probs`` (n, h, w) at the mask head's RoI
            resolution (h = w = 28 for mmdet's ``FCNMaskHead``; (n, 1, 1)
            zeros when the batch has no detection at all).
        """
        with torch.no_grad():
            detections = self.roi_head.predict_bbox(
                x,
                batch_img_metas,
                rpn_results_list,
                rcnn_test_cfg=rcnn_test_cfg,
                rescale=False)
        boxes = [det.bboxes.detach() for det in detections]
        mask_logits = self.label_mask_logits(
            x, boxes, [det.labels for det in detections])
        mask_probs = [logits.sigmoid() for logits in mask_logits]
        return [
            InstanceData(
                bboxes=bboxes,
                scores=det.scores.detach(),
                labels=det.labels,
                mask_logits=logits,
                mask_probs=probs) for det, bboxes, logits, probs in zip(
                    detections, boxes, mask_logits, mask_probs)
        ]

    def label_mask_logits(self, x: Tuple[Tensor], boxes: List[Tensor],
                          labels: List[Tensor]) -> List[Tensor]:
        """Mask logits of given boxes in the channel of their label (channel
        0 for a class-agnostic mask head), with gradient.

        Args:
            x (tuple[Tensor]): FPN levels.
            boxes (list[Tensor]): Per image (n, 4) boxes in input pixels.
            labels (list[Tensor]): Per image (n, ) thing labels.

        Returns:
            list[Tensor]: Per image (n, h, w) logits at the mask head's RoI
            resolution ((n, 1, 1) when the batch has no box at all).
        """
        rois = bbox2roi(boxes)
        if rois.shape[0] == 0:
            return [x[0].new_zeros((0, 1, 1)) for _ in boxes]
        all_logits = self.roi_head._mask_forward(x, rois)['mask_preds']
        if self.roi_head.mask_head.class_agnostic:
            channels = torch.zeros_like(rois[:, 0], dtype=torch.long)
        else:
            channels = torch.cat(labels)
        rows = torch.arange(len(rois), device=rois.device)
        return list(all_logits[rows, channels].split([len(b)
                                                      for b in boxes]))


def _is_stateless_fusion_head(cfg: ConfigDict) -> bool:
    """Whether ``cfg`` names a :class:`BaseStatelessFusionHead` subclass."""
    head_type = cfg.get('type')
    if not isinstance(head_type, str):
        return isinstance(head_type, type) and issubclass(
            head_type, BaseStatelessFusionHead)
    head_cls = MODELS.get(head_type)
    return head_cls is not None and issubclass(head_cls,
                                               BaseStatelessFusionHead)


def scale_loss(value: object, weight: float) -> object:
    """``value * weight`` for a loss tensor or a list of them (mmdet heads
    return either); shared by the detectors on this base."""
    if isinstance(value, (list, tuple)):
        return type(value)(v * weight for v in value)
    return value * weight
