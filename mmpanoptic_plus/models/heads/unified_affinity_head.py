# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dense instance affinity head of Unified (Li et al., "Unifying Training
and Inference for Panoptic Segmentation", CVPR 2020, Sec. 3.4.2, Eq. 3-4,
Fig. 5)."""
from typing import Dict, Sequence, Tuple

import torch
from mmdet.utils import ConfigType
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpanoptic_plus.registry import MODELS

#: Activations after phi0 / phi1's 1x1 convs. The paper says "a 1x1
#: convolution followed by an activation" and draws on Shen et al.'s
#: efficient attention [21]; its normalisations are the defaults:
#: 'softmax_channels' (phi0: each pixel's C values sum to 1) and
#: 'softmax_pixels' (phi1: each channel sums to 1 over the image), which make
#: P independent of the image size (the affinity term is a weighted mean of
#: Psi, not a sum over pixels that grows from training crops to test
#: images). 'relu' and 'sigmoid' are the plain alternatives.
AFFINITY_ACTIVATIONS = ('softmax_channels', 'softmax_pixels', 'relu',
                        'sigmoid')


def _activate(feats: Tensor, activation: str) -> Tensor:
    """Apply an :data:`AFFINITY_ACTIVATIONS` entry to (C, N) features."""
    if activation == 'softmax_channels':
        return feats.softmax(dim=0)
    if activation == 'softmax_pixels':
        return feats.softmax(dim=1)
    if activation == 'relu':
        return feats.relu()
    return feats.sigmoid()


@MODELS.register_module()
class UnifiedAffinityHead(BaseModule):
    """Affinity feature extractor ``Q`` and the affinity applier of Eq. 4:

        ``P = Psi + phi0(Q) (phi1(Q)^T Psi)``

    ``Q`` (C = 128 channels at stride 4) comes from an extractor with the
    semantic submodule's architecture (Sec. 3.4.2: a
    :class:`UPSNetSemanticHead` with ``out_channels=C``). The ``HW x HW``
    affinity ``A = phi0(Q) phi1(Q)^T`` is never formed (Eq. 3): ``phi1(Q)^T
    Psi`` is a (C, K) matrix, so time and memory grow linearly with the
    pixel count. ``Q`` has no loss of its own; the panoptic matching loss
    trains it through ``P``.

    Args:
        extractor (dict): Config of the affinity feature extractor.
        channels (int): C, the extractor's output channels (128).
        phi0_activation (str): Activation after phi0's 1x1 conv.
        phi1_activation (str): Activation after phi1's 1x1 conv.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self,
                 extractor: ConfigType,
                 channels: int = 128,
                 phi0_activation: str = 'softmax_channels',
                 phi1_activation: str = 'softmax_pixels',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, act in (('phi0_activation', phi0_activation),
                          ('phi1_activation', phi1_activation)):
            if act not in AFFINITY_ACTIVATIONS:
                raise ValueError(f'{name} must be one of '
                                 f'{AFFINITY_ACTIVATIONS}, got {act!r}')
        extractor = dict(extractor)
        extractor.setdefault('out_channels', channels)
        if extractor['out_channels'] != channels:
            raise ValueError(f'extractor out_channels '
                             f'{extractor["out_channels"]} != {channels}')
        self.extractor = MODELS.build(extractor)
        self.channels = channels
        self.phi0 = nn.Conv2d(channels, channels, 1)
        self.phi1 = nn.Conv2d(channels, channels, 1)
        self.phi0_activation = phi0_activation
        self.phi1_activation = phi1_activation

    def forward(self, x: Sequence[Tensor]) -> Dict[str, Tensor]:
        """``Q`` and its two embeddings.

        Args:
            x (Sequence[Tensor]): FPN levels.

        Returns:
            dict[str, Tensor]: ``q`` (B, C, h, w), ``phi0`` and ``phi1``
            (B, C, h, w), the 1x1 convs' outputs before their activation
            (the activation of ``softmax_pixels`` depends on the image's
            valid region, applied in :meth:`apply_affinity`).
        """
        q = self.extractor(x)['seg_preds']
        return dict(q=q, phi0=self.phi0(q), phi1=self.phi1(q))

    def embeddings(self, phi0: Tensor, phi1: Tensor) -> Tuple[Tensor, Tensor]:
        """Activated (C, N) embeddings of one image's N = h w cells.

        Args:
            phi0 (Tensor): (C, h, w) phi0's conv output.
            phi1 (Tensor): (C, h, w) phi1's conv output.

        Returns:
            tuple[Tensor, Tensor]: phi0(Q)^T and phi1(Q)^T, each (C, N).
        """
        return (_activate(phi0.flatten(1), self.phi0_activation),
                _activate(phi1.flatten(1), self.phi1_activation))

    def affinity_term(self, potential: Tensor, phi0: Tensor,
                      phi1: Tensor) -> Tensor:
        """``phi0(Q) (phi1(Q)^T Psi)`` of Eq. 4 for one image, in the order
        of Eq. 3's right side (the HW x HW affinity is never formed).

        Args:
            potential (Tensor): (K, h, w) ``Psi`` (K = D + N_st).
            phi0 (Tensor): (C, h, w) phi0's conv output on the same cells
                (the image's valid region: padding excluded).
            phi1 (Tensor): (C, h, w) phi1's conv output.

        Returns:
            Tensor: (K, h, w), what Eq. 4 adds to ``Psi``.
        """
        num, height, width = potential.shape
        emb0, emb1 = self.embeddings(phi0, phi1)  # (C, N) each
        psi = potential.flatten(1).to(emb1)  # (K, N)
        context = emb1 @ psi.t()  # phi1(Q)^T Psi: (C, K)
        return (emb0.t() @ context).t().view(num, height, width)

    def apply_affinity(self, potential: Tensor, phi0: Tensor,
                       phi1: Tensor) -> Tensor:
        """Eq. 4 for one image: ``P = Psi + phi0(Q) (phi1(Q)^T Psi)``.

        Args:
            potential (Tensor): (K, h, w) ``Psi`` (K = D + N_st).
            phi0 (Tensor): (C, h, w) phi0's conv output on the same cells
                (the image's valid region: padding excluded).
            phi1 (Tensor): (C, h, w) phi1's conv output.

        Returns:
            Tensor: (K, h, w) ``P``.
        """
        term = self.affinity_term(potential, phi0, phi1)
        return potential.to(term) + term
