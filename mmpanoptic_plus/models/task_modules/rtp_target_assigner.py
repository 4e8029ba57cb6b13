# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Target assignment of RealTimePanoptic (RTP): the FCOS-style mask assigner
with levelness.

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 3.2, 3.3 and 4 (Eq. 9-10); weakly supervised mode in Sec. 5.6 and
appendix C.
"""
import math
from typing import Optional, Sequence, Tuple

from mmengine.structures import InstanceData

from mmpanoptic_plus.registry import TASK_UTILS
from .fcos_mask_target_assigner import FCOSMaskTargetAssigner
from .fcos_mask_targets import FCOSMaskTargets

INF = math.inf

#: RTP's targets are :class:`FCOSMaskTargets` with the levelness fields set.
RTPTargets = FCOSMaskTargets


@TASK_UTILS.register_module()
class RTPTargetAssigner(FCOSMaskTargetAssigner):
    """:class:`FCOSMaskTargetAssigner` with levelness (always on), keeping
    RTP's historical ``assign(featmap_sizes, levelness_size, gt, ignored)``
    argument order.

    Args:
        num_things (int): Number of thing classes (background label).
        strides (Sequence[int]): FPN strides. Defaults to (8, 16, 32, 64,
            128).
        regress_ranges (Sequence[tuple[float, float]]): Size range of each
            level (Eq. 9). Defaults to FCOS's.
        levelness_stride (int): Stride of the levelness map. Defaults to 4.
        use_masks (bool): Mask mode (True) or weakly supervised box mode.
            Defaults to True.
    """

    def __init__(self,
                 num_things: int,
                 strides: Sequence[int] = (8, 16, 32, 64, 128),
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     (-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
                 levelness_stride: int = 4,
                 use_masks: bool = True) -> None:
        super().__init__(
            num_things,
            strides=strides,
            regress_ranges=regress_ranges,
            with_levelness=True,
            levelness_stride=levelness_stride,
            use_masks=use_masks)

    def assign(
        self,
        featmap_sizes: Sequence[Tuple[int, int]],
        levelness_size: Tuple[int, int],
        batch_gt_instances: Sequence[InstanceData],
        batch_ignored_instances: Optional[Sequence[InstanceData]] = None
    ) -> FCOSMaskTargets:
        """Targets of a batch, levelness included (see
        :meth:`FCOSMaskTargetAssigner.assign`; keyword calls work with
        both classes)."""
        return super().assign(
            featmap_sizes,
            batch_gt_instances,
            batch_ignored_instances,
            levelness_size=levelness_size)
