# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .bootstrapped_cross_entropy_loss import (BootstrappedCrossEntropyLoss,
                                              bootstrapped_cross_entropy)
from .rtp_mask_loss import RTPMaskLoss, rtp_query_mask_losses

__all__ = [
    'BootstrappedCrossEntropyLoss', 'bootstrapped_cross_entropy',
    'RTPMaskLoss', 'rtp_query_mask_losses'
]
# Panoptic-DeepLab
from .deeplab_hard_pixel_ce_loss import DeepLabHardPixelCELoss  # noqa: F401,E402,E501
from .deeplab_weighted_pixel_loss import DeepLabWeightedPixelLoss  # noqa: F401,E402,E501
