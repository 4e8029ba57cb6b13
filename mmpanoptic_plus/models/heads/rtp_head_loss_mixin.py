# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Training side of RTP's unified panoptic head: targets and losses.

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 4.1-4.3 (Eq. 8-19; section and equation numbers of the CVPR
version).
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from mmpanoptic_plus.models.losses.rtp_mask_loss import \
    rtp_query_mask_losses
from mmpanoptic_plus.models.task_modules import FCOSMaskTargets
from mmpanoptic_plus.models.utils import (RTPQuerySlots, as_mask_tensor,
                                          build_dense_boxes,
                                          decode_ltrb_boxes,
                                          mask_cell_fractions,
                                          nms_iou_threshold,
                                          select_query_slots)


class RTPHeadLossMixin:
    """``loss`` / ``loss_by_feat`` of :class:`RTPHead`.

    Expects the head's attributes: ``assigner`` (an
    :class:`FCOSMaskTargetAssigner` with levelness), ``prior_generator``,
    ``strides``, ``semantic_stride``, ``cls_out_channels``, ``cls_loss_avg``,
    ``mask_loss_levelness`` and the loss modules ``loss_cls``,
    ``loss_bbox``, ``loss_centerness``, ``loss_levelness``,
    ``loss_semantic`` and ``loss_mask`` (None disables the mask loss).
    """

    def loss(self, x: tuple, batch_data_samples: SampleList) -> dict:
        """Losses from FPN features and data samples carrying
        ``gt_instances``, ``ignored_instances`` (optional) and
        ``gt_sem_seg`` (padded like the inputs)."""
        outs = self(x)
        batch_gt_instances, batch_ignored, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        if any('gt_sem_seg' not in ds for ds in batch_data_samples):
            raise ValueError('RTPHead needs data_sample.gt_sem_seg (load '
                             'semantic labels with LoadPanopticAnnotations)')
        gt_sem_seg = torch.stack(
            [ds.gt_sem_seg.sem_seg for ds in batch_data_samples])
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 gt_sem_seg, batch_ignored)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        levelness_logits: Tensor,
        sem_logits: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        gt_sem_seg: Tensor,
        batch_gt_instances_ignore: Optional[InstanceList] = None
    ) -> Dict[str, Tensor]:
        """RTP's losses (paper Sec. 4.2-4.3, summed as in Eq. 19).

        - ``loss_cls``: sigmoid focal loss over all non-ignored locations of
          all levels (Sec. 4.2), summed and divided by the number of those
          locations (the paper's, ``cls_loss_avg='num_locations'``) or by the
          foreground count (FCOS's, ``'num_pos'``).
        - ``loss_bbox``: IoU loss of the foreground boxes (Eq. 11), mean
          over the foreground (FCOS in mmdet weights by the centerness
          target instead; the paper averages plainly).
        - ``loss_centerness``: BCE over the foreground (Eq. 12).
        - ``loss_levelness``: cross-entropy over the stride-4 pixels,
          background inside crowd regions ignored (Eq. 13).
        - ``loss_sem``: cross-entropy of the worst 30 % pixels, logits
          bilinearly upsampled to the label size (Eq. 15, weight lambda).
        - ``loss_mask``: explicit mask loss over the query boxes
          ``B_query`` (Sec. 4.3, Eq. 16-18), when enabled.

        Args:
            cls_scores, bbox_preds, centernesses, levelness_logits,
                sem_logits: outputs of ``RTPHead.forward``.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``
                and (mask mode) ``masks`` of the non-crowd things.
            batch_img_metas (list[dict]): Image metas.
            gt_sem_seg (Tensor): (B, 1, H, W) labels, 255 = ignore, padded.
            batch_gt_instances_ignore (list[InstanceData], optional): Crowd
                regions.

        Returns:
            dict[str, Tensor]: the losses above.
        """
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        targets = self.assigner.assign(
            featmap_sizes,
            batch_gt_instances=batch_gt_instances,
            batch_ignored_instances=batch_gt_instances_ignore,
            levelness_size=tuple(levelness_logits.shape[-2:]))
        device = cls_scores[0].device
        batch_size = cls_scores[0].size(0)
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=bbox_preds[0].dtype, device=device)

        def flat(maps: List[Tensor], channels: int) -> Tensor:
            return torch.cat([
                m.permute(0, 2, 3, 1).reshape(-1, channels) for m in maps
            ])

        flat_cls = flat(cls_scores, self.cls_out_channels)
        flat_bbox = flat(bbox_preds, 4)
        flat_centerness = flat(centernesses, 1).squeeze(1)
        flat_labels = torch.cat([t.reshape(-1) for t in targets.labels])
        flat_fg = torch.cat([t.reshape(-1) for t in targets.fg_masks])
        flat_ignore = torch.cat([t.reshape(-1) for t in targets.ignore_masks])
        flat_bbox_targets = torch.cat([
            t.permute(0, 2, 3, 1).reshape(-1, 4) for t in targets.bbox_targets
        ])
        flat_centerness_targets = torch.cat(
            [t.reshape(-1) for t in targets.centerness_targets])
        flat_points = torch.cat([p.repeat(batch_size, 1) for p in points])

        pos_inds = flat_fg.nonzero().squeeze(1)
        num_pos = max(
            reduce_mean(flat_cls.new_tensor(float(len(pos_inds)))).item(),
            1.0)
        cls_weight = (~flat_ignore).to(flat_cls.dtype)
        if self.cls_loss_avg == 'num_pos':
            cls_avg = num_pos
        else:
            cls_avg = max(
                reduce_mean(cls_weight.sum().detach()).item(), 1.0)
        losses = dict(
            loss_cls=self.loss_cls(
                flat_cls, flat_labels, weight=cls_weight, avg_factor=cls_avg))

        pos_bbox = flat_bbox[pos_inds]
        pos_centerness = flat_centerness[pos_inds]
        if len(pos_inds):
            pos_points = flat_points[pos_inds]
            decoded = decode_ltrb_boxes(pos_points, pos_bbox)
            decoded_targets = decode_ltrb_boxes(pos_points,
                                                flat_bbox_targets[pos_inds])
            losses['loss_bbox'] = self.loss_bbox(
                decoded, decoded_targets, avg_factor=num_pos)
            losses['loss_centerness'] = self.loss_centerness(
                pos_centerness,
                flat_centerness_targets[pos_inds],
                avg_factor=num_pos)
        else:
            # keep every parameter in the graph with a zero loss
            losses['loss_bbox'] = pos_bbox.sum() * 0
            losses['loss_centerness'] = pos_centerness.sum() * 0

        levelness_targets = targets.levelness_targets.masked_fill(
            targets.levelness_ignore, 255)
        losses['loss_levelness'] = self.loss_levelness(
            levelness_logits, levelness_targets)

        labels = gt_sem_seg.squeeze(1).long()
        if labels.shape[-2:] != sem_logits.shape[-2:]:
            sem_up = F.interpolate(
                sem_logits,
                size=labels.shape[-2:],
                mode='bilinear',
                align_corners=False)
        else:
            sem_up = sem_logits
        losses[self.loss_semantic.loss_name] = self.loss_semantic(
            sem_up, labels)

        if self.loss_mask is not None:
            losses['loss_mask'] = self._mask_loss(cls_scores, bbox_preds,
                                                  centernesses,
                                                  levelness_logits,
                                                  sem_logits, targets,
                                                  batch_gt_instances,
                                                  batch_img_metas)
        return losses

    def mask_loss_dense_boxes(
            self,
            bbox_preds: List[Tensor],
            levelness_logits: Tensor,
            targets: Optional[FCOSMaskTargets] = None
    ) -> Tuple[Tensor, Tensor]:
        """The dense box map ``B`` the mask loss queries: Eq. 14 with the
        background channel, exactly as at inference (pixels whose levelness
        argmax is background have no box, ``P_loc = 0``). The levelness is
        detached (an argmax has no gradient anyway); with
        ``mask_loss_levelness='gt'`` the levelness *targets* choose the level
        where they are positive (a declared option).

        Returns:
            tuple[Tensor, Tensor]: (B, 4, h, w) boxes and (B, h, w) bool
            ``valid``, see :func:`build_dense_boxes`.
        """
        forced_levels = None
        if self.mask_loss_levelness == 'gt' and targets is not None:
            forced_levels = targets.levelness_targets - 1
        dense, valid = build_dense_boxes(
            bbox_preds,
            self.strides,
            levelness_logits.detach(),
            out_stride=self.semantic_stride,
            include_background=True,
            forced_levels=forced_levels)
        return dense[:, 0], valid

    def mask_loss_queries(self, cls_scores: List[Tensor],
                          centernesses: List[Tensor],
                          bbox_preds: List[Tensor],
                          batch_img_metas: List[dict]) -> RTPQuerySlots:
        """``B_query`` (Eq. 4, 16): the inference's query selection
        (:func:`select_query_slots`: class probability x centerness, per-level
        top-k, class-wise NMS) with the head's ``test_cfg`` settings, on
        detached outputs, at most ``loss_mask.max_queries_per_img`` per
        image (the best-scoring ones) when that cap is set."""
        cfg = self.test_cfg or {}
        max_per_img = cfg.get('max_per_img', 100)
        cap = self.loss_mask.max_queries_per_img
        if cap is not None:
            max_per_img = min(max_per_img, cap)
        img_shapes = None
        if all('img_shape' in meta for meta in batch_img_metas):
            img_shapes = [
                tuple(meta['img_shape'][:2]) for meta in batch_img_metas
            ]
        with torch.no_grad():
            return select_query_slots(
                [score.detach().sigmoid() for score in cls_scores],
                [ctr.detach() for ctr in centernesses],
                [bbox.detach() for bbox in bbox_preds],
                self.strides,
                img_shapes=img_shapes,
                score_thr=cfg.get('score_thr', 0.05),
                nms_pre=cfg.get('nms_pre', 1000),
                iou_threshold=nms_iou_threshold(cfg.get('nms')),
                max_per_img=max_per_img,
                min_bbox_size=cfg.get('min_bbox_size', 0),
                agnostic_iou_thr=cfg.get('agnostic_iou_thr'))

    def _mask_loss(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                   centernesses: List[Tensor], levelness_logits: Tensor,
                   sem_logits: Tensor, targets: FCOSMaskTargets,
                   batch_gt_instances: InstanceList,
                   batch_img_metas: List[dict]) -> Tensor:
        """Explicit mask loss (Sec. 4.3, Eq. 16-18) over ``B_query``.

        The queries are :meth:`mask_loss_queries` (the selection is
        detached). Each is matched to the instance its location (FPN level
        and cell) is assigned to (Sec. 4.1); a query at a location that no
        instance owns has no target box ``b_j^t`` (Eq. 16's beta_j and N_j
        are undefined) and is dropped: it neither counts in ``|B_query|``
        nor contributes. The query box ``b_j`` is decoded again from the
        (non-detached) regression at that location, so it equals the
        selected box and its gradient reaches the query's regression; the
        dense map :meth:`mask_loss_dense_boxes` carries gradient into the
        regressions it samples. The mean runs over the queries of the whole
        batch.
        """
        height, width = sem_logits.shape[-2:]
        dense, valid = self.mask_loss_dense_boxes(bbox_preds,
                                                  levelness_logits, targets)
        slots = self.mask_loss_queries(cls_scores, centernesses, bbox_preds,
                                       batch_img_metas)
        # the flat location index (per image: level-major, then row, then
        # column) of every slot, and the instance assigned there
        device = sem_logits.device
        featmap_sizes = [tuple(b.shape[-2:]) for b in bbox_preds]
        level_widths = torch.tensor([w for _, w in featmap_sizes],
                                    device=device)
        level_offsets = torch.tensor(
            [0] + [h * w for h, w in featmap_sizes[:-1]],
            device=device).cumsum(0)
        levels = slots.levels.clamp(min=0)
        flat_index = level_offsets[levels] + slots.cells[..., 0].clamp(
            min=0) * level_widths[levels] + slots.cells[..., 1].clamp(min=0)
        flat_gt_inds = torch.cat(
            [t.flatten(1) for t in targets.assigned_gt_inds], dim=1)
        matched = flat_gt_inds.gather(1, flat_index)
        slot_index = torch.arange(slots.levels.size(1), device=device)
        keep = (slot_index[None] < slots.num_valid[:, None]) & (matched >= 0)

        flat_ltrb = torch.cat([b.flatten(2) for b in bbox_preds],
                              dim=2).transpose(1, 2)  # (B, S, 4)
        flat_points = torch.cat(
            self.prior_generator.grid_priors(
                featmap_sizes, dtype=flat_ltrb.dtype, device=device))
        sem_probs = sem_logits.softmax(dim=1) \
            if self.loss_mask.use_semantic_prob else None
        losses = []
        for img_id, gt in enumerate(batch_gt_instances):
            chosen = keep[img_id].nonzero().squeeze(1)
            if len(chosen) == 0:
                continue
            index = flat_index[img_id, chosen]
            gt_inds = matched[img_id, chosen]
            img_shape = batch_img_metas[img_id].get('img_shape')
            query_bboxes = decode_ltrb_boxes(
                flat_points[index], flat_ltrb[img_id, index],
                None if img_shape is None else tuple(img_shape[:2]))
            class_probs = None
            if sem_probs is not None:
                labels = slots.labels[img_id, chosen]  # c_j, as Eq. 5
                class_probs = sem_probs[img_id, labels].flatten(1)
            losses.append(
                rtp_query_mask_losses(
                    query_bboxes,
                    get_box_tensor(gt.bboxes).to(query_bboxes)[gt_inds],
                    self._mask_fractions(gt, gt_inds, height, width),
                    dense[img_id].flatten(1),
                    valid[img_id].flatten(),
                    class_probs,
                    iou_type=self.loss_mask.iou_type))
        if not losses:
            # no query at a positive location: zero, attached to the graph
            return sum(bbox.sum() for bbox in bbox_preds) * 0
        return self.loss_mask.loss_weight * torch.cat(losses).mean()

    def _mask_fractions(self, gt: InstanceData, inds: Tensor, height: int,
                        width: int) -> Tensor:
        """(K, h * w) float: the fraction of each stride-4 cell that the
        masks of instances ``inds`` cover (:func:`mask_cell_fractions`),
        each distinct instance pooled once."""
        if 'masks' not in gt:
            raise ValueError('the RTP mask loss needs gt_instances.masks; '
                             'set loss_mask=None for the weakly supervised '
                             'mode')
        unique, inverse = inds.unique(return_inverse=True)
        masks = as_mask_tensor(gt.masks)
        fractions = mask_cell_fractions(
            masks[unique.to(masks.device)],
            self.semantic_stride, (height, width),
            device=inds.device)
        return fractions.flatten(1)[inverse]
