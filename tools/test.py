# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Test (and evaluate) a panoptic segmentor (mmdet 3.x ``tools/test.py``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out R.pkl]
        [--show-dir DIR] [--show] [--cfg-options k=v ...] [--tta]
        [--launcher pytorch]

``--show-dir`` turns on the config's ``default_hooks.visualization`` hook
(our ``PanopticVisualizationHook``): it draws the predictions and writes them
under ``<work_dir>/<timestamp>/<show_dir>``. ``--tta`` needs ``tta_model``
and ``tta_pipeline`` in the config: mmdet's default ``DetTTAModel`` merges
boxes only, which would silently drop the panoptic maps.
"""
import argparse
import os
import os.path as osp

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.runner import Runner

from mmpanoptic_plus.registry import RUNNERS
from mmpanoptic_plus.utils import register_all_modules
from mmpanoptic_plus.utils.runner_env import (exit_distributed_worker,
                                               setup_cpu_distributed,
                                               teardown_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a panoptic model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump the predictions to a .pkl file for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions')
    parser.add_argument(
        '--show-dir',
        help='save the painted predictions in this directory, under '
        '<work_dir>/<timestamp>/')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged '
        'into it, e.g. test_dataloader.batch_size=2 or key="[a,b]"; quotes '
        'are needed around lists/tuples and no white space is allowed')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation with the config\'s `tta_model` and '
        '`tta_pipeline`')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank; torchrun passes the LOCAL_RANK variable instead
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_test_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl/.pickle file, got {args.out}')
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

    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        # sets draw=True (+ show / test_out_dir) on the visualization hook
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        missing = [
            key for key in ('tta_model', 'tta_pipeline') if key not in cfg
        ]
        if missing:
            raise RuntimeError(
                f'--tta needs {" and ".join(missing)} in the config: there '
                'is no default test-time augmentation for panoptic maps '
                '(mmdet\'s DetTTAModel merges boxes only)')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def main() -> bool:
    args = parse_args()
    # Limits repeated torch.compile recompilations (as mmdet's tools do).
    setup_cache_size_limit_of_dynamo()
    # The runner sets the default scope from the config's `default_scope`.
    register_all_modules(init_default_scope=False)

    cfg = build_test_config(args)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    if args.out is not None:
        # mmdet's dumper: drops the ground truth, RLE-encodes instance masks
        # and keeps `pred_panoptic_seg` as is
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    runner.test()
    return teardown_distributed()


if __name__ == '__main__':
    if main():  # a distributed worker: see exit_distributed_worker
        exit_distributed_worker()
