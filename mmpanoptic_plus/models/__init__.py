# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from . import task_modules  # noqa: F401,F403
