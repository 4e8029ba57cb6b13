# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Sequence, Tuple

from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmseg.models.decode_heads import UPerHead
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class UPerNetFusionNeck(UPerHead):
    """UPerNet's feature fusion (Xiao et al., "Unified Perceptual Parsing
    for Scene Understanding", ECCV 2018, Sec. 3.2): mmseg's ``UPerHead``
    without its classifier, used as a neck.

    The pyramid pooling module on the coarsest level, the FPN top-down path
    and the ``fpn_bottleneck`` 3x3 conv over the concatenated, upsampled
    levels give one fused map at the stride of the finest input level
    (``UPerHead._forward_feature``); :meth:`forward` returns it. The
    classifier (``conv_seg``, its dropout) and the decode loss of mmseg's
    head are removed: the panoptic heads that read the fused map predict
    instead (a parameter that never gets a gradient would also stall DDP).

    Args:
        in_channels (Sequence[int]): Channels of the input levels, finest
            first (e.g. ResNet's (256, 512, 1024, 2048)).
        channels (int): Channels of the fused map (UPerNet: 512).
        pool_scales (tuple[int]): Pyramid pooling scales. Defaults to
            (1, 2, 3, 6).
        conv_cfg (dict, optional): Conv config.
        norm_cfg (dict): Norm config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to ReLU.
        align_corners (bool): Of the upsampling. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 pool_scales: Tuple[int, ...] = (1, 2, 3, 6),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        in_channels = list(in_channels)
        super().__init__(
            pool_scales=tuple(pool_scales),
            in_channels=in_channels,
            in_index=list(range(len(in_channels))),
            channels=channels,
            num_classes=1,
            out_channels=1,
            threshold=0.5,
            dropout_ratio=0.,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            # no decode loss (an empty ModuleList, removed below)
            loss_decode=[],
            align_corners=align_corners,
            init_cfg=init_cfg)
        del self.conv_seg
        del self.loss_decode

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """The fused map.

        Args:
            inputs (Sequence[Tensor]): Levels (B, C_l, H_l, W_l), finest
                first.

        Returns:
            Tensor: (B, channels, H_0, W_0), at the finest level's stride.
        """
        return self._forward_feature(list(inputs))
