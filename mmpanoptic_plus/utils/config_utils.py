# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Any, Mapping, Optional


def drop_pretrained_init(node: Any) -> None:
    """Remove ``init_cfg=dict(type='Pretrained', ...)`` everywhere in a
    model config, in place.

    The tools that build a model from a paper config without its weights
    (benchmark, ONNX export) use it: nothing can be downloaded here, the
    weights come from a checkpoint or are random, and random weights time
    the same. In a list of init configs only the ``Pretrained`` entries go
    (the list becomes None when nothing is left).

    Args:
        node: A config dict (or list/tuple of them), walked recursively.
    """
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg', None)
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        elif isinstance(init_cfg, list):
            node['init_cfg'] = [
                item for item in init_cfg
                if not (isinstance(item, dict)
                        and item.get('type') == 'Pretrained')
            ] or None
        for value in node.values():
            drop_pretrained_init(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained_init(value)


def merge_test_cfg(defaults: Mapping,
                   *overrides: Optional[Mapping],
                   name: str = '') -> dict:
    """``defaults`` updated by each of ``overrides`` in turn (None or empty
    ones skipped), refusing keys ``defaults`` does not have, so that a
    misspelt post-processing setting is an error rather than ignored.

    Args:
        defaults (Mapping): Every known key with its default.
        *overrides (Mapping, optional): Settings applied in order.
        name (str): Method named in the error, e.g. ``'RTP'``.

    Returns:
        dict: The merged settings (a new dict).

    Raises:
        KeyError: An override has a key ``defaults`` does not.
    """
    cfg = dict(defaults)
    prefix = f'{name} ' if name else ''
    for override in overrides:
        if not override:
            continue
        unknown = set(override) - set(defaults)
        if unknown:
            raise KeyError(f'unknown {prefix}test_cfg keys {sorted(unknown)}'
                           f'; known: {sorted(defaults)}')
        cfg.update(override)
    return cfg
