# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Training side of :class:`CIAEHead`: targets, the memory update and the
losses of Eq. 15 (Gao et al., "Learning Category- and Instance-Aware Pixel
Embedding for Fast Panoptic Segmentation", Sec. III-B/C, IV-A/B)."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures import SampleList
from mmdet.utils import InstanceList, reduce_mean
from torch import Tensor

from mmpanoptic_plus.models.utils import (decode_ltrb_boxes, segment_sums,
                                          stack_segment_targets)


class CIAEHeadLossMixin:
    """``loss`` / ``loss_by_feat`` of :class:`CIAEHead`.

    Expects the head's attributes ``assigner``, ``prior_generator``,
    ``cls_out_channels``, ``loss_cls``, ``loss_bbox``, ``loss_centerness``,
    ``loss_embedding`` (:class:`CIAEEmbeddingLoss`) and ``memory``
    (:class:`CIAEMemoryEmbeddings`).
    """

    def loss(self, x: tuple, batch_data_samples: SampleList) -> dict:
        """Losses from FPN features (P2-P7) and data samples carrying
        ``gt_instances``, ``ignored_instances`` (crowd), ``gt_segment_ids``
        and ``gt_segments``."""
        outs = self(x)
        batch_gt_instances, batch_ignored, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        segment_ids, labels, is_thing = stack_segment_targets(
            batch_data_samples)
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 segment_ids, labels, is_thing,
                                 batch_ignored)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        pixel_embeds: Tensor,
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        segment_ids: Tensor,
        segment_labels: Tensor,
        segment_is_thing: Tensor,
        batch_gt_instances_ignore: Optional[InstanceList] = None
    ) -> Dict[str, Tensor]:
        """Eq. 15: ``L = L_centerness + L_class + L_reg + L_CIAE``.

        Args:
            cls_scores, bbox_preds, centernesses, pixel_embeds: outputs of
                ``CIAEHead.forward``.
            batch_gt_instances (list[InstanceData]): Non-crowd things with
                ``bboxes``, ``labels`` and ``masks``.
            batch_img_metas (list[dict]): Image metas.
            segment_ids (Tensor): (B, H, W) padded segment-id map.
            segment_labels (Tensor): (B, S) segment classes, -1 padding.
            segment_is_thing (Tensor): (B, S) thing instance slots.
            batch_gt_instances_ignore (list[InstanceData], optional): Crowd
                regions.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``,
            ``loss_centerness`` (:meth:`proposal_losses`), ``loss_cae`` and
            ``loss_iae`` (:meth:`embedding_losses`).
        """
        losses = self.proposal_losses(cls_scores, bbox_preds, centernesses,
                                      batch_gt_instances,
                                      batch_gt_instances_ignore)
        losses.update(
            self.embedding_losses(pixel_embeds, segment_ids, segment_labels,
                                  segment_is_thing))
        return losses

    def proposal_losses(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        centernesses: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_gt_instances_ignore: Optional[InstanceList] = None
    ) -> Dict[str, Tensor]:
        """FCOS's losses with mask-restricted positives (Sec. IV-A).

        - ``loss_cls``: sigmoid focal loss over the locations (crowd
          background locations left out), divided by the foreground count.
        - ``loss_bbox``: IoU loss of the decoded foreground boxes, weighted
          by the centerness targets and divided by their sum (mmdet's FCOS;
          the paper says "similar to FCOS").
        - ``loss_centerness``: BCE over the foreground.
        """
        featmap_sizes = [tuple(c.shape[-2:]) for c in cls_scores]
        targets = self.assigner.assign(
            featmap_sizes,
            batch_gt_instances=batch_gt_instances,
            batch_ignored_instances=batch_gt_instances_ignore)
        batch_size = cls_scores[0].size(0)
        points = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=cls_scores[0].device)

        def flat(maps: List[Tensor], channels: int) -> Tensor:
            """Per level (B, C, H, W) -> (sum_l B H W, C), level-major."""
            return torch.cat([
                m.permute(0, 2, 3, 1).reshape(-1, channels) for m in maps
            ])

        flat_cls = flat(cls_scores, self.cls_out_channels)
        flat_bbox = flat(bbox_preds, 4)
        flat_centerness = flat(centernesses, 1)[:, 0]
        flat_labels = torch.cat([t.reshape(-1) for t in targets.labels])
        flat_fg = torch.cat([t.reshape(-1) for t in targets.fg_masks])
        flat_ignore = torch.cat([t.reshape(-1) for t in targets.ignore_masks])
        flat_bbox_targets = flat(targets.bbox_targets, 4)
        flat_centerness_targets = torch.cat(
            [t.reshape(-1) for t in targets.centerness_targets])
        flat_points = torch.cat([p.repeat(batch_size, 1) for p in points])

        pos = flat_fg.nonzero().squeeze(1)
        num_pos = max(
            reduce_mean(flat_cls.new_tensor(float(len(pos)))).item(), 1.0)
        losses = dict(
            loss_cls=self.loss_cls(
                flat_cls,
                flat_labels,
                weight=(~flat_ignore).to(flat_cls.dtype),
                avg_factor=num_pos))
        pos_bbox = flat_bbox[pos]
        pos_centerness = flat_centerness[pos]
        if len(pos):
            pos_points = flat_points[pos]
            centerness_targets = flat_centerness_targets[pos]
            centerness_denorm = max(
                reduce_mean(centerness_targets.sum().detach()).item(), 1e-6)
            losses['loss_bbox'] = self.loss_bbox(
                decode_ltrb_boxes(pos_points, pos_bbox),
                decode_ltrb_boxes(pos_points, flat_bbox_targets[pos]),
                weight=centerness_targets,
                avg_factor=centerness_denorm)
            losses['loss_centerness'] = self.loss_centerness(
                pos_centerness, centerness_targets, avg_factor=num_pos)
        else:
            # keep every parameter in the graph with a zero loss
            losses['loss_bbox'] = pos_bbox.sum() * 0
            losses['loss_centerness'] = pos_centerness.sum() * 0
        return losses

    def embedding_losses(self, pixel_embeds: Tensor, segment_ids: Tensor,
                         segment_labels: Tensor,
                         segment_is_thing: Tensor) -> Dict[str, Tensor]:
        """L_CIAE (Eq. 12) after the memory update of Eq. 13-14.

        ``P' + P''`` is bilinearly upsampled to the segment map (4x for
        inputs padded to a multiple of 32: the paper's ``up4``); the batch
        mean of each category (Eq. 3, on the unnormalised embeddings) updates
        the memory (training only), whose new value ``M_t`` is the category
        query of L_CAE and the stuff query of L_IAE.
        """
        size = tuple(segment_ids.shape[-2:])
        if tuple(pixel_embeds.shape[-2:]) != size:
            embeds = F.interpolate(
                pixel_embeds, size=size, mode='bilinear',
                align_corners=False)
        else:
            embeds = pixel_embeds
        if self.training:
            categories = self.loss_embedding.pixel_categories(
                segment_ids, segment_labels)
            sums, counts = segment_sums(
                categories,
                embeds.detach(),
                self.loss_embedding.num_categories,
                ignore_index=-1)
            self.memory.update(sums.sum(0), counts.sum(0) > 0)
        return self.loss_embedding(embeds, segment_ids, segment_labels,
                                   segment_is_thing,
                                   self.memory.normalized())
