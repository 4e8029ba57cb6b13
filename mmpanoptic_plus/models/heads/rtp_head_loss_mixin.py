# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Training side of RTP's unified panoptic head: targets and losses.

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 3.4 and 4 (Eq. 11-19).
"""
from typing import Dict, List, Optional

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
from mmpanoptic_plus.models.utils import (build_dense_boxes,
                                          decode_ltrb_boxes, masks_at_points,
                                          stride_grid_coordinates)


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
        """RTP's losses (paper Sec. 4).

        - ``loss_cls``: sigmoid focal loss over all non-ignored locations
          (Eq. 11), summed and divided by the foreground count (FCOS's
          normalisation, ``cls_loss_avg='num_pos'``) or by the location
          count (``'num_locations'``).
        - ``loss_bbox``: IoU loss of the foreground boxes (Eq. 12), mean
          over the foreground (FCOS in mmdet weights by the centerness
          target instead; the paper averages plainly).
        - ``loss_centerness``: BCE over the foreground (Eq. 13).
        - ``loss_levelness``: cross-entropy over the stride-4 pixels,
          background inside crowd regions ignored (Eq. 14).
        - ``loss_sem``: cross-entropy of the worst 30 % pixels, logits
          bilinearly upsampled to the label size (weight lambda).
        - ``loss_mask``: explicit mask loss on sampled query boxes (Sec. 3.4,
          Eq. 15-19), when enabled.

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
            losses['loss_mask'] = self._mask_loss(bbox_preds, flat_bbox,
                                                  flat_points, targets,
                                                  levelness_logits,
                                                  sem_logits,
                                                  batch_gt_instances)
        return losses

    def _mask_loss(self, bbox_preds: List[Tensor], flat_bbox: Tensor,
                   flat_points: Tensor, targets: FCOSMaskTargets,
                   levelness_logits: Tensor, sem_logits: Tensor,
                   batch_gt_instances: InstanceList) -> Tensor:
        """Explicit mask loss (Sec. 3.4) on at most ``max_queries_per_img``
        positive locations per image, sampled uniformly.

        Each pixel of the stride-4 grid takes the box predicted by one level
        (:func:`build_dense_boxes` with the levelness argmax over the level
        channels only, detached, or the levelness target where positive:
        see ``mask_loss_levelness``); boxes are bilinearly sampled from the
        level maps, so gradients reach the box regression of both the query
        and the dense map, and the semantic probabilities.
        """
        batch_size, _, height, width = sem_logits.shape
        forced_levels = None
        if self.mask_loss_levelness == 'gt':
            forced_levels = targets.levelness_targets - 1
        dense, _ = build_dense_boxes(
            bbox_preds,
            self.strides,
            levelness_logits.detach(),
            out_stride=self.semantic_stride,
            include_background=False,
            forced_levels=forced_levels)
        dense = dense[:, 0]  # (B, 4, h, w): one box per pixel
        sem_probs = sem_logits.softmax(dim=1)

        # flat index layout: level-major, then image, then pixel
        gt_inds = torch.cat([t.reshape(-1) for t in targets.assigned_gt_inds])
        image_of = torch.cat([
            torch.arange(batch_size, device=gt_inds.device).repeat_interleave(
                t[0].numel()) for t in targets.assigned_gt_inds
        ])
        max_queries = self.loss_mask.max_queries_per_img
        losses = []
        for img_id, gt in enumerate(batch_gt_instances):
            pos = ((gt_inds >= 0) & (image_of == img_id)).nonzero().squeeze(1)
            if len(pos) > max_queries:
                pos = pos[torch.randperm(len(pos), device=pos.device)
                          [:max_queries]]
            if len(pos) == 0:
                continue
            matched = gt_inds[pos]
            labels = gt.labels.to(matched.device)[matched]
            losses.append(
                rtp_query_mask_losses(
                    decode_ltrb_boxes(flat_points[pos], flat_bbox[pos]),
                    get_box_tensor(gt.bboxes).to(flat_bbox)[matched],
                    self._masks_on_grid(gt, matched, height, width),
                    dense[img_id].flatten(1),
                    sem_probs[img_id, labels].flatten(1),
                    iou_type=self.loss_mask.iou_type))
        if not losses:
            # no foreground in the batch: zero, attached to the graph
            return flat_bbox.sum() * 0 + sem_logits.sum() * 0
        return self.loss_mask.loss_weight * torch.cat(losses).mean()

    def _masks_on_grid(self, gt: InstanceData, inds: Tensor, height: int,
                       width: int) -> Tensor:
        """(K, h * w) float: masks of instances ``inds`` read at the
        stride-4 pixels ``(4 j + 2, 4 i + 2)`` (0 outside the masks)."""
        if 'masks' not in gt:
            raise ValueError('the RTP mask loss needs gt_instances.masks; '
                             'set loss_mask=None for the weakly supervised '
                             'mode')
        xs, ys = stride_grid_coordinates(height, width, self.semantic_stride,
                                         inds.device, torch.long)
        on_grid = masks_at_points(gt.masks, xs.repeat(height),
                                  ys.repeat_interleave(width))
        return on_grid[inds].float()
