# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dynamic potential head of Unified (Li et al., "Unifying Training and
Inference for Panoptic Segmentation", CVPR 2020, Sec. 3.4.1, Eq. 1-2,
Fig. 4)."""
from typing import Optional

import torch
from torch import Tensor, nn

from mmpanoptic_plus.models.utils import pixels_in_boxes
from mmpanoptic_plus.registry import MODELS

#: Variants of Fig. 4: A (UPSNet's: no score), B (Eq. 2 with a product),
#: C (Eq. 2 with a sum). Without masks B and C are both Eq. 1.
POTENTIAL_VARIANTS = ('A', 'B', 'C')


@MODELS.register_module()
class UnifiedDynamicPotentialHead(nn.Module):
    """Parameter-free head that turns the semantic probabilities ``V`` and
    the ``D`` detections into the dynamic potential ``Psi`` with ``D +
    N_st`` channels (Sec. 3.4.1): one per detection, then one per stuff
    class (the whole-image "stuff box" of Sec. 3.3, score 1).

    Channel ``k < D`` (detection box ``B_k``, score ``s_k``, class ``c_k``,
    pasted mask ``M(k)`` when given), at cells whose centre lies in ``B_k``
    (0 elsewhere):

    - variant B / C without masks: ``s_k V_i(c_k)`` (Eq. 1);
    - variant B with masks: ``s_k V_i(c_k) M_i(k)`` (Eq. 2, product);
    - variant C with masks: ``s_k (V_i(c_k) + M_i(k))`` (Eq. 2, sum);
    - variant A: ``V_i(c_k)`` (+ ``M_i(k)`` with masks): UPSNet's, no score.

    Channel ``D + j`` (stuff class ``j``): ``V_i(N_th + j)`` at every cell
    (Eq. 1 with a whole-image box and ``s = 1``; no mask).

    Args:
        num_things_classes (int): Thing classes (labels ``0 .. N_th - 1``).
        num_stuff_classes (int): Stuff classes (labels after them).
        variant (str): 'A', 'B' or 'C' (Fig. 4). Defaults to 'B'.
        stride (int): Input pixels per cell of ``V`` (Sec. 3.2: d = 4).
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 variant: str = 'B',
                 stride: int = 4) -> None:
        super().__init__()
        if variant not in POTENTIAL_VARIANTS:
            raise ValueError(f'variant must be one of {POTENTIAL_VARIANTS}, '
                             f'got {variant!r}')
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.variant = variant
        self.stride = stride

    def forward(self,
                sem_probs: Tensor,
                boxes: Tensor,
                scores: Tensor,
                labels: Tensor,
                masks: Optional[Tensor] = None,
                stride: Optional[float] = None) -> Tensor:
        """``Psi`` of one image.

        Args:
            sem_probs (Tensor): (N_th + N_st, h, w) ``V``, probabilities
                over the classes (things first) at stride ``stride``.
            boxes (Tensor): (D, 4) detection boxes x1y1x2y2 in input pixels.
            scores (Tensor): (D, ) scores ``s`` (gradient kept).
            labels (Tensor): (D, ) thing classes ``c``.
            masks (Tensor, optional): (D, h, w) mask probabilities pasted on
                the same grid (gradient kept); None for a mask-free detector.
            stride (float, optional): Input pixels per cell of this call's
                grid; None: the head's ``stride``. 1 evaluates Eq. 1-2 at
                image resolution (``V`` upsampled, ``M`` pasted at image
                resolution, as Eq. 2 defines it) at inference.

        Returns:
            Tensor: (D + N_st, h, w) ``Psi``.
        """
        num_classes = self.num_things_classes + self.num_stuff_classes
        if sem_probs.shape[0] != num_classes:
            raise ValueError(f'expected {num_classes} semantic channels, got '
                             f'{sem_probs.shape[0]}')
        height, width = sem_probs.shape[-2:]
        stride = self.stride if stride is None else stride
        inside = pixels_in_boxes(boxes.detach().to(sem_probs) / stride,
                                 height, width)  # (D, h, w)
        class_probs = sem_probs[labels.long()]  # V_i(c_k), (D, h, w)
        if masks is not None and masks.shape != class_probs.shape:
            raise ValueError(f'masks must be {tuple(class_probs.shape)}, got '
                             f'{tuple(masks.shape)}')
        if self.variant == 'A':
            things = class_probs if masks is None else class_probs + masks
        else:
            if masks is None:
                things = class_probs
            elif self.variant == 'B':
                things = class_probs * masks
            else:
                things = class_probs + masks
            things = scores.to(sem_probs)[:, None, None] * things
        things = things * inside
        return torch.cat([things, sem_probs[self.num_things_classes:]])
