# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, NamedTuple, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.detectors import MaskFormer
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from ..layers.pisr_encoder import PISREncoder  # noqa: F401 (registers it)
from ..utils.segment_embeddings import region_encodings

#: What the final mask embedding is taken against: ``'pan'`` = ``F_pan``
#: alone (default, the paper's "F_pan is fed to the final prediction
#: stage", as :class:`PanopticDeepLabPISR`), ``'concat'`` = a 1x1 conv of
#: ``[F; F_pan]`` back to the mask-feature width (MaskFormer's dot product
#: needs one width).
FINAL_INPUTS = ('concat', 'pan')

#: Guards the per-pixel normalisation of the semantic map ``S``.
SEMANTIC_EPS = 1e-6


class MaskFormerPredictions(NamedTuple):
    """Class and mask logits of a set of queries.

    Attributes:
        cls_scores (Tensor): (L, B, Q, N + 1) class logits, the last class
            "no object"; L decoder layers (1 for the final prediction).
        mask_preds (Tensor): (L, B, Q, h, w) mask logits at the stride of
            the mask features (4).
    """
    cls_scores: Tensor
    mask_preds: Tensor


def semantic_probs_from_queries(cls_scores: Tensor,
                                mask_preds: Tensor) -> Tensor:
    """Soft semantic map of a query-based model: MaskFormer's semantic
    inference (Cheng et al., NeurIPS 2021, Sec. 3.4,
    ``sum_q p_q(c) m_q[h, w]``), normalised over the classes.

    Args:
        cls_scores (Tensor): (B, Q, N + 1) class logits (last: no object).
        mask_preds (Tensor): (B, Q, h, w) mask logits.

    Returns:
        Tensor: (B, N, h, w) class probabilities of every pixel (each pixel
        sums to 1; the sum divided by is clamped below by
        :data:`SEMANTIC_EPS`).
    """
    class_probs = cls_scores.softmax(dim=-1)[..., :-1]
    scores = torch.einsum('bqc,bqhw->bchw', class_probs, mask_preds.sigmoid())
    return scores / scores.sum(dim=1, keepdim=True).clamp_min(SEMANTIC_EPS)


def thing_query_heatmaps(cls_scores: Tensor, mask_preds: Tensor,
                         thing_map: Tensor, num_things: int,
                         num_instances: int,
                         score_thr: float) -> Tuple[Tensor, Tensor]:
    """Initial instance heatmaps ``I`` of a query-based model: the mask
    probabilities of the K queries with the highest thing score.

    A query's thing score is its largest softmax probability over the thing
    classes (softmax over all N + 1 outputs, "no object" included). The K
    best queries fill the K slots in descending score order; a slot is
    valid when its score exceeds ``score_thr`` (invalid slots are zero).
    Each heatmap is ``sigmoid(mask logits)`` times ``thing_map`` (PISR Sec.
    3.2: the initial heatmaps are multiplied by the thing/stuff binary map
    of ``S``).

    Gradients: the selection is discrete; the selected mask probabilities
    keep theirs.

    Args:
        cls_scores (Tensor): (B, Q, N + 1) class logits.
        mask_preds (Tensor): (B, Q, h, w) mask logits.
        thing_map (Tensor): (B, 1, h, w) thing map in [0, 1].
        num_things (int): Thing classes (labels ``0 .. num_things - 1``).
        num_instances (int): K, at most Q.
        score_thr (float): Minimum thing score (exclusive) of a valid slot.

    Returns:
        tuple[Tensor, Tensor]: (B, K, h, w) heatmaps and (B, K) bool valid
        (valid slots come first).
    """
    num_queries = cls_scores.shape[1]
    if not 1 <= num_instances <= num_queries:
        raise ValueError(f'num_instances must be in [1, {num_queries}] '
                         f'(the queries), got {num_instances}')
    thing_scores = cls_scores.softmax(dim=-1)[..., :num_things].amax(dim=-1)
    scores, index = thing_scores.detach().topk(num_instances, dim=1)
    valid = scores > score_thr
    height, width = mask_preds.shape[-2:]
    selected = mask_preds.gather(
        1, index[..., None, None].expand(-1, -1, height, width))
    heatmaps = selected.sigmoid() * thing_map
    return heatmaps * valid[..., None, None].to(heatmaps.dtype), valid


@MODELS.register_module()
class MaskFormerPISR(MaskFormer):
    """MaskFormer (Cheng et al., "Per-Pixel Classification is Not All You
    Need for Semantic Segmentation", NeurIPS 2021; mmdet 3.3's
    ``MaskFormer`` and ``MaskFormerHead``) wrapped by PISR (Borse et al.,
    CVPR 2022, Sec. 3.1, Table 3: MaskFormer R50 / R101 on ADE20K).

    The paper applies PISR to MaskFormer without saying where a query-based
    model's ``F``, ``S`` and ``I`` come from. The choices made here, in one
    forward:

    1. The head's pixel decoder and transformer decoder run unchanged:
       per-pixel embeddings ``mask_features`` (B, C, H/4, W/4) and the
       query embeddings of every decoder layer (L, B, Q, C_q); the base
       ``cls_embed`` / ``mask_embed`` give the *initial* class and mask
       logits of every layer (deep supervision, as MaskFormer).
    2. ``F`` = the per-pixel embeddings (the map every mask is a dot
       product with: MaskFormer's feature of the prediction stage).
    3. ``S`` = MaskFormer's semantic inference from the last layer's
       queries, ``sum_q p_q(c) sigmoid(m_q)``, normalised over the N
       classes (:func:`semantic_probs_from_queries`); kept differentiable.
    4. ``I`` = the sigmoid masks of the top-K queries by thing-class
       probability, times the binary thing map ``argmax S in things``
       (:func:`thing_query_heatmaps`; slots scoring ``<= instance_score_thr``
       are invalid). Like the Panoptic FPN wrapper, the threshold is low:
       the reweighting network (Sec. 3.3) decides how much each slot counts.
    5. ``F_pan = PISREncoder(F, S, I, valid)`` (Sec. 3.2-3.4).
    6. Final prediction stage: ``F_final`` = ``F_pan``
       (``final_input='pan'``) or a 1x1 conv of ``[F; F_pan]``
       (``'concat'``). Each last-layer query is refined with the context
       under its initial mask, ``q' = q + W mean_p(sigmoid(m_q) F_final)``
       (:func:`region_encodings`, ``W`` a linear map), so that the final
       *classes* see the relational context too (the paper's Fig. 7 shows
       PISR correcting MaskFormer's classes); PISR's class logits are
       ``final_cls_embed(q')`` and its mask logits
       ``final_mask_embed(q') . F_final`` (own weights, same shapes as the
       base ``cls_embed`` / ``mask_embed``); with ``final_residual=False``
       they are the final logits.
    7. With ``final_residual=True`` (default) they are instead a
       correction added to the last layer's initial logits (``cls_final =
       cls_init + final_cls_embed(q')``, ``m_final = m_init +
       final_mask_embed(q') . F_final``), and the last layers of
       ``final_cls_embed`` and ``final_mask_embed`` start at zero: training
       starts from the base model's own prediction and PISR learns what to
       change. Why: ``F_pan`` (Sec. 3.4, ``g_q(E)^T g_p(F_sp)``) lies, at
       every pixel, in the span of the N + K slot values, so a mask
       ``e . F_pan`` is a mix of the N + K slot affinity maps; with fresh
       standalone heads (``final_residual=False``, the design of the first
       synthetic runs) the thing masks settled just under probability 0.5
       and the model found almost no things (``configs/pisr/README.md``,
       "Seed sweep"). The paper does not say how MaskFormer's heads read
       ``F_pan``; this is our choice, declared.

    Loss (Eq. 1, ``L = gamma (L'_sem + L'_ins) + L_sem + L_ins``, each the
    base model's own): MaskFormer's set loss (Hungarian matching,
    classification CE, focal and dice mask losses) of the initial
    predictions of every layer, times ``gamma``, reported as
    ``loss_cls_init``, ``loss_mask_init``, ``loss_dice_init`` and
    ``d{i}.loss_*_init``; the same set loss, matched on its own, of the
    final predictions as ``loss_cls``, ``loss_mask``, ``loss_dice``.
    Inference post-processes the final predictions with the configured
    ``panoptic_fusion_head`` (mmdet's ``MaskFormerFusionHead``).

    Args:
        backbone, neck, panoptic_head, panoptic_fusion_head, train_cfg,
        test_cfg, data_preprocessor, init_cfg: As mmdet's ``MaskFormer``
            (``panoptic_head`` a ``MaskFormerHead``).
        pisr (dict): :class:`PISREncoder` config; must set ``num_instances``
            (K <= num_queries); ``in_channels``, ``num_semantic`` and
            ``out_channels`` are set here (the head's ``out_channels``, the
            number of classes, the head's ``out_channels``); ``channels``
            (the affinity space) defaults to the head's ``out_channels``.
        gamma (float): Weight of the initial predictions' losses. Defaults
            to 1.0.
        instance_score_thr (float): Minimum thing score of a valid instance
            slot. Defaults to 0.05.
        final_input (str): ``'pan'`` (default) or ``'concat'``, see step 6.
        final_residual (bool): Final logits = initial + PISR's correction
            (zero at init), see step 7. Defaults to True.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 panoptic_head: OptConfigType = None,
                 panoptic_fusion_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 pisr: OptConfigType = None,
                 gamma: float = 1.0,
                 instance_score_thr: float = 0.05,
                 final_input: str = 'pan',
                 final_residual: bool = True) -> None:
        if pisr is None or 'num_instances' not in pisr:
            raise ValueError('MaskFormerPISR needs pisr with num_instances '
                             '(K)')
        if gamma < 0:
            raise ValueError(f'gamma must be non-negative, got {gamma}')
        if final_input not in FINAL_INPUTS:
            raise ValueError(f'final_input must be one of {FINAL_INPUTS}, '
                             f'got {final_input!r}')
        # mmdet's MaskFormer deep-copies these with ConfigDict methods
        super().__init__(
            backbone=backbone,
            neck=neck,
            panoptic_head=ConfigDict(panoptic_head),
            panoptic_fusion_head=ConfigDict(panoptic_fusion_head),
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        head = self.panoptic_head
        mask_channels = head.mask_embed[-1].out_features
        query_channels = head.cls_embed.in_features
        if not 1 <= pisr['num_instances'] <= head.num_queries:
            raise ValueError(
                f'pisr.num_instances must be in [1, {head.num_queries}] '
                f"(num_queries), got {pisr['num_instances']}")
        pisr = ConfigDict(pisr)
        pisr.setdefault('channels', mask_channels)
        for key, value in (('in_channels', mask_channels),
                           ('num_semantic', self.num_classes),
                           ('out_channels', mask_channels)):
            given = pisr.setdefault(key, value)
            if given != value:
                raise ValueError(
                    f'pisr.{key}={given} but the model needs {value} (the '
                    "head's out_channels, the number of classes): leave it "
                    'unset')
        self.pisr = MODELS.build(pisr)
        self.num_instances = pisr.num_instances
        self.gamma = gamma
        self.instance_score_thr = instance_score_thr
        self.final_input = final_input
        if final_input == 'concat':
            self.final_fuse = nn.Conv2d(2 * mask_channels, mask_channels, 1)
        else:
            self.final_fuse = None
        self.query_context = nn.Linear(mask_channels, query_channels)
        self.final_cls_embed = nn.Linear(query_channels,
                                         head.cls_embed.out_features)
        self.final_mask_embed = nn.Sequential(
            nn.Linear(query_channels, query_channels), nn.ReLU(inplace=True),
            nn.Linear(query_channels, query_channels), nn.ReLU(inplace=True),
            nn.Linear(query_channels, mask_channels))
        self.final_residual = final_residual
        self._zero_final_corrections()

    def _zero_final_corrections(self) -> None:
        """With ``final_residual``, zero the last layers of the final
        heads, so that the final logits start equal to the initial ones."""
        if not self.final_residual:
            return
        for layer in self.final_correction_layers:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def final_correction_layers(self) -> Tuple[nn.Linear, nn.Linear]:
        """The last layers of the final class and mask heads: the ones
        that start at zero with ``final_residual``."""
        return self.final_cls_embed, self.final_mask_embed[-1]

    def init_weights(self) -> None:
        """As mmengine's, then the zero corrections again (an
        ``init_cfg`` of the detector must not undo them)."""
        super().init_weights()
        self._zero_final_corrections()

    def decode_queries(
            self, x: Tuple[Tensor],
            batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """The pixel decoder and the transformer decoder of the head.

        The steps of mmdet's ``MaskFormerHead.forward`` up to the query
        embeddings, written out because that method returns only the logits
        and PISR needs the per-pixel and query embeddings themselves; every
        module is the head's own.

        Args:
            x (tuple[Tensor]): Backbone (neck) levels.
            batch_data_samples (list[DetDataSample]): With ``img_shape`` and
                ``batch_input_shape`` metainfo.

        Returns:
            tuple[Tensor, Tensor]: (B, C, H/4, W/4) mask features and
            (L, B, Q, C_q) query embeddings of every decoder layer.
        """
        head = self.panoptic_head
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        batch_size = x[0].shape[0]
        input_h, input_w = batch_img_metas[0]['batch_input_shape']
        padding_mask = x[-1].new_ones((batch_size, input_h, input_w))
        for index, meta in enumerate(batch_img_metas):
            img_h, img_w = meta['img_shape'][:2]
            padding_mask[index, :img_h, :img_w] = 0
        padding_mask = F.interpolate(
            padding_mask[:, None], size=x[-1].shape[-2:],
            mode='nearest').to(torch.bool)[:, 0]
        mask_features, memory = head.pixel_decoder(x, batch_img_metas)
        pos_embed = head.decoder_pe(padding_mask)
        memory = head.decoder_input_proj(memory).flatten(2).permute(0, 2, 1)
        pos_embed = pos_embed.flatten(2).permute(0, 2, 1)
        query_embed = head.query_embed.weight[None].repeat(batch_size, 1, 1)
        queries = head.transformer_decoder(
            query=torch.zeros_like(query_embed),
            key=memory,
            value=memory,
            query_pos=query_embed,
            key_pos=pos_embed,
            key_padding_mask=padding_mask.flatten(1))
        return mask_features, queries

    def forward_initial_and_final(
        self, x: Tuple[Tensor], batch_data_samples: SampleList
    ) -> Tuple[MaskFormerPredictions, MaskFormerPredictions]:
        """Initial (every decoder layer) and final predictions.

        Args:
            x (tuple[Tensor]): Backbone (neck) levels.
            batch_data_samples (list[DetDataSample]): Metas.

        Returns:
            tuple[MaskFormerPredictions, MaskFormerPredictions]: The initial
            ((L, B, Q, N + 1), (L, B, Q, H/4, W/4)) and final ((1, B, Q,
            N + 1), (1, B, Q, H/4, W/4)) logits.
        """
        head = self.panoptic_head
        feats, queries = self.decode_queries(x, batch_data_samples)
        initial = MaskFormerPredictions(
            head.cls_embed(queries),
            torch.einsum('lbqc,bchw->lbqhw', head.mask_embed(queries),
                         feats))
        cls_scores, mask_preds = initial.cls_scores[-1], initial.mask_preds[-1]
        sem_probs = semantic_probs_from_queries(cls_scores, mask_preds)
        thing_map = (sem_probs.argmax(dim=1, keepdim=True) <
                     self.num_things_classes).to(sem_probs.dtype)
        inst_heatmaps, inst_valid = thing_query_heatmaps(
            cls_scores, mask_preds, thing_map, self.num_things_classes,
            self.num_instances, self.instance_score_thr)
        pan_feats = self.pisr(feats, sem_probs, inst_heatmaps, inst_valid)
        if self.final_fuse is not None:
            pan_feats = self.final_fuse(torch.cat([feats, pan_feats], dim=1))
        context = region_encodings(mask_preds.sigmoid(), pan_feats)
        final_queries = queries[-1] + self.query_context(context)
        final_cls = self.final_cls_embed(final_queries)
        final_masks = torch.einsum('bqc,bchw->bqhw',
                                   self.final_mask_embed(final_queries),
                                   pan_feats)
        if self.final_residual:
            final_cls = final_cls + cls_scores
            final_masks = final_masks + mask_preds
        final = MaskFormerPredictions(final_cls[None], final_masks[None])
        return initial, final

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Set losses of the initial (times gamma, suffixed ``_init``) and
        final predictions.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``
                (thing masks) and ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: Named losses.
        """
        head = self.panoptic_head
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        x = self.extract_feat(batch_inputs)
        initial, final = self.forward_initial_and_final(
            x, batch_data_samples)
        gt_instances = head.preprocess_gt(
            [s.gt_instances for s in batch_data_samples],
            [s.get('gt_sem_seg', None) for s in batch_data_samples])
        losses = {
            f'{name}_init': value * self.gamma
            for name, value in head.loss_by_feat(
                *initial, gt_instances, batch_img_metas).items()
        }
        losses.update(
            head.loss_by_feat(*final, gt_instances, batch_img_metas))
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic prediction from the final class and mask logits.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): Metas.
            rescale (bool): Predict at ``ori_shape``. Defaults to True.

        Returns:
            list[DetDataSample]: With ``pred_panoptic_seg`` (``sem_seg`` (1,
            H, W): ``label + instance_id * 1000``, void ``num_classes``).
        """
        cls_scores, mask_preds = self._forward(batch_inputs,
                                               batch_data_samples)
        # as MaskFormerHead.predict: masks at the padded input size
        input_shape = batch_data_samples[0].metainfo['batch_input_shape']
        mask_preds = F.interpolate(
            mask_preds, size=tuple(input_shape), mode='bilinear',
            align_corners=False)
        results_list = self.panoptic_fusion_head.predict(
            cls_scores, mask_preds, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """Final logits, no post-processing.

        Returns:
            tuple[Tensor, Tensor]: (B, Q, N + 1) class logits and (B, Q,
            H/4, W/4) mask logits.
        """
        x = self.extract_feat(batch_inputs)
        _, final = self.forward_initial_and_final(x, batch_data_samples)
        return final.cls_scores[0], final.mask_preds[0]
