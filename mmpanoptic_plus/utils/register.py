# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Imported by configs through ``custom_imports``: registers all modules.

Importing it has the side effect of :func:`register_all_modules` without
touching the default scope (the runner sets it from ``default_scope``).
"""
from .setup_env import register_all_modules

register_all_modules(init_default_scope=False)
