# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Union

from mmdet.utils import OptMultiConfig
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.structures import CroppedMasks
from ..postprocess.panoptic_fusion import heuristic_panoptic_fusion
from .base_stateless_fusion_head import BaseStatelessFusionHead


@MODELS.register_module()
class HeuristicPanopticFusionHead(BaseStatelessFusionHead):
    """The panoptic fusion heuristic of Kirillov et al. ("Panoptic
    Segmentation", CVPR 2019, Sec. 7) as a configurable head: scored
    instance masks in score order with an overlap rule, then the stuff
    classes of a semantic map with an area limit
    (:func:`heuristic_panoptic_fusion`; RealTimePanoptic's fusion).

    mmdet's ``HeuristicFusionHead`` does the same on an ``InstanceData``
    with dense masks; this one takes tensors and :class:`CroppedMasks`,
    keeps the score threshold separate and is registered under its own
    name so that both stay reachable.

    Args:
        num_things_classes (int): Thing classes.
        num_stuff_classes (int): Stuff classes.
        overlap_thr (float): Minimal free fraction of a mask. Defaults to
            0.5.
        stuff_area_limit (int): Minimal pixel count of a stuff segment.
            Defaults to 4096.
        score_thr (float): Minimal instance score. Defaults to 0.
        init_cfg (dict or list[dict], optional): Unused.
    """

    def __init__(self,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 overlap_thr: float = 0.5,
                 stuff_area_limit: int = 4096,
                 score_thr: float = 0.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(num_things_classes, num_stuff_classes, init_cfg)
        self.overlap_thr = overlap_thr
        self.stuff_area_limit = stuff_area_limit
        self.score_thr = score_thr

    def predict(self, masks: Union[Tensor, CroppedMasks], labels: Tensor,
                scores: Tensor, sem_seg: Tensor) -> Tensor:
        """Fuse the instances and the semantic map of one image.

        Args:
            masks (Tensor | CroppedMasks): (N, H, W) bool instance masks or
                their crops.
            labels (Tensor): (N,) thing labels.
            scores (Tensor): (N,) instance scores.
            sem_seg (Tensor): (H, W) semantic labels, things first.

        Returns:
            Tensor: (H, W) int64 panoptic map, ``label + id * 1000``, void
            ``num_classes``.
        """
        return heuristic_panoptic_fusion(
            masks,
            labels,
            scores,
            sem_seg,
            self.num_things_classes,
            self.num_stuff_classes,
            overlap_thr=self.overlap_thr,
            stuff_area_limit=self.stuff_area_limit,
            score_thr=self.score_thr)
