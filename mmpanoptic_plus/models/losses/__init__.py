# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .ciae_embedding_loss import (CIAEEmbeddingLoss, category_rows,
                                  top_k_embedding_loss,
                                  triplet_embedding_terms)
from .deeplab_weighted_pixel_loss import DeepLabWeightedPixelLoss
from .hard_pixel_cross_entropy_aliases import (BootstrappedCrossEntropyLoss,
                                               DeepLabHardPixelCELoss,
                                               bootstrapped_cross_entropy)
from .hard_pixel_cross_entropy_loss import (HardPixelCrossEntropyLoss,
                                            hard_pixel_cross_entropy)
from .pss_segsort_loss import PSSSegSortLoss, segsort_loss
from .rtp_mask_loss import RTPMaskLoss, rtp_query_mask_losses
from .unified_panoptic_matching_loss import (
    UnifiedPanopticMatchingLoss, match_segments_to_detections)

__all__ = [
    'CIAEEmbeddingLoss', 'category_rows', 'top_k_embedding_loss',
    'triplet_embedding_terms',
    'BootstrappedCrossEntropyLoss', 'DeepLabHardPixelCELoss',
    'DeepLabWeightedPixelLoss', 'HardPixelCrossEntropyLoss', 'RTPMaskLoss',
    'bootstrapped_cross_entropy', 'hard_pixel_cross_entropy',
    'PSSSegSortLoss', 'segsort_loss',
    'rtp_query_mask_losses', 'UnifiedPanopticMatchingLoss',
    'match_segments_to_detections'
]
