# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Any


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
