# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Train a panoptic segmentor (mmdet 3.x ``tools/train.py`` interface).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Differences from mmdet's script: our modules are registered before the
config is used, so configs resolve in their ``default_scope``; on a machine
without CUDA the distributed backend falls back to gloo (so
``tools/dist_train.sh CONFIG 2`` runs on a CPU); and the checkpoints the
runner writes can be loaded back under ``torch.load(weights_only=True)``.
"""
import argparse
import os
import os.path as osp

from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmpanoptic_plus.registry import RUNNERS
from mmpanoptic_plus.utils import register_all_modules
from mmpanoptic_plus.utils.runner_env import (exit_distributed_worker,
                                               setup_cpu_distributed,
                                               teardown_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a panoptic model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual batch size over '
        '`auto_scale_lr.base_batch_size`')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, resume from the '
        'latest checkpoint in the work directory')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged '
        'into it, e.g. train_cfg.max_iters=10 or key="[a,b]"; quotes are '
        'needed around lists/tuples and no white space is allowed')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank; torchrun passes the LOCAL_RANK variable instead
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_train_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        auto_scale_lr = cfg.get('auto_scale_lr', None)
        if auto_scale_lr is None or 'base_batch_size' not in auto_scale_lr:
            raise RuntimeError(
                '--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                'base_batch_size=N)` in the config (N: the total batch size '
                'the learning rate was tuned for)')
        cfg.auto_scale_lr.enable = True

    # an explicit checkpoint wins over auto-resume
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'checkpoint to resume from not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def main() -> bool:
    args = parse_args()
    # Limits repeated torch.compile recompilations (as mmdet's tools do).
    setup_cache_size_limit_of_dynamo()
    # The runner sets the default scope from the config's `default_scope`.
    register_all_modules(init_default_scope=False)

    cfg = build_train_config(args)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()
    return teardown_distributed()


if __name__ == '__main__':
    if main():  # a distributed worker: see exit_distributed_worker
        exit_distributed_worker()
