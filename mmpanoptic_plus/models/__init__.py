# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Models: every registered class of the package (importing this module
registers them). ``models.utils`` (ops shared by training and inference) and
``models.postprocess`` (pure functions after the heads) are imported by
their users, not here."""
from .data_preprocessors import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .panoptic_fusion_heads import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from . import (data_preprocessors, detectors, heads, layers,  # noqa: E402
               losses, necks, panoptic_fusion_heads, task_modules)

__all__ = (
    data_preprocessors.__all__ + detectors.__all__ + heads.__all__ +
    layers.__all__ + losses.__all__ + necks.__all__ +
    panoptic_fusion_heads.__all__ +
    task_modules.__all__)
