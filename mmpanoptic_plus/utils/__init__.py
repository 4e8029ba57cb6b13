# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .checkpoint import allow_mmengine_checkpoint_globals
from .config_utils import drop_pretrained_init, merge_test_cfg
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'allow_mmengine_checkpoint_globals',
    'drop_pretrained_init', 'merge_test_cfg'
]
