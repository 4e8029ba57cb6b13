# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Category-aware memory embeddings of CIAE (Gao et al., "Learning Category-
and Instance-Aware Pixel Embedding for Fast Panoptic Segmentation", Sec.
III-C, Eq. 13-14)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce, is_distributed
from torch import Tensor


def memory_momentum(step: int, total_steps: int, gap: float = 1e-4) -> float:
    """The increasing momentum of Eq. 13, ``lambda_t = 1 - gap * (1 -
    t / T) ** 3`` with the paper's ``gap = 1e-4``.

    ``t`` is clamped to ``[0, T]``: ``lambda_0 = 1 - gap``, ``lambda_{T/2} =
    1 - gap / 8`` and ``lambda_T = 1`` (the memory is frozen from then on).

    Args:
        step (int): t, updates done so far (0 at the first iteration).
        total_steps (int): T, the iterations of the whole training.
        gap (float): ``1 - lambda_0``. Defaults to 1e-4 (the paper's).

    Returns:
        float: lambda_t.
    """
    if total_steps <= 0:
        raise ValueError(f'total_steps must be positive, got {total_steps}')
    progress = min(max(float(step) / total_steps, 0.0), 1.0)
    return 1.0 - gap * (1.0 - progress)**3


class CIAEMemoryEmbeddings(nn.Module):
    """Slowly updated, L2-normalised query embedding of every category
    (Sec. III-C).

    ``M_1`` is random (unit vectors); in iteration ``t`` the categories
    present in the mini-batch move towards their batch mean embedding ``M_c``
    (Eq. 3), ``M_t = L2norm(lambda_t M_{t-1} + (1 - lambda_t) M_c)`` (Eq.
    14) with :func:`memory_momentum` (Eq. 13); absent categories keep their
    row. Both the embeddings and the update counter ``t`` are buffers: they
    are saved in checkpoints (a resumed training continues the schedule) and
    never receive gradients (``M_t`` is a constant query in the loss).

    Across GPUs every rank must hold the same memory: each rank's
    L2-normalised batch means are averaged over the ranks that saw the
    category (one ``all_reduce`` of ``means x presence`` and one of the
    presence counts), so all ranks apply the same update to the same
    starting buffer (DDP broadcasts buffers from rank 0 when it wraps the
    model).

    Args:
        num_embeddings (int): Categories (rows).
        embed_dim (int): E.
        total_iters (int): T of Eq. 13 (the training's iterations).
        momentum_gap (float): ``1 - lambda_0``. Defaults to 1e-4.
    """

    def __init__(self,
                 num_embeddings: int,
                 embed_dim: int,
                 total_iters: int,
                 momentum_gap: float = 1e-4) -> None:
        super().__init__()
        if total_iters <= 0:
            raise ValueError(
                f'total_iters must be positive, got {total_iters}')
        self.total_iters = int(total_iters)
        self.momentum_gap = float(momentum_gap)
        self.register_buffer(
            'embeddings',
            F.normalize(torch.randn(num_embeddings, embed_dim), dim=1))
        self.register_buffer('num_updates',
                             torch.zeros((), dtype=torch.long))

    def momentum(self) -> float:
        """lambda_t of the next update (Eq. 13, ``t = num_updates``)."""
        return memory_momentum(
            int(self.num_updates), self.total_iters, self.momentum_gap)

    def normalized(self) -> Tensor:
        """(C, E) unit rows (re-normalised: a checkpoint stored in fp16 is
        only approximately unit)."""
        return F.normalize(self.embeddings, dim=1)

    @torch.no_grad()
    def update(self, category_means: Tensor, present: Tensor) -> Tensor:
        """One step of Eq. 14 for the categories in the mini-batch.

        Args:
            category_means (Tensor): (C, E) this rank's batch mean embedding
                of each category (any norm; rows of absent categories are
                ignored).
            present (Tensor): (C,) bool, the category has pixels in this
                rank's mini-batch.

        Returns:
            Tensor: (C, E) the updated memory ``M_t`` (also stored).
        """
        if category_means.shape != self.embeddings.shape or \
                present.shape != self.embeddings.shape[:1]:
            raise ValueError(
                f'category_means {tuple(category_means.shape)} and present '
                f'{tuple(present.shape)} must be {tuple(self.embeddings.shape)}'
                f' and ({self.embeddings.size(0)},)')
        weight = present.to(self.embeddings.dtype)[:, None]
        means = F.normalize(category_means.detach().to(self.embeddings), dim=1)
        summed = means * weight
        count = weight.clone()
        if is_distributed():
            all_reduce(summed, op='sum')
            all_reduce(count, op='sum')
        seen = count[:, 0] > 0
        batch_means = summed / count.clamp_min(1)
        lam = self.momentum()
        blended = F.normalize(
            lam * self.embeddings + (1 - lam) * batch_means, dim=1)
        self.embeddings.copy_(
            torch.where(seen[:, None], blended, self.embeddings))
        self.num_updates += 1
        return self.embeddings

    def extra_repr(self) -> str:
        return (f'num_embeddings={self.embeddings.size(0)}, '
                f'embed_dim={self.embeddings.size(1)}, '
                f'total_iters={self.total_iters}, '
                f'momentum_gap={self.momentum_gap}')
