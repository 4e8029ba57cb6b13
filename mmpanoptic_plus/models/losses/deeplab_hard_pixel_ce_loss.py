# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class DeepLabHardPixelCELoss(nn.Module):
    """Cross-entropy with hard pixel mining (bootstrapped CE), the semantic
    loss of Panoptic-DeepLab (Cheng et al., CVPR 2020, Sec. 3.1, from
    DeeperLab): the mean of the ``top_k_percent`` largest per-pixel losses.

    Order of operations, as the reference (detectron2 ``DeepLabCE``): the
    per-pixel cross-entropy (0 on ``ignore_index`` pixels) is multiplied by
    the pixel weights FIRST (small instances weighted 3), then the
    ``int(top_k_percent * N)`` largest weighted losses are averaged, ``N``
    counting ALL pixels of the batch (ignored ones included, and the batch
    is pooled, not per image). ``top_k_percent=1`` is the plain weighted
    mean over all N pixels (COCO config).

    Written here rather than reusing mmseg's ``OHEMPixelSampler``: that
    sampler keeps pixels by a probability threshold / ``min_kept`` count,
    not by a fixed fraction of the weighted losses. RealTimePanoptic's
    ``BootstrappedCrossEntropyLoss`` differs too: it counts only the valid
    (non-ignored) pixels and has no pixel weights.

    Args:
        top_k_percent (float): Fraction in (0, 1] of pixels kept.
            Defaults to 0.2.
        ignore_index (int): Label ignored by the loss. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 top_k_percent: float = 0.2,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0 < top_k_percent <= 1:
            raise ValueError(
                f'top_k_percent must be in (0, 1], got {top_k_percent}')
        self.top_k_percent = top_k_percent
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weights: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): (B, C, H, W) class logits.
            labels (Tensor): (B, H, W) int64 labels, ``ignore_index`` void.
            weights (Tensor, optional): (B, H, W) per-pixel weights.

        Returns:
            Tensor: Scalar loss.
        """
        if labels.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f'labels of shape {tuple(labels.shape)} do not match logits '
                f'of shape {tuple(logits.shape)}')
        pixel_losses = F.cross_entropy(
            logits,
            labels.long(),
            ignore_index=self.ignore_index,
            reduction='none')
        if weights is not None:
            pixel_losses = pixel_losses * weights.to(pixel_losses.dtype)
        pixel_losses = pixel_losses.flatten()
        if self.top_k_percent < 1:
            # at least one pixel: a mean over none would be NaN
            num_kept = max(int(self.top_k_percent * pixel_losses.numel()), 1)
            pixel_losses = pixel_losses.topk(num_kept, sorted=False)[0]
        return self.loss_weight * pixel_losses.mean()

    def extra_repr(self) -> str:
        return (f'top_k_percent={self.top_k_percent}, '
                f'ignore_index={self.ignore_index}, '
                f'loss_weight={self.loss_weight}')
