# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from . import task_modules  # noqa: F401,F403
from . import losses  # noqa: F401,F403
from . import heads  # noqa: F401,F403
from . import panoptic_fusion_heads  # noqa: F401,F403
from . import detectors  # noqa: F401,F403
from . import data_preprocessors  # noqa: F401,F403
from . import layers  # noqa: F401,F403
