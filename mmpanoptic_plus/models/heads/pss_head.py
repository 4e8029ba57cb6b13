# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS head: panoptic embedding branch, seeding branch and segment classifier
(Hwang et al., "Contextual Image Parsing via Panoptic Segment Sorting",
Sec. 3, 4.1 and Appendix A.7)."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from mmpanoptic_plus.models.utils import (grid_cluster_labels,
                                          spherical_kmeans)
from mmpanoptic_plus.registry import MODELS
from .pss_seed_targets import seed_targets
from .pss_training_segments import (pss_training_segments,
                                    sample_ids_on_grid)


@MODELS.register_module()
class PSSHead(BaseModule):
    """Panoptic Segment Sorting head.

    - Embedding branch (Sec. 4.1): an :class:`UPSNetSemanticHead` (three
      deformable 3x3 convs shared by P2-P5, resampled to stride 4,
      concatenated, fused by a 1x1 conv) with ``embed_dim`` (64) outputs,
      L2-normalised per pixel: the panoptic embedding ``v``.
    - Seeding branch (Sec. 3.4, A.7): the same head layout with 3 outputs,
      the centre heatmap (L2 loss, weight 1) and the ``(dy, dx)`` offsets to
      the centre in map cells (L1 loss on the cells within the radius,
      weight 0.1). ``seeding_branch=None`` disables seeding (Table 5).
    - Segment classifier (Sec. 3.2): two 1x1 convs with a ReLU between them
      on each segment prototype (a 1x1 conv on a vector is a linear layer),
      softmax cross-entropy (weight 1). ``classifier_channels=None``
      disables it (Table 5): segments are then classified by their nearest
      class-mean prototype, an exponential moving average of the training
      prototypes of each class (our stand-in for the paper's k-NN search
      over training prototypes, whose memory the paper does not describe).
    - Training (Sec. 3.1-3.3): spherical k-means with ``num_clusters`` (196
      on Cityscapes) from a grid, ``kmeans_iters`` (10) iterations on the
      detached embeddings of labelled pixels; segments split by the ground
      truth (:func:`pss_training_segments`), hybrid scale exemplars for
      thing instances under ``small_area`` (A_p = 2048; None disables
      them); SegSort loss (:class:`PSSSegSortLoss`, kappa = 8).

    Args:
        num_things (int): Thing classes.
        num_stuff (int): Stuff classes.
        embedding_branch (dict): ``UPSNetSemanticHead`` config (its
            ``out_channels`` is set to ``embed_dim``).
        seeding_branch (dict, optional): ``UPSNetSemanticHead`` config (its
            ``out_channels`` is set to 3); None disables seeding.
        embed_dim (int): Embedding dimension. Defaults to 64.
        classifier_channels (int, optional): Hidden channels of the
            classifier; None disables it. Defaults to 64.
        class_mean_momentum (float): EMA momentum of the class means used
            without classifier. Defaults to 0.99.
        num_clusters (int): K in training. Defaults to 196.
        kmeans_iters (int): k-means iterations. Defaults to 10.
        small_area (int, optional): A_p in input pixels. Defaults to 2048.
        upscale_factor (int): Upscaling of the embeddings for hybrid scale
            exemplars. Defaults to 4 (input resolution; not given by the
            paper).
        seed_radius (float): Heatmap radius, input pixels. Defaults to 16.
        loss_segsort (dict): SegSort loss.
        loss_cls (dict): Segment classification loss.
        loss_seed_heatmap (dict): Heatmap loss (L2).
        loss_seed_offset (dict): Offset loss (L1).
        stride (int): Stride of the branch outputs. Defaults to 4.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self,
                 num_things: int,
                 num_stuff: int,
                 embedding_branch: ConfigType,
                 seeding_branch: OptConfigType = None,
                 embed_dim: int = 64,
                 classifier_channels: Optional[int] = 64,
                 class_mean_momentum: float = 0.99,
                 num_clusters: int = 196,
                 kmeans_iters: int = 10,
                 small_area: Optional[int] = 2048,
                 upscale_factor: int = 4,
                 seed_radius: float = 16.,
                 loss_segsort: ConfigType = dict(
                     type='PSSSegSortLoss', concentration=8.0,
                     loss_weight=1.0),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', loss_weight=1.0),
                 loss_seed_heatmap: ConfigType = dict(
                     type='MSELoss', loss_weight=1.0),
                 loss_seed_offset: ConfigType = dict(
                     type='L1Loss', loss_weight=0.1),
                 stride: int = 4,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.num_classes = num_things + num_stuff
        self.embed_dim = embed_dim
        self.num_clusters = num_clusters
        self.kmeans_iters = kmeans_iters
        self.small_area = small_area
        self.upscale_factor = upscale_factor
        self.seed_radius = seed_radius
        self.stride = stride
        self.embedding_branch = MODELS.build(
            self._branch_cfg(embedding_branch, embed_dim))
        self.seeding_branch = None if seeding_branch is None else \
            MODELS.build(self._branch_cfg(seeding_branch, 3))
        self.with_classifier = classifier_channels is not None
        if self.with_classifier:
            self.classifier = nn.Sequential(
                nn.Linear(embed_dim, classifier_channels),
                nn.ReLU(inplace=True),
                nn.Linear(classifier_channels, self.num_classes))
        else:
            self.class_mean_momentum = class_mean_momentum
            self.register_buffer('class_means',
                                 torch.zeros(self.num_classes, embed_dim))
        self.loss_segsort = MODELS.build(loss_segsort)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_seed_heatmap = MODELS.build(loss_seed_heatmap)
        self.loss_seed_offset = MODELS.build(loss_seed_offset)

    def _branch_cfg(self, cfg: ConfigType, out_channels: int) -> dict:
        cfg = dict(cfg)
        cfg.setdefault('type', 'UPSNetSemanticHead')
        cfg.setdefault('num_things_classes', self.num_things)
        cfg.setdefault('num_stuff_classes', self.num_stuff)
        cfg['out_channels'] = out_channels
        return cfg

    @property
    def with_seeding(self) -> bool:
        """Whether the seeding branch exists."""
        return self.seeding_branch is not None

    def forward(self, x: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Branch outputs at stride 4.

        Args:
            x (Sequence[Tensor]): FPN levels P2-P5 (and more, unused).

        Returns:
            dict[str, Tensor]: ``embeddings`` (B, embed_dim, h, w) unit
            length; with seeding ``seed_heatmap`` (B, 1, h, w) and
            ``seed_offsets`` (B, 2, h, w) ``(dy, dx)`` map cells.
        """
        outs = dict(embeddings=F.normalize(
            self.embedding_branch(x)['seg_preds'], dim=1))
        if self.with_seeding:
            seeds = self.seeding_branch(x)['seg_preds']
            outs['seed_heatmap'] = seeds[:, :1]
            outs['seed_offsets'] = seeds[:, 1:]
        return outs

    def classify(self, prototypes: Tensor) -> Tensor:
        """Class scores of segment prototypes (Sec. 3.2).

        Args:
            prototypes (Tensor): (..., embed_dim) unit-length prototypes.

        Returns:
            Tensor: (..., num_classes) logits (classifier) or cosine
            similarities to the class means (no classifier).
        """
        if self.with_classifier:
            return self.classifier(prototypes)
        return prototypes @ F.normalize(self.class_means, dim=1).t()

    @staticmethod
    def _segment_targets(batch_data_samples: SampleList, device):
        for data_sample in batch_data_samples:
            if 'gt_segment_ids' not in data_sample or \
                    'gt_segments' not in data_sample:
                raise KeyError(
                    'PSS needs data_sample.gt_segment_ids and gt_segments: '
                    'add GeneratePanopticSegmentIds and PackPanopticInputs('
                    "dense_target_keys=['gt_segment_ids']) to the train "
                    'pipeline and PanopticDataPreprocessor(dense_target_'
                    'pad_values=dict(gt_segment_ids=-1))')
        gt_ids = torch.stack([
            ds.gt_segment_ids.data[0].long() for ds in batch_data_samples
        ]).to(device)
        num_slots = max(max(len(ds.gt_segments) for ds in batch_data_samples),
                        1)
        labels = torch.full((len(batch_data_samples), num_slots), -1,
                            dtype=torch.long, device=device)
        is_thing = torch.zeros_like(labels, dtype=torch.bool)
        for b, ds in enumerate(batch_data_samples):  # per image
            count = len(ds.gt_segments)
            labels[b, :count] = ds.gt_segments.labels.to(device)
            is_thing[b, :count] = ds.gt_segments.is_thing.to(device)
        return gt_ids, labels, is_thing

    def loss(self, x: Sequence[Tensor],
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """SegSort, classifier and seed losses of a batch.

        Args:
            x (Sequence[Tensor]): FPN levels.
            batch_data_samples (list[DetDataSample]): With
                ``gt_segment_ids``, ``gt_segments`` and ``gt_instances``
                (boxes: the seed centres).

        Returns:
            dict[str, Tensor]: ``loss_segsort``, ``loss_segment_cls`` (with
            classifier), ``loss_seed_heatmap`` and ``loss_seed_offset`` (with
            seeding).
        """
        outs = self(x)
        embeds = outs['embeddings']
        batch, _, height, width = embeds.shape
        gt_ids, gt_labels, gt_is_thing = self._segment_targets(
            batch_data_samples, embeds.device)
        with torch.no_grad():
            # k-means on the labelled cells only: the loss reads no other
            labelled = sample_ids_on_grid(gt_ids, self.stride) >= 0
            init = grid_cluster_labels(height, width, self.num_clusters,
                                       embeds.device).expand_as(labelled)
            init = torch.where(labelled, init, torch.full_like(init, -1))
            clusters, _ = spherical_kmeans(embeds.detach(), init,
                                           self.num_clusters,
                                           self.kmeans_iters)
        segments = pss_training_segments(
            embeds, clusters, self.num_clusters, gt_ids, gt_labels,
            gt_is_thing, self.num_classes, self.stride, self.small_area,
            self.upscale_factor)
        losses = dict(
            loss_segsort=self.loss_segsort(segments.pixel_embeds,
                                           segments.pixel_segments,
                                           segments.prototypes,
                                           segments.instances))
        if self.with_classifier:
            if segments.labels.numel():
                losses['loss_segment_cls'] = self.loss_cls(
                    self.classifier(segments.prototypes), segments.labels)
            else:
                losses['loss_segment_cls'] = embeds.sum() * 0
        elif self.training and segments.labels.numel():
            self._update_class_means(segments.prototypes.detach(),
                                     segments.labels)
        if self.with_seeding:
            losses.update(
                self._seed_losses(outs['seed_heatmap'],
                                  outs['seed_offsets'], batch_data_samples))
        return losses

    @torch.no_grad()
    def _update_class_means(self, prototypes: Tensor, labels: Tensor) -> None:
        sums = prototypes.new_zeros(self.num_classes, self.embed_dim)
        sums.index_add_(0, labels, prototypes)
        present = torch.bincount(labels, minlength=self.num_classes) > 0
        new = F.normalize(sums, dim=1)
        fresh = present & (self.class_means.norm(dim=1) == 0)
        momentum = self.class_mean_momentum
        updated = torch.where(
            fresh[:, None], new,
            momentum * self.class_means + (1 - momentum) * new)
        self.class_means.copy_(
            torch.where(present[:, None], updated, self.class_means))

    def _seed_losses(self, heatmap: Tensor, offsets: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        size = tuple(heatmap.shape[-2:])
        targets: List = [
            seed_targets(self._centers(ds).to(heatmap.device), size,
                         self.stride, self.seed_radius)
            for ds in batch_data_samples  # per image
        ]
        heat_t = torch.stack([t[0] for t in targets])
        offset_t = torch.stack([t[1] for t in targets])
        within = torch.stack([t[2] for t in targets]).expand_as(offset_t)
        loss_heatmap = self.loss_seed_heatmap(heatmap,
                                              heat_t)
        if bool(within.any()):
            loss_offset = self.loss_seed_offset(offsets[within],
                                                offset_t[within])
        else:
            loss_offset = offsets.sum() * 0
        return dict(
            loss_seed_heatmap=loss_heatmap, loss_seed_offset=loss_offset)

    @staticmethod
    def _centers(data_sample) -> Tensor:
        """(n, 2) box centres ``(x, y)`` of the non-crowd instances."""
        boxes = data_sample.gt_instances.bboxes
        boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
        return (boxes[:, :2] + boxes[:, 2:]) / 2
