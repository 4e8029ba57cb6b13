# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from abc import abstractmethod

from mmdet.models.seg_heads.panoptic_fusion_heads import \
    BasePanopticFusionHead
from mmdet.utils import OptMultiConfig
from torch import Tensor


class BaseStatelessFusionHead(BasePanopticFusionHead):
    """A parameter-free panoptic fusion head: a configured call of one of
    the pure functions of :mod:`mmpanoptic_plus.models.postprocess.
    panoptic_fusion`, so that a detector config chooses its fusion (as
    mmdet's ``panoptic_fusion_head``).

    Its settings are constructor arguments (checked: a misspelt key raises,
    unlike mmdet's base, which swallows ``**kwargs``); it has no loss and
    no ``test_cfg``. ``forward`` is ``predict``.

    Args:
        num_things_classes (int): Thing classes (labels ``0 ..
            num_things_classes - 1``).
        num_stuff_classes (int): Stuff classes (the labels after them).
        init_cfg (dict or list[dict], optional): Unused (no parameters),
            kept for the ``BaseModule`` interface.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 init_cfg: OptMultiConfig = None) -> None:
        if num_things_classes < 0 or num_stuff_classes < 0:
            raise ValueError(
                f'class counts must be non-negative, got {num_things_classes}'
                f' things and {num_stuff_classes} stuff')
        super().__init__(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            test_cfg=None,
            loss_panoptic=None,
            init_cfg=init_cfg)

    def loss(self, **kwargs) -> dict:
        """No loss: the fusion has no parameters.

        Returns:
            dict: Empty.
        """
        return dict()

    @abstractmethod
    def predict(self, *args, **kwargs) -> Tensor:
        """Panoptic map(s) in mmdet's encoding."""

    def forward(self, *args, **kwargs) -> Tensor:
        """Same as :meth:`predict`."""
        return self.predict(*args, **kwargs)
