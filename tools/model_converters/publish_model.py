# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Turn a training checkpoint into a release file.

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE [--fp16]

Keeps the ``state_dict`` and a small ``meta`` (mmengine/mmdet versions,
the source iteration, the config text when the checkpoint carries it) and
drops the optimizer, scheduler and message-hub states, which triple the
size of an Adam checkpoint and are only needed to resume. ``--fp16``
stores the floating-point tensors in half precision (halving the file
again; integer buffers such as BN's ``num_batches_tracked`` are kept).
Loading a half-precision file into a model is unchanged:
``mmengine.runner.load_checkpoint`` copies each tensor into the float32
parameter (``Tensor.copy_`` converts), so the model runs in float32 with
weights rounded to fp16 (relative error below 2**-11).

As mmdet's tool of the same name, the first 8 hex digits of the file's
SHA-256 are appended to its name: ``OUT_FILE`` ``x.pth`` becomes
``x-<sha8>.pth``. (mmdet's own script is not reused: it loads with
``weights_only=False`` and has no half-precision option.)
"""
import argparse
import hashlib
import os
import os.path as osp
from typing import Optional, Sequence

import torch

from mmpanoptic_plus.utils.checkpoint import allow_mmengine_checkpoint_globals


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Strip a checkpoint to its weights for release')
    parser.add_argument('in_file', help='training checkpoint')
    parser.add_argument('out_file', help='output file (a -<sha8> suffix is '
                        'added before the extension)')
    parser.add_argument(
        '--fp16',
        action='store_true',
        help='store floating-point tensors in half precision')
    parser.add_argument(
        '--no-hash',
        action='store_true',
        help='keep OUT_FILE as given (no -<sha8> suffix)')
    return parser.parse_args(argv)


def publish_checkpoint(in_file: str,
                       out_file: str,
                       fp16: bool = False,
                       add_hash: bool = True) -> str:
    """Write the release version of ``in_file``.

    Args:
        in_file (str): Checkpoint saved by mmengine's runner (or any file
            holding a ``state_dict``, or a bare state dict).
        out_file (str): Output path, ``.pth`` recommended.
        fp16 (bool): Store floating-point tensors as float16.
        add_hash (bool): Append ``-<sha8>`` to the file name.

    Returns:
        str: The path written.

    Raises:
        FileNotFoundError: ``in_file`` does not exist.
        ValueError: The file holds no state dict.
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'checkpoint not found: {in_file}')
    allow_mmengine_checkpoint_globals()  # runner checkpoints' numpy/logs
    checkpoint = torch.load(in_file, map_location='cpu', weights_only=True)
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        state_dict = checkpoint['state_dict']
        source_meta = checkpoint.get('meta', {}) or {}
    elif isinstance(checkpoint, dict) and checkpoint and all(
            isinstance(value, torch.Tensor) for value in checkpoint.values()):
        state_dict, source_meta = checkpoint, {}
    else:
        raise ValueError(f'{in_file} holds no state_dict')
    if fp16:
        state_dict = {
            key: value.half() if value.is_floating_point() else value
            for key, value in state_dict.items()
        }
    # only plain values: the release file must load with weights_only=True
    # and no allow-list
    meta = {
        key: source_meta[key]
        for key in ('mmengine_version', 'mmdet_version', 'epoch', 'iter',
                    'seed', 'experiment_name', 'cfg')
        if isinstance(source_meta.get(key), (str, int, float))
    }
    meta['fp16'] = fp16
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    torch.save({'meta': meta, 'state_dict': state_dict}, out_file)
    if not add_hash:
        return out_file
    with open(out_file, 'rb') as file:
        sha = hashlib.sha256(file.read()).hexdigest()
    stem, ext = osp.splitext(out_file)
    final_file = f'{stem}-{sha[:8]}{ext or ".pth"}'
    os.replace(out_file, final_file)
    return final_file


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    out = publish_checkpoint(args.in_file, args.out_file, args.fp16,
                             not args.no_hash)
    size = osp.getsize(out) / 2**20
    print(f'wrote {out} ({size:.2f} MiB)')
    return out


if __name__ == '__main__':
    main()
