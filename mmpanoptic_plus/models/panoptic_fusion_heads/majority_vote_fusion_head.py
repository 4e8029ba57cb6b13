# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Optional

from mmdet.utils import OptMultiConfig
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.structures import INSTANCE_OFFSET
from ..postprocess.panoptic_fusion import merge_semantic_and_instance
from .base_stateless_fusion_head import BaseStatelessFusionHead


@MODELS.register_module()
class MajorityVoteFusionHead(BaseStatelessFusionHead):
    """Panoptic-DeepLab's fusion (Cheng et al., CVPR 2020, Sec. 3.2) as a
    configurable head: each class-agnostic instance takes the majority
    semantic class of its pixels, stuff comes from the semantic map with an
    area limit (:func:`merge_semantic_and_instance`).

    Its ``predict`` has the signature :func:`panoptic_deeplab_postprocess`
    expects of a ``fusion``; ``PanopticDeepLab`` builds one by default.

    Args:
        num_things_classes (int): Thing classes.
        num_stuff_classes (int): Stuff classes.
        stuff_area_limit (int): Smaller stuff segments become void.
            Defaults to 2048 (Cityscapes; 4096 for COCO).
        void_label (int, optional): Value of void pixels. Defaults to
            ``num_classes``.
        instance_offset (int): Multiplier of the instance id. Defaults to
            1000 (mmdet's).
        init_cfg (dict or list[dict], optional): Unused.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 stuff_area_limit: int = 2048,
                 void_label: Optional[int] = None,
                 instance_offset: int = INSTANCE_OFFSET,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(num_things_classes, num_stuff_classes, init_cfg)
        self.stuff_area_limit = stuff_area_limit
        self.void_label = void_label
        self.instance_offset = instance_offset

    def predict(self,
                sem_labels: Tensor,
                instance_ids: Tensor,
                thing_mask: Optional[Tensor] = None) -> Tensor:
        """Merge semantic labels and instance ids of a batch.

        Args:
            sem_labels (Tensor): (B, H, W) semantic labels, things first.
            instance_ids (Tensor): (B, H, W) instance ids, 0 = none.
            thing_mask (Tensor, optional): (B, H, W) bool foreground.
                Defaults to ``sem_labels < num_things_classes``.

        Returns:
            Tensor: (B, H, W) int64 panoptic map.
        """
        return merge_semantic_and_instance(
            sem_labels,
            instance_ids,
            thing_mask,
            self.num_things_classes,
            self.num_classes,
            stuff_area_limit=self.stuff_area_limit,
            void_label=self.void_label,
            instance_offset=self.instance_offset)
