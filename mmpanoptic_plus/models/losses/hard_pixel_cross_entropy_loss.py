# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Hard-pixel (bootstrapped) softmax cross-entropy: the mean of the largest
per-pixel losses of a batch.

Two semantic losses of the package are this one loss with different
counting:

- RealTimePanoptic (Hou et al., CVPR 2020, Sec. 4, semantic loss): the worst
  30 % of the *valid* pixels, ``k = round(0.3 * n_valid)``, no pixel weights
  (``count='valid', rounding='round'``).
- Panoptic-DeepLab (Cheng et al., CVPR 2020, Sec. 3.1, from DeeperLab; the
  reference is detectron2's ``DeepLabCE``): pixel weights applied *first*
  (small instances weighted 3), then the worst ``int(0.2 * N)`` of *all* N
  pixels of the batch, ignored ones included with loss 0
  (``count='all', rounding='floor'``); 1.0 on COCO (plain weighted mean).

mmseg's ``OHEMPixelSampler`` is deliberately not used: it keeps pixels by a
probability threshold and a ``min_kept`` count and returns weights for a
decode head, not a fixed fraction of a batch's losses.
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmpanoptic_plus.registry import MODELS

#: What ``top_ratio`` is a fraction of: the non-ignored pixels (RTP) or all
#: the pixels of the batch (Panoptic-DeepLab).
HARD_PIXEL_COUNTS = ('valid', 'all')
#: How the number of kept pixels is made an integer: nearest (RTP: ``0.3 *
#: 10`` is ``3.0000000000000004`` in floating point, ``ceil`` would keep 4)
#: or ``int`` (Panoptic-DeepLab's reference).
HARD_PIXEL_ROUNDINGS = ('round', 'floor')


def _check_options(top_ratio: float, count: str, rounding: str) -> None:
    if not 0 < top_ratio <= 1:
        raise ValueError(f'top_ratio must be in (0, 1], got {top_ratio}')
    if count not in HARD_PIXEL_COUNTS:
        raise ValueError(
            f'count must be one of {HARD_PIXEL_COUNTS}, got {count!r}')
    if rounding not in HARD_PIXEL_ROUNDINGS:
        raise ValueError(f'rounding must be one of {HARD_PIXEL_ROUNDINGS}, '
                         f'got {rounding!r}')


def hard_pixel_cross_entropy(logits: Tensor,
                             labels: Tensor,
                             top_ratio: float,
                             count: str = 'valid',
                             rounding: str = 'round',
                             weights: Optional[Tensor] = None,
                             ignore_index: int = 255) -> Tensor:
    """Mean softmax cross-entropy of the hardest pixels of the whole batch.

    1. Per-pixel cross-entropy, 0 on ``ignore_index`` pixels, times
       ``weights`` when given (before the selection).
    2. Candidates: the valid pixels (``count='valid'``, ``n = n_valid``) or
       all pixels of the batch (``count='all'``, ``n = B * H * W``).
    3. The ``k = max(1, r(top_ratio * n))`` largest candidate losses are
       averaged, ``r`` being ``round`` or ``int`` (``rounding``). With
       ``top_ratio == 1`` nothing is selected: the mean of all candidates.

    Args:
        logits (Tensor): (B, C, H, W) logits.
        labels (Tensor): (B, H, W) integer labels in ``[0, C)`` or
            ``ignore_index``.
        top_ratio (float): Fraction of the candidates kept, in (0, 1].
        count (str): ``'valid'`` or ``'all'``, see above. Defaults to
            ``'valid'``.
        rounding (str): ``'round'`` or ``'floor'``. Defaults to ``'round'``.
        weights (Tensor, optional): (B, H, W) per-pixel weights.
        ignore_index (int): Label left out. Defaults to 255.

    Returns:
        Tensor: Scalar. With ``count='valid'`` and no valid pixel, 0 (still
        attached to ``logits``); with ``count='all'`` the ignored pixels'
        zeros are averaged, also 0.

    Raises:
        ValueError: On bad options, shapes, or a valid label outside
            ``[0, C)``.
    """
    _check_options(top_ratio, count, rounding)
    if logits.dim() != labels.dim() + 1 or \
            labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f'logits {tuple(logits.shape)} and labels '
                         f'{tuple(labels.shape)} do not match')
    if weights is not None and weights.shape != labels.shape:
        raise ValueError(f'weights {tuple(weights.shape)} and labels '
                         f'{tuple(labels.shape)} do not match')
    labels = labels.long()
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= logits.size(1)))
    if bool(bad.any()):
        raise ValueError(f'semantic labels must be in [0, {logits.size(1)}) '
                         f'or {ignore_index}, got '
                         f'{labels[bad].unique().tolist()}')
    if count == 'valid' and not bool(valid.any()):
        return logits.sum() * 0
    pixel_losses = F.cross_entropy(
        logits, labels, reduction='none', ignore_index=ignore_index)
    if weights is not None:
        pixel_losses = pixel_losses * weights.to(pixel_losses.dtype)
    if count == 'valid':
        pixel_losses = pixel_losses[valid]
    else:
        pixel_losses = pixel_losses.flatten()
    if top_ratio < 1:
        kept = top_ratio * pixel_losses.numel()
        kept = int(round(kept)) if rounding == 'round' else int(kept)
        # at least one pixel: a mean over none would be NaN
        pixel_losses = pixel_losses.topk(max(1, kept), sorted=False).values
    return pixel_losses.mean()


@MODELS.register_module()
class HardPixelCrossEntropyLoss(nn.Module):
    """Hard-pixel cross-entropy as a loss module
    (:func:`hard_pixel_cross_entropy`), for RealTimePanoptic (Sec. 4:
    ``top_ratio=0.3, count='valid', rounding='round'``, lambda 1 on
    Cityscapes, 0.4 on COCO) and Panoptic-DeepLab (Sec. 3.1:
    ``top_ratio=0.2, count='all', rounding='floor'``, pixel weights; 1.0 on
    COCO).

    Args:
        top_ratio (float): Fraction of the candidate pixels kept, in (0, 1].
            Defaults to 0.3.
        count (str): ``'valid'`` (fraction of the non-ignored pixels) or
            ``'all'`` (of all pixels of the batch). Defaults to ``'valid'``.
        rounding (str): ``'round'`` or ``'floor'`` (``int``) for the number
            of kept pixels. Defaults to ``'round'``.
        ignore_index (int): Ignored label. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the loss dict of the heads that
            ask for it. Defaults to ``'loss_sem'``.
    """

    def __init__(self,
                 top_ratio: float = 0.3,
                 count: str = 'valid',
                 rounding: str = 'round',
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sem') -> None:
        super().__init__()
        _check_options(top_ratio, count, rounding)
        self.top_ratio = top_ratio
        self.count = count
        self.rounding = rounding
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weights: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            logits (Tensor): (B, C, H, W) logits.
            labels (Tensor): (B, H, W) or (B, 1, H, W) integer labels.
            weights (Tensor, optional): (B, H, W) or (B, 1, H, W) per-pixel
                weights, applied before the selection.

        Returns:
            Tensor: Scalar, times ``loss_weight``.
        """
        if labels.dim() == 4 and labels.size(1) == 1:
            labels = labels.squeeze(1)
        if weights is not None and weights.dim() == 4 and \
                weights.size(1) == 1:
            weights = weights.squeeze(1)
        return self.loss_weight * hard_pixel_cross_entropy(
            logits, labels, self.top_ratio, self.count, self.rounding,
            weights, self.ignore_index)

    @property
    def loss_name(self) -> str:
        """Key of the loss in a loss dict."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'top_ratio={self.top_ratio}, count={self.count!r}, '
                f'rounding={self.rounding!r}, '
                f'ignore_index={self.ignore_index}, '
                f'loss_weight={self.loss_weight}')
