# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
# PISR
from .pisr_encoder import PISREncoder  # noqa: F401,E402
from .pisr_encodings import (instance_encodings,  # noqa: F401,E402
                             instance_heatmaps_from_offsets,
                             region_encodings, semantic_encodings)
