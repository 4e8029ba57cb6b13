# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Former names of :class:`HardPixelCrossEntropyLoss`, kept so that configs
written for mmpanoptic_plus 0.1.0 still build: the configs of users, and the
config stored in the RealTimePanoptic checkpoints shipped before issue 9
(``demo/checkpoints/rtp_r18_synthetic-7cdd2556.pth`` in git history,
``meta['cfg']``), which names ``BootstrappedCrossEntropyLoss``. Each alias only fixes the two counting
options and keeps its old argument names; it warns once per build. New
configs write ``type='HardPixelCrossEntropyLoss'``."""
import warnings
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from .hard_pixel_cross_entropy_loss import (HardPixelCrossEntropyLoss,
                                            hard_pixel_cross_entropy)


def _warn_renamed(old: str, new: str) -> None:
    warnings.warn(
        f'{old} is deprecated, write {new} (same numbers)',
        DeprecationWarning,
        stacklevel=3)


def bootstrapped_cross_entropy(logits: Tensor,
                               labels: Tensor,
                               top_ratio: float = 0.3,
                               ignore_index: int = 255) -> Tensor:
    """RealTimePanoptic's semantic loss under its former name:
    :func:`hard_pixel_cross_entropy` with ``count='valid',
    rounding='round'`` and no pixel weights.

    Args:
        logits (Tensor): (B, C, H, W) logits.
        labels (Tensor): (B, H, W) integer labels.
        top_ratio (float): Fraction of the valid pixels kept. Defaults to
            0.3.
        ignore_index (int): Ignored label. Defaults to 255.

    Returns:
        Tensor: Scalar loss.
    """
    return hard_pixel_cross_entropy(
        logits,
        labels,
        top_ratio,
        count='valid',
        rounding='round',
        ignore_index=ignore_index)


@MODELS.register_module()
class BootstrappedCrossEntropyLoss(HardPixelCrossEntropyLoss):
    """Deprecated name of ``HardPixelCrossEntropyLoss(count='valid',
    rounding='round')`` (RealTimePanoptic, Sec. 4).

    Args:
        top_ratio (float): Fraction of the valid pixels kept. Defaults to
            0.3.
        ignore_index (int): Ignored label. Defaults to 255.
        loss_weight (float): lambda. Defaults to 1.0.
        loss_name (str): Name in the loss dict. Defaults to 'loss_sem'.
    """

    def __init__(self,
                 top_ratio: float = 0.3,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sem') -> None:
        _warn_renamed(
            'BootstrappedCrossEntropyLoss',
            "HardPixelCrossEntropyLoss(count='valid', rounding='round')")
        super().__init__(
            top_ratio=top_ratio,
            count='valid',
            rounding='round',
            ignore_index=ignore_index,
            loss_weight=loss_weight,
            loss_name=loss_name)


@MODELS.register_module()
class DeepLabHardPixelCELoss(HardPixelCrossEntropyLoss):
    """Deprecated name of ``HardPixelCrossEntropyLoss(top_ratio=
    top_k_percent, count='all', rounding='floor')`` (Panoptic-DeepLab,
    Sec. 3.1).

    Args:
        top_k_percent (float): Fraction in (0, 1] of all pixels kept.
            Defaults to 0.2.
        ignore_index (int): Ignored label. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 top_k_percent: float = 0.2,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0) -> None:
        _warn_renamed(
            'DeepLabHardPixelCELoss',
            "HardPixelCrossEntropyLoss(top_ratio=top_k_percent, count='all', "
            "rounding='floor')")
        if not 0 < top_k_percent <= 1:
            raise ValueError(
                f'top_k_percent must be in (0, 1], got {top_k_percent}')
        super().__init__(
            top_ratio=top_k_percent,
            count='all',
            rounding='floor',
            ignore_index=ignore_index,
            loss_weight=loss_weight)

    @property
    def top_k_percent(self) -> float:
        """The former name of ``top_ratio``."""
        return self.top_ratio
