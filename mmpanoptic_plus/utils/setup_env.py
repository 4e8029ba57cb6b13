# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import datetime
import warnings

from mmengine import DefaultScope

from .checkpoint import allow_mmengine_checkpoint_globals


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers something, and set the scope.

    mmdet's and mmseg's registries are filled lazily, so a config that asks
    for ``ResNet`` through our child registry would fail with "not in the
    mmpanoptic_plus::model registry" unless ``mmdet.models`` was imported
    first; we import both libraries' modules here.

    Args:
        init_default_scope (bool): Set the default scope to
            ``'mmpanoptic_plus'`` so that registries resolve in it first.
    """
    # mmengine's load_checkpoint/resume call torch.load with its default
    # weights_only=True, which refuses what the runner saves (see checkpoint)
    allow_mmengine_checkpoint_globals()
    import mmdet.datasets  # noqa: F401
    import mmdet.engine  # noqa: F401
    import mmdet.evaluation  # noqa: F401
    import mmdet.models  # noqa: F401
    import mmdet.visualization  # noqa: F401
    import mmseg.models  # noqa: F401

    import mmpanoptic_plus.datasets  # noqa: F401
    import mmpanoptic_plus.engine  # noqa: F401
    import mmpanoptic_plus.evaluation  # noqa: F401
    import mmpanoptic_plus.models  # noqa: F401
    import mmpanoptic_plus.visualization  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmpanoptic_plus',
                                  scope_name='mmpanoptic_plus')
    elif current.scope_name != 'mmpanoptic_plus':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mmpanoptic_plus"; register_all_modules creates a '
                      'new default scope "mmpanoptic_plus".')
        # DefaultScope instances need unique names
        stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S%f')
        DefaultScope.get_instance(f'mmpanoptic_plus-{stamp}',
                                  scope_name='mmpanoptic_plus')
