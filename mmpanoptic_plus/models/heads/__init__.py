# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .ciae_embedding_branch import CIAEEmbeddingBranch, CoordConvUpsample
from .ciae_head import CIAEHead
from .ciae_head_loss_mixin import CIAEHeadLossMixin
from .ciae_memory_embeddings import CIAEMemoryEmbeddings, memory_momentum
from .panoptic_deeplab_decoder import PanopticDeepLabDecoder
from .panoptic_deeplab_instance_head import PanopticDeepLabInstanceHead
from .panoptic_deeplab_semantic_head import PanopticDeepLabSemanticHead
from .pss_head import PSSHead
from .pss_seed_targets import seed_targets
from .pss_training_segments import (PSSTrainingSegments,
                                    pss_training_segments,
                                    sample_ids_on_grid)
from .rtp_head import RTPHead
from .rtp_head_loss_mixin import RTPHeadLossMixin
from .unified_affinity_head import UnifiedAffinityHead
from .unified_dynamic_potential import (POTENTIAL_VARIANTS,
                                        UnifiedDynamicPotentialHead)
from .upsnet_semantic_head import UPSNetSemanticHead

__all__ = [
    'CIAEEmbeddingBranch', 'CoordConvUpsample', 'CIAEHead',
    'CIAEHeadLossMixin', 'CIAEMemoryEmbeddings', 'memory_momentum',
    'PanopticDeepLabDecoder', 'PanopticDeepLabInstanceHead',
    'PanopticDeepLabSemanticHead', 'RTPHead', 'RTPHeadLossMixin',
    'PSSHead', 'seed_targets', 'PSSTrainingSegments', 'pss_training_segments',
    'sample_ids_on_grid',
    'UPSNetSemanticHead', 'UnifiedAffinityHead', 'POTENTIAL_VARIANTS',
    'UnifiedDynamicPotentialHead'
]
