# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The default demo (``make demo``): segment the bundled sample images.

    python demo/run_default_demo.py

Uses :data:`DEFAULT_CONFIG` with :data:`DEFAULT_CHECKPOINT`, the
RealTimePanoptic checkpoint shipped in ``demo/checkpoints/`` (no download,
no training). With ``--checkpoint none`` the demo makes its own instead:
when ``WORK_DIR/last_checkpoint`` does not point to a checkpoint, it writes
a small synthetic set under :data:`DATA_ROOT` and trains the config for
:data:`TRAIN_ITERS` iterations through ``tools/train.py`` (later runs reuse
it). Then it runs ``demo/image_demo.py`` on the images of
:data:`DEMO_INPUT` and prints where the pictures are.

The options only exist to change those constants for one run (smoke tests,
another device); ``make demo`` passes none.
"""
import argparse
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- what the demo runs -----------------------------------------------------
# RealTimePanoptic (half-width R18) trained on the synthetic set; shipped in
# the repository (6.4 MiB, fp16). It was made by (seed 0, 2-core CPU, ~30 min;
# the mask loss as paper Eq. 16-18, issue 9):
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   OMP_NUM_THREADS=1 python tools/train.py \
#       configs/realtime_panoptic/rtp_r18_synthetic.py \
#       --work-dir work_dirs/rtp_r18_synthetic_v2 \
#       --cfg-options train_dataloader.num_workers=1 \
#       default_hooks.logger.interval=1 log_processor.window_size=1
#   python tools/model_converters/publish_model.py \
#       work_dirs/rtp_r18_synthetic_v2/iter_3000.pth \
#       demo/checkpoints/rtp_r18_synthetic.pth --fp16 --config DEFAULT_CONFIG
# PQ 70.4 (PQ_th 51.5, PQ_st 98.7) on 200 fresh val images of seed 1201, 71.1
# (52.7, 98.7) on 200 of seed 777. It replaces rtp_r18_synthetic-7cdd2556.pth
# (trained with the mask loss before issue 9; see
# configs/realtime_panoptic/README.md for both).
DEFAULT_CONFIG = 'configs/realtime_panoptic/rtp_r18_synthetic.py'
# A trained checkpoint file for DEFAULT_CONFIG; None (or --checkpoint none):
# train one (below).
DEFAULT_CHECKPOINT: Optional[str] = \
    'demo/checkpoints/rtp_r18_synthetic-feaac823.pth'
# --- used only without a checkpoint (--checkpoint none) ---------------------
WORK_DIR = 'work_dirs/demo_rtp'
DATA_ROOT = 'data/synthetic_demo'
NUM_TRAIN_IMAGES = 300
NUM_VAL_IMAGES = 20
SYNTHETIC_SIZE = (256, 256)
SYNTHETIC_SEED = 0
TRAIN_ITERS = 300
# --- inputs and outputs of the demo -----------------------------------------
DEMO_INPUT = 'demo'  # its images: synthetic_sample_1.png, ..._2.jpg
OUT_DIR = 'outputs/demo'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Run the default panoptic demo on the bundled images '
        '(training a small model first when no checkpoint is available).')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument(
        '--checkpoint',
        default=DEFAULT_CHECKPOINT,
        help='checkpoint of --config; "none": train one in --work-dir '
        '(default: the shipped checkpoint)')
    parser.add_argument('--work-dir', default=WORK_DIR)
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--num-train', type=int, default=NUM_TRAIN_IMAGES)
    parser.add_argument('--num-val', type=int, default=NUM_VAL_IMAGES)
    parser.add_argument('--train-iters', type=int, default=TRAIN_ITERS)
    parser.add_argument(
        '--retrain',
        action='store_true',
        help='train even if the work dir has a checkpoint')
    parser.add_argument('--input', default=DEMO_INPUT)
    parser.add_argument('--out-dir', default=OUT_DIR)
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def repo_path(path: str) -> str:
    """``path`` relative to the repository root unless absolute."""
    return path if osp.isabs(path) else str(REPO_ROOT / path)


def find_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named by mmengine's ``work_dir/last_checkpoint``, if
    that file and the checkpoint exist."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as file:
        checkpoint = file.read().strip()
    if checkpoint and not osp.isabs(checkpoint):
        checkpoint = osp.join(work_dir, osp.basename(checkpoint))
    return checkpoint if checkpoint and osp.isfile(checkpoint) else None


def ensure_synthetic_data(data_root: str, num_train: int,
                          num_val: int) -> None:
    """Write the synthetic set unless both annotation files exist."""
    annotations = [
        osp.join(data_root, 'annotations', f'panoptic_{split}.json')
        for split in ('train', 'val')
    ]
    if all(osp.isfile(path) for path in annotations):
        print(f'Using the synthetic set in {data_root}')
        return
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic
    print(f'Writing a synthetic set ({num_train} train / {num_val} val '
          f'images) to {data_root} ...')
    generate_synthetic_panoptic(
        data_root, num_train, num_val, size=SYNTHETIC_SIZE,
        seed=SYNTHETIC_SEED)


def train_command(config: str, work_dir: str, data_root: str,
                  iters: int) -> List[str]:
    """``tools/train.py`` command line: a brief run on ``data_root`` that
    validates and saves a checkpoint once, at the end."""
    root = data_root.rstrip('/') + '/'
    options = [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
    ]
    return [
        sys.executable,
        str(REPO_ROOT / 'tools' / 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options', *options
    ]


def train_checkpoint(args: argparse.Namespace, config: str) -> str:
    """Train the demo model (synthetic set first) and return its
    checkpoint."""
    work_dir = repo_path(args.work_dir)
    data_root = repo_path(args.data_root)
    ensure_synthetic_data(data_root, args.num_train, args.num_val)
    command = train_command(config, work_dir, data_root, args.train_iters)
    print(f'Training {osp.basename(config)} for {args.train_iters} '
          f'iterations (log in {work_dir}):\n  ' + ' '.join(command))
    returncode = subprocess.call(command, cwd=str(REPO_ROOT))
    checkpoint = find_checkpoint(work_dir)
    if checkpoint is None:
        raise SystemExit(f'Training failed (exit code {returncode}) and left '
                         f'no checkpoint in {work_dir}')
    if returncode != 0:
        # the checkpoint is saved before the final validation: a failure
        # there must not keep the demo from running
        print(f'WARNING: training exited with code {returncode} after '
              f'saving {checkpoint}; using it', file=sys.stderr)
    return checkpoint


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    config = repo_path(args.config)
    if args.checkpoint is not None and args.checkpoint.lower() == 'none':
        args.checkpoint = None
    if args.checkpoint is not None:
        checkpoint = repo_path(args.checkpoint)
        if not osp.isfile(checkpoint):
            print(f'ERROR: checkpoint not found: {checkpoint}',
                  file=sys.stderr)
            return 1
    else:
        checkpoint = None if args.retrain else find_checkpoint(
            repo_path(args.work_dir))
        if checkpoint is None:
            checkpoint = train_checkpoint(args, config)
        else:
            print(f'Using the trained demo checkpoint {checkpoint} '
                  '(--retrain to train again)')

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import image_demo

    out_dir = repo_path(args.out_dir)
    status = image_demo.main([
        repo_path(args.input), config, '--weights', checkpoint, '--out-dir',
        out_dir, '--device', args.device
    ])
    if status == 0:
        print('\nDemo pictures (panoptic segmentation drawn over the '
              f'images) are in {osp.join(out_dir, "vis")}; COCO panoptic '
              f'PNG/JSON predictions in {osp.join(out_dir, "preds")}')
    return status


if __name__ == '__main__':
    sys.exit(main())
