# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE-loss (Gao et al., "Learning Category- and Instance-Aware Pixel
Embedding for Fast Panoptic Segmentation", Sec. III-B/C, Eq. 1-12, and the
remote instance filtering of Sec. IV-B).

Shapes: ``B`` images, ``E`` embedding channels, ``N = H x W`` pixels, ``K``
queries, ``S`` segment slots per image.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.models.utils import (expand_boxes, pixels_in_boxes,
                                          segment_boxes, segment_means)
from mmpanoptic_plus.registry import MODELS

TOPK_OVER = ('queries', 'pixels')


def category_rows(labels: Tensor, num_things: int,
                  merge_things: bool) -> Tensor:
    """Row of the category memory of each class label (-1 stays -1).

    With ``merge_things`` (the paper's default, Table II "Merge") all thing
    classes share row 0 and stuff class ``c`` is row ``c - num_things + 1``;
    otherwise row = class.
    """
    if not merge_things:
        return labels
    rows = torch.where(labels < num_things, torch.zeros_like(labels),
                       labels - num_things + 1)
    return torch.where(labels < 0, labels, rows)


def triplet_embedding_terms(similarity: Tensor,
                            positive: Tensor,
                            query_valid: Optional[Tensor] = None,
                            margin: float = 0.15) -> Tensor:
    """Per (query, pixel) terms ``l_emb^{ik}`` of Eq. 5-8.

    ``d = 1 - S`` is the cosine distance (Eq. 2; ``S`` holds cosine
    similarities of unit vectors). ``d_pos^i`` is the distance to the
    pixel's own query (Eq. 5); ``d_neg^{ik}`` the distance to query ``k``,
    0 for the own query (Eq. 6); ``l' = max(d_pos - d_neg + margin, 0)``
    (Eq. 7) and ``l = -log(1 - l' / (2 + margin))`` (Eq. 8). Read literally,
    Eq. 6 makes the own-query term ``l'^{i c_i} = d_pos + margin``: a pull
    towards the own query that is never zero; it is kept (it competes in
    the top-K of Eq. 9 like the others).

    Args:
        similarity (Tensor): (B, K, N) cosine similarities.
        positive (Tensor): (B, N) int64 index of each pixel's query, -1 for
            ignored pixels (their terms are 0).
        query_valid (Tensor, optional): (B, K) bool; invalid queries (padding)
            give 0 terms. Defaults to all valid.
        margin (float): Eq. 7's margin. Defaults to 0.15 (the paper's).

    Returns:
        Tensor: (B, K, N) non-negative terms.
    """
    batch, num_queries, num_pixels = similarity.shape
    if positive.shape != (batch, num_pixels):
        raise ValueError(f'positive {tuple(positive.shape)} must be '
                         f'{(batch, num_pixels)}')
    distance = 1 - similarity
    own = positive.clamp(min=0)
    d_pos = distance.gather(1, own[:, None]).squeeze(1)  # (B, N)
    query_index = torch.arange(num_queries, device=similarity.device)
    is_own = query_index[None, :, None] == positive[:, None, :]
    d_neg = distance.masked_fill(is_own, 0)  # Eq. 6
    hinge = (d_pos[:, None] - d_neg + margin).clamp(min=0)  # Eq. 7
    # Eq. 8; the ratio reaches 1 only at antipodal embeddings: clamp it so
    # that the log stays finite
    ratio = (hinge / (2 + margin)).clamp(max=1 - 1e-6)
    terms = -torch.log1p(-ratio)
    keep = (positive >= 0)[:, None, :]
    if query_valid is not None:
        keep = keep & query_valid.to(torch.bool)[..., None]
    return terms * keep.to(terms.dtype)


def top_k_embedding_loss(terms: Tensor,
                         positive: Tensor,
                         top_k: int = 5,
                         topk_over: str = 'queries',
                         pixel_weight: Optional[Tensor] = None) -> Tensor:
    """Eq. 9: ``L = 1/N sum_i sum_k I[l^{ik} > tau_K] l^{ik}``.

    ``topk_over='queries'`` (default): tau_K is per pixel, its K-th largest
    term over the queries, i.e. each pixel contributes the sum of its
    ``top_k`` largest terms (K = 5 in the paper: "the pixels with top-K
    highest losses" read as each pixel's K hardest queries; with fewer
    queries all count), and N is the number of valid (non-ignored) pixels
    of the batch. ``topk_over='pixels'``: the other reading, tau_K over the
    pixels: each valid pixel's loss is the sum of all its terms, and per
    image only the ``top_k`` pixels with the largest (weighted) losses
    count, averaged over the kept pixels (``top_k`` is then a pixel count:
    the paper's 5 would be far too few).

    Args:
        terms (Tensor): (B, K, N) terms of :func:`triplet_embedding_terms`.
        positive (Tensor): (B, N) own-query index, -1 ignored.
        top_k (int): K. Defaults to 5.
        topk_over (str): ``'queries'`` or ``'pixels'``.
        pixel_weight (Tensor, optional): (B, N) weights (e.g. 5 on thing
            pixels in L_IAE, Sec. III-B). Defaults to 1.

    Returns:
        Tensor: scalar loss (0 without valid pixels, still in the graph).
    """
    if topk_over not in TOPK_OVER:
        raise ValueError(f'topk_over must be one of {TOPK_OVER}, got '
                         f'{topk_over!r}')
    if top_k < 1:
        raise ValueError(f'top_k must be >= 1, got {top_k}')
    valid = positive >= 0
    weight = valid.to(terms.dtype)
    if pixel_weight is not None:
        weight = weight * pixel_weight.to(terms.dtype)
    if topk_over == 'queries':
        k = min(top_k, terms.size(1))
        per_pixel = terms.topk(k, dim=1).values.sum(1) if k else \
            terms.sum(1)
        num_valid = valid.sum().clamp(min=1)
        return (per_pixel * weight).sum() / num_valid
    per_pixel = terms.sum(1) * weight
    ranked = per_pixel.masked_fill(~valid, -1.0)
    k = min(top_k, ranked.size(1))
    values = ranked.topk(k, dim=1).values  # (B, k)
    kept = values >= 0
    return (values * kept).sum() / kept.sum().clamp(min=1)


@MODELS.register_module()
class CIAEEmbeddingLoss(nn.Module):
    """``L_CIAE = L_CAE + alpha * L_IAE`` (Eq. 10-12) on the pixel
    embeddings of a batch.

    - Category queries (L_CAE, Eq. 10): the category memory ``M_t`` (all
      categories, present or not: Sec. III-C), rows as
      :func:`category_rows` (thing classes merged by default).
    - Segment queries (L_IAE, Eq. 11): every stuff class's memory row
      (``M_t`` replaces the stuff entries of ``M_s``, Sec. III-C) and the
      mean embedding of every thing instance of the image (Eq. 4: the mean
      of the *unnormalised* embeddings, then L2-normalised; gradients flow
      through it). Thing pixels weigh ``thing_weight`` (5).
    - Remote instance filtering (Sec. IV-B): the similarity of a pixel to an
      instance query is ``remote_similarity`` (0, the paper's) when the pixel
      lies outside the instance's ground-truth box expanded ``box_expand``
      times (1.5 by default; Table VI's 1.0 / 1.2 / 2.0 as values, None =
      no filtering, Table VI's "All"). Boxes are the tight boxes of the
      segments (:func:`segment_boxes`).
    - Eq. 5-9 per query set: :func:`triplet_embedding_terms`,
      :func:`top_k_embedding_loss`.

    Pixels of no segment (void, crowd, padding: segment id < 0) are left out
    of both losses and of the means.

    Args:
        num_things (int): Thing classes (labels ``0 .. T - 1``).
        num_stuff (int): Stuff classes (labels ``T .. T + S - 1``).
        merge_things (bool): One thing category in L_CAE. Defaults to True.
        margin (float): Eq. 7. Defaults to 0.15.
        top_k (int): Eq. 9's K. Defaults to 5.
        topk_over (str): ``'queries'`` (default) or ``'pixels'``, see
            :func:`top_k_embedding_loss`.
        alpha (float): Weight of L_IAE. Defaults to 2.
        thing_weight (float): Weight of thing pixels in L_IAE. Defaults to 5.
        box_expand (float, optional): Expansion of the filtering boxes;
            None disables the filtering. Defaults to 1.5.
        remote_similarity (float): Similarity outside the box. Defaults
            to 0.
        loss_weight (float): Multiplies both losses. Defaults to 1.
    """

    def __init__(self,
                 num_things: int,
                 num_stuff: int,
                 merge_things: bool = True,
                 margin: float = 0.15,
                 top_k: int = 5,
                 topk_over: str = 'queries',
                 alpha: float = 2.0,
                 thing_weight: float = 5.0,
                 box_expand: Optional[float] = 1.5,
                 remote_similarity: float = 0.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if topk_over not in TOPK_OVER:
            raise ValueError(f'topk_over must be one of {TOPK_OVER}, got '
                             f'{topk_over!r}')
        if box_expand is not None and box_expand <= 0:
            raise ValueError(f'box_expand must be positive or None, got '
                             f'{box_expand}')
        self.num_things = num_things
        self.num_stuff = num_stuff
        self.merge_things = merge_things
        self.margin = margin
        self.top_k = top_k
        self.topk_over = topk_over
        self.alpha = alpha
        self.thing_weight = thing_weight
        self.box_expand = box_expand
        self.remote_similarity = remote_similarity
        self.loss_weight = loss_weight

    @property
    def num_categories(self) -> int:
        """Rows of the category memory."""
        if self.merge_things:
            return 1 + self.num_stuff
        return self.num_things + self.num_stuff

    def pixel_categories(self, segment_ids: Tensor,
                         segment_labels: Tensor) -> Tensor:
        """(B, H, W) memory row of each pixel's category, -1 on pixels of no
        segment.

        Args:
            segment_ids (Tensor): (B, H, W) segment of each pixel, < 0 none.
            segment_labels (Tensor): (B, S) class of each segment slot, -1
                for padding.
        """
        num_slots = segment_labels.size(1)
        if num_slots == 0:
            return torch.full_like(segment_ids, -1)
        rows = category_rows(segment_labels, self.num_things,
                             self.merge_things)
        valid = (segment_ids >= 0) & (segment_ids < num_slots)
        picked = rows.gather(
            1,
            segment_ids.clamp(0, num_slots - 1).flatten(1)).view_as(
                segment_ids)
        return torch.where(valid, picked, torch.full_like(picked, -1))

    def forward(self, embeds: Tensor, segment_ids: Tensor,
                segment_labels: Tensor, segment_is_thing: Tensor,
                memory: Tensor) -> Dict[str, Tensor]:
        """The two losses.

        Args:
            embeds (Tensor): (B, E, H, W) pixel embeddings *before* L2
                normalisation, at the resolution of ``segment_ids``.
            segment_ids (Tensor): (B, H, W) int64 segment of each pixel (the
                ``gt_segment_ids`` of ``GeneratePanopticSegmentIds``), < 0
                for none.
            segment_labels (Tensor): (B, S) int64 class of each segment
                slot, -1 for padding.
            segment_is_thing (Tensor): (B, S) bool thing instance slots.
            memory (Tensor): (C_mem, E) category memory ``M_t``
                (``num_categories`` unit rows; used as constants).

        Returns:
            dict[str, Tensor]: ``loss_cae`` (Eq. 10) and ``loss_iae`` (alpha
            x Eq. 11), both times ``loss_weight``; their sum is Eq. 12.
        """
        batch, _, height, width = embeds.shape
        if segment_ids.shape != (batch, height, width):
            raise ValueError(f'segment_ids {tuple(segment_ids.shape)} must '
                             f'be {(batch, height, width)}')
        if memory.size(0) != self.num_categories:
            raise ValueError(f'memory has {memory.size(0)} rows, expected '
                             f'{self.num_categories}')
        segment_ids = segment_ids.long()
        num_slots = segment_labels.size(1)
        pixels = F.normalize(embeds, dim=1).flatten(2)  # (B, E, N)
        memory = memory.detach().to(pixels.dtype)

        # L_CAE: pixels against every category's memory embedding
        categories = self.pixel_categories(segment_ids,
                                           segment_labels).flatten(1)
        cae_sim = torch.einsum('ce,ben->bcn', memory, pixels)
        loss_cae = top_k_embedding_loss(
            triplet_embedding_terms(cae_sim, categories, margin=self.margin),
            categories, self.top_k, self.topk_over)

        # L_IAE: queries [stuff memory rows | one slot per segment]; only
        # the thing slots are queries, stuff segments use the memory
        stuff_classes = torch.arange(
            self.num_things,
            self.num_things + self.num_stuff,
            device=embeds.device)
        stuff_memory = memory[category_rows(stuff_classes, self.num_things,
                                            self.merge_things)]
        instance_means = segment_means(
            segment_ids.clamp(min=-1).masked_fill(segment_ids >= num_slots,
                                                  -1),
            embeds,
            num_slots,
            ignore_index=-1,
            l2_normalize=True)  # (B, S, E), Eq. 4
        queries = torch.cat(
            (stuff_memory[None].expand(batch, -1, -1), instance_means), 1)
        iae_sim = torch.bmm(queries, pixels)  # (B, C_st + S, N)
        is_thing = segment_is_thing.to(torch.bool) & (segment_labels >= 0)
        if self.box_expand is not None and num_slots:
            boxes = expand_boxes(
                segment_boxes(segment_ids, num_slots), self.box_expand)
            inside = pixels_in_boxes(boxes, height, width).flatten(2)
            remote = torch.cat(
                (torch.zeros_like(inside[:, :self.num_stuff]),
                 ~inside & is_thing[..., None]), 1)
            iae_sim = iae_sim.masked_fill(remote, self.remote_similarity)
        query_valid = torch.cat(
            (is_thing.new_ones((batch, self.num_stuff)), is_thing), 1)
        # own query: C_st + slot for thing pixels, the stuff class's memory
        # row for stuff pixels
        flat_ids = segment_ids.flatten(1)
        in_slot = (flat_ids >= 0) & (flat_ids < num_slots)
        slot = flat_ids.clamp(0, max(num_slots - 1, 0))
        if num_slots:
            pixel_is_thing = is_thing.gather(1, slot) & in_slot
            pixel_label = segment_labels.gather(1, slot)
        else:
            pixel_is_thing = torch.zeros_like(in_slot)
            pixel_label = torch.full_like(flat_ids, -1)
        stuff_pixel = in_slot & ~pixel_is_thing & (
            pixel_label >= self.num_things)
        positive = torch.where(pixel_is_thing, self.num_stuff + slot,
                               pixel_label - self.num_things)
        positive = torch.where(pixel_is_thing | stuff_pixel, positive,
                               torch.full_like(positive, -1))
        weight = torch.where(pixel_is_thing,
                             pixels.new_full((), self.thing_weight),
                             pixels.new_ones(()))
        loss_iae = top_k_embedding_loss(
            triplet_embedding_terms(iae_sim, positive, query_valid,
                                    self.margin), positive, self.top_k,
            self.topk_over, weight)
        return dict(
            loss_cae=self.loss_weight * loss_cae,
            loss_iae=self.loss_weight * self.alpha * loss_iae)
