# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The SegSort loss with panoptic (instance) neighbours, PSS Eq. 1-2."""
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


def segsort_loss(pixel_embeds: Tensor,
                 pixel_segments: Tensor,
                 prototypes: Tensor,
                 segment_instances: Tensor,
                 concentration: float = 8.0) -> Tuple[Tensor, Tensor]:
    """Per-pixel SegSort loss (PSS Sec. 3.1-3.2, Eq. 1-2), averaged.

    With ``c`` the segment of pixel ``i`` and ``C_i^+`` the *other* segments
    of the same instance (PSS Sec. 3.2; a stuff class is one instance),
    over all segments ``l`` of the batch::

        p(z_i = l | v_i) = exp(k mu_l^T v_i) / sum_{l' != c} exp(k mu_l'^T v_i)
                           for l != c,     p(z_i = c | v_i) = 0      (Eq. 1)
        L_i = -log sum_{s in C_i^+} p(z_i = s | v_i)                 (Eq. 2)

    computed as ``logsumexp`` over the allowed segments minus
    ``logsumexp`` over the positives (one (N, L) matrix, no loop). Pixels
    with no positive segment (an instance that is a single segment of the
    batch) have an undefined ``-log 0`` and are left out of the mean;
    ``num_pixels`` counts the pixels that entered it. With none the loss is
    a zero that keeps the graph.

    Args:
        pixel_embeds (Tensor): (N, C) unit-length pixel embeddings ``v_i``.
        pixel_segments (Tensor): (N, ) int64 index in ``[0, L)`` of each
            pixel's own segment ``c``.
        prototypes (Tensor): (L, C) unit-length segment prototypes ``mu_l``
            of all images of the batch.
        segment_instances (Tensor): (L, ) int64 instance key of every
            segment; equal keys are the same instance (a thing of one image,
            or a stuff class over the whole batch).
        concentration (float): vMF concentration ``kappa``. Defaults to 8
            (PSS Appendix A.7).

    Returns:
        tuple[Tensor, Tensor]: the mean loss (scalar) and ``num_pixels``
        (int64 scalar).
    """
    if pixel_embeds.dim() != 2 or prototypes.dim() != 2 or \
            pixel_embeds.size(1) != prototypes.size(1):
        raise ValueError(
            f'pixel_embeds {tuple(pixel_embeds.shape)} and prototypes '
            f'{tuple(prototypes.shape)} must be (N, C) and (L, C)')
    if pixel_segments.shape != pixel_embeds.shape[:1] or \
            segment_instances.shape != prototypes.shape[:1]:
        raise ValueError('pixel_segments must be (N, ) and '
                         'segment_instances (L, )')
    num_segments = prototypes.size(0)
    logits = concentration * pixel_embeds @ prototypes.t()  # (N, L)
    own = pixel_segments[:, None] == torch.arange(
        num_segments, device=logits.device)[None]
    positive = (segment_instances[pixel_segments][:, None]
                == segment_instances[None]) & ~own
    valid = positive.any(dim=1)
    num_pixels = valid.sum()
    if not bool(valid.any()):
        return logits.sum() * 0, num_pixels
    logits, own, positive = logits[valid], own[valid], positive[valid]
    neg_inf = torch.finfo(logits.dtype).min
    log_denominator = logits.masked_fill(own, neg_inf).logsumexp(dim=1)
    log_numerator = logits.masked_fill(~positive, neg_inf).logsumexp(dim=1)
    return (log_denominator - log_numerator).mean(), num_pixels


@MODELS.register_module()
class PSSSegSortLoss(nn.Module):
    """SegSort loss of PSS (Eq. 1-2) as a weighted loss module.

    Args:
        concentration (float): vMF concentration ``kappa``. Defaults to 8.
        loss_weight (float): Weight of the loss. Defaults to 1.0 (PSS
            Appendix A.7).
    """

    def __init__(self,
                 concentration: float = 8.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.concentration = concentration
        self.loss_weight = loss_weight

    def forward(self, pixel_embeds: Tensor, pixel_segments: Tensor,
                prototypes: Tensor, segment_instances: Tensor) -> Tensor:
        """Weighted :func:`segsort_loss` (arguments as there)."""
        loss, _ = segsort_loss(pixel_embeds, pixel_segments, prototypes,
                               segment_instances, self.concentration)
        return self.loss_weight * loss
