# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class DeepLabWeightedPixelLoss(nn.Module):
    """Per-pixel weighted MSE or L1, normalized by the weight sum: the
    center (MSE, weight 200) and offset (L1, weight 0.01) losses of
    Panoptic-DeepLab (Cheng et al., CVPR 2020, Sec. 3.1).

    ``loss = loss_weight * sum_{b,c,y,x} w[b,y,x] * d(pred, target) /
    sum_{b,y,x} w[b,y,x]``, as the reference (detectron2): the channel sum
    is not averaged (the 2 offset channels add up) and the denominator is
    the weight sum over pixels. When all weights are 0 (no things in the
    batch) the loss is ``0 * sum``: zero, no NaN, and still attached to the
    graph so that every parameter receives a (zero) gradient.

    Args:
        criterion (str): ``'mse'`` or ``'l1'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, criterion: str = 'mse',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if criterion not in ('mse', 'l1'):
            raise ValueError(
                f"criterion must be 'mse' or 'l1', got {criterion!r}")
        self.criterion = criterion
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): (B, C, H, W) prediction.
            target (Tensor): (B, C, H, W) target.
            weights (Tensor): (B, 1, H, W) or (B, H, W) pixel weights,
                shared by the C channels.

        Returns:
            Tensor: Scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} differ in shape')
        if weights.dim() == 3:
            weights = weights[:, None]
        if weights.shape != (pred.shape[0], 1) + pred.shape[2:]:
            raise ValueError(
                f'weights of shape {tuple(weights.shape)} do not match '
                f'pred of shape {tuple(pred.shape)}')
        weights = weights.to(pred.dtype)
        if self.criterion == 'mse':
            pixel_losses = F.mse_loss(pred, target, reduction='none')
        else:
            pixel_losses = F.l1_loss(pred, target, reduction='none')
        weighted_sum = (pixel_losses * weights).sum()
        weight_sum = weights.sum()
        if weight_sum > 0:
            loss = weighted_sum / weight_sum
        else:
            loss = weighted_sum * 0
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f'criterion={self.criterion}, loss_weight={self.loss_weight}'
