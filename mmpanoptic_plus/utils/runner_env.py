# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Make the mmengine runner's distributed set-up work on CPU-only machines.

Shared by ``tools/train.py`` and ``tools/test.py``. mmengine 0.10.7 assumes
CUDA for distributed runs in three places, all of which fail on a CPU
machine (``tools/dist_train.sh CONFIG 2`` there):

1. the configs' ``dist_cfg.backend='nccl'`` needs CUDA; gloo does not;
2. ``mmengine.dist.init_dist('pytorch')`` calls ``torch.cuda.set_device``,
   which a CPU build of torch does not even have (AttributeError);
3. ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
   ``DistributedDataParallel``, which refuses ``device_ids`` for a module on
   the CPU;
4. ``SyncBatchNorm`` (the paper-scale configs' ``norm_cfg=dict(type=
   'SyncBN')``) only runs on CUDA tensors.
"""
import datetime
import logging
import os
import sys

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log


def _sync_bn_to_bn(node) -> int:
    """Replace every ``SyncBN`` norm type in a (nested) config by ``BN``,
    in place; returns how many were replaced. On CPU, SyncBatchNorm raises
    "expected input tensor to be on GPU"; plain BN is what it computes on a
    single process anyway (statistics are then per process)."""
    replaced = 0
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'mmseg.SyncBN', 'mmdet.SyncBN'):
            node['type'] = 'BN'
            replaced += 1
        for value in node.values():
            replaced += _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            replaced += _sync_bn_to_bn(value)
    return replaced


def setup_cpu_distributed(cfg: Config, launcher: str) -> Config:
    """Adapt ``cfg`` (in place) and the process group to a machine without
    CUDA. Does nothing when CUDA is available.

    * ``env_cfg.dist_cfg.backend``: ``'nccl'`` becomes ``'gloo'``.
    * launcher ``'pytorch'``: initializes the process group here from the
      ``torchrun`` environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
      ``MASTER_PORT``); the runner then skips its own ``init_dist``. The
      ``'slurm'`` and ``'mpi'`` launchers are still initialized by mmengine,
      which needs CUDA for them.
    * every ``SyncBN`` in ``cfg.model`` becomes ``BN``.
    * any launcher but ``'none'``: ``model_wrapper_cfg.device_ids = None``
      (the runner only sets a default for it), so DDP wraps a CPU module.

    Args:
        cfg (Config): The full config; ``env_cfg`` and ``model_wrapper_cfg``
            are updated.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        Config: ``cfg`` itself.
    """
    if torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log(
            'CUDA is not available: distributed backend nccl -> gloo',
            logger='current')
    if 'model' in cfg:
        _sync_bn_to_bn(cfg.model)
    if launcher == 'none':
        return cfg

    wrapper_cfg = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        # the arguments mmengine's Runner.wrap_model uses by default
        wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg

    if launcher == 'pytorch' and not torch_dist.is_initialized():
        for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            if name not in os.environ:
                raise RuntimeError(
                    f'--launcher pytorch needs the environment variable '
                    f'{name}; start the script with torchrun or '
                    'tools/dist_train.sh / tools/dist_test.sh')
        # `init_backend` is an argument of mmengine's init_dist, not torch's
        init_kwargs = {
            key: value
            for key, value in dist_cfg.items()
            if key not in ('backend', 'init_backend')
        }
        if 'timeout' in init_kwargs:
            # mmengine's init_dist takes seconds, torch a timedelta
            init_kwargs['timeout'] = datetime.timedelta(
                seconds=init_kwargs['timeout'])
        torch_dist.init_process_group(
            backend=dist_cfg['backend'], **init_kwargs)
    return cfg


def teardown_distributed() -> bool:
    """Destroy the default process group, if any, before the interpreter
    exits.

    mmengine never destroys it; with gloo on CPU the group's worker threads
    are then torn down during interpreter shutdown, which sometimes aborts
    the process ("terminate called without an active exception", SIGABRT)
    after the run itself succeeded.

    Returns:
        bool: Whether a process group was destroyed (the run was
        distributed).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        return True
    return False


def exit_distributed_worker() -> None:
    """End a distributed worker process that finished its work: flush the
    streams and logs, then ``os._exit(0)``.

    Destroying the process group is not always enough: torch 2.13's gloo
    backend still, now and then, aborts the worker during interpreter
    finalization (C++ threads destroyed while joinable, SIGABRT, exit code
    -6), which makes ``torchrun`` report a failed run that had succeeded. A
    worker that reached this point has nothing left to do; skipping the
    interpreter's finalization (atexit handlers, object destructors) avoids
    the abort. Only the tools' ``__main__`` blocks call this, never code
    that runs inside another program (tests call ``main()``).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)
