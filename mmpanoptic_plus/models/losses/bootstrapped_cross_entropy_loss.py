# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Bootstrapped (hardest-pixel) cross-entropy of RealTimePanoptic's semantic
branch (Hou et al., CVPR 2020, Sec. 4, semantic loss)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


def bootstrapped_cross_entropy(logits: Tensor,
                               labels: Tensor,
                               top_ratio: float = 0.3,
                               ignore_index: int = 255) -> Tensor:
    """Mean softmax cross-entropy over the worst ``top_ratio`` of the valid
    pixels of the whole batch.

    ``k = max(1, round(top_ratio * n_valid))`` pixels with the largest
    per-pixel loss are kept (rounding, not ``ceil``: ``0.3 * 10`` is
    ``3.0000000000000004`` in floating point). mmseg's ``OHEMPixelSampler``
    is deliberately not used: it thresholds on probabilities and returns
    per-pixel weights for a decode head, not a fixed fraction of a batch.

    Args:
        logits (Tensor): (B, C, H, W) logits.
        labels (Tensor): (B, H, W) int labels, ``ignore_index`` = ignore.
        top_ratio (float): Fraction of the valid pixels kept, in (0, 1].
        ignore_index (int): Label left out. Defaults to 255.

    Returns:
        Tensor: scalar; 0 (still attached to ``logits``) when no pixel is
        valid.
    """
    if not 0 < top_ratio <= 1:
        raise ValueError(f'top_ratio must be in (0, 1], got {top_ratio}')
    if logits.dim() != labels.dim() + 1 or \
            logits.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f'logits {tuple(logits.shape)} and labels '
                         f'{tuple(labels.shape)} do not match')
    labels = labels.long()
    valid = labels != ignore_index
    num_valid = int(valid.sum())
    if num_valid == 0:
        return logits.sum() * 0
    bad = valid & ((labels < 0) | (labels >= logits.size(1)))
    if bool(bad.any()):
        raise ValueError(f'semantic labels must be in [0, {logits.size(1)}) '
                         f'or {ignore_index}, got '
                         f'{labels[bad].unique().tolist()}')
    pixel_loss = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=ignore_index)[valid]
    num_kept = max(1, int(round(top_ratio * num_valid)))
    return pixel_loss.topk(num_kept, sorted=False).values.mean()


@MODELS.register_module()
class BootstrappedCrossEntropyLoss(nn.Module):
    """Semantic loss of RTP: cross-entropy bootstrapped to the worst 30 % of
    pixels, weighted by lambda (1 on Cityscapes, 0.4 on COCO in the paper).

    Args:
        top_ratio (float): Fraction of hardest pixels kept. Defaults to 0.3.
        ignore_index (int): Ignored label. Defaults to 255.
        loss_weight (float): lambda. Defaults to 1.0.
        loss_name (str): Name in the loss dict. Defaults to 'loss_sem'.
    """

    def __init__(self,
                 top_ratio: float = 0.3,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sem') -> None:
        super().__init__()
        if not 0 < top_ratio <= 1:
            raise ValueError(f'top_ratio must be in (0, 1], got {top_ratio}')
        self.top_ratio = top_ratio
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        """Args: logits (B, C, H, W); labels (B, H, W) or (B, 1, H, W).
        ``weight`` is not supported (the bootstrapping picks pixels)."""
        if weight is not None:
            raise ValueError('BootstrappedCrossEntropyLoss takes no weight')
        if labels.dim() == 4:
            labels = labels.squeeze(1)
        return self.loss_weight * bootstrapped_cross_entropy(
            logits, labels, self.top_ratio, self.ignore_index)

    @property
    def loss_name(self) -> str:
        return self._loss_name
