# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Optional, Sequence, Union

from mmdet.utils import OptMultiConfig
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.structures import INSTANCE_OFFSET
from ..postprocess.panoptic_fusion import segments_to_panoptic
from .base_stateless_fusion_head import BaseStatelessFusionHead


@MODELS.register_module()
class SegmentFusionHead(BaseStatelessFusionHead):
    """Segments with classes -> panoptic map, as a configurable head
    (:func:`segments_to_panoptic`): the last step of CIAE, Unified and PSS,
    which assign every pixel to one of a set of classified segments.

    Args:
        num_things_classes (int): Thing classes.
        num_stuff_classes (int): Stuff classes.
        stuff_area_limit (int): Smaller stuff segments (all segments of a
            stuff class merged) become void. Defaults to 4096.
        void_label (int, optional): Value of void pixels. Defaults to
            ``num_classes``.
        instance_offset (int): Multiplier of the instance id. Defaults to
            1000 (mmdet's).
        init_cfg (dict or list[dict], optional): Unused.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 stuff_area_limit: int = 4096,
                 void_label: Optional[int] = None,
                 instance_offset: int = INSTANCE_OFFSET,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(num_things_classes, num_stuff_classes, init_cfg)
        self.stuff_area_limit = stuff_area_limit
        self.void_label = void_label
        self.instance_offset = instance_offset

    def predict(self, segments: Tensor,
                segment_labels: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Panoptic maps of a batch.

        Args:
            segments (Tensor): (B, H, W) segment index per pixel (-1:
                none) or (B, S, H, W) per-segment scores.
            segment_labels (Tensor | Sequence[Tensor]): (B, S) class per
                segment (-1: invalid), or B tensors (S_b,).

        Returns:
            Tensor: (B, H, W) int64 panoptic map; thing instances numbered
            1.. per image in segment order.
        """
        return segments_to_panoptic(
            segments,
            segment_labels,
            self.num_things_classes,
            self.num_classes,
            stuff_area_limit=self.stuff_area_limit,
            void_label=self.void_label,
            instance_offset=self.instance_offset)
