# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Turn a training checkpoint into a release file.

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE \
        [--fp16] [--config CONFIG]

Keeps the ``state_dict`` and a small ``meta`` (mmengine/mmdet versions,
the source iteration, the config text when the checkpoint carries it, and
``dataset_meta``) and drops the optimizer, scheduler and message-hub
states, which triple the size of an Adam checkpoint and are only needed to
resume.

``meta['dataset_meta']`` holds the class names (``classes``,
``thing_classes``, ``stuff_classes``) and the ``palette``, which
``init_panoptic_model`` (demo, inference) reads so that a released file
names its classes without its training config. They come from the
checkpoint's own ``meta['dataset_meta']`` (mmengine's runner saves the
training set's ``metainfo`` there), else from ``--config``: the metainfo of
its test dataset class (``METAINFO``, e.g.
``SyntheticPanopticDataset.METAINFO``) updated by the config's
``metainfo``, as the dataset itself computes it. Without either a warning
is printed and no ``dataset_meta`` is stored.

``--fp16`` stores the floating-point tensors in half precision (halving
the file again; integer buffers such as BN's ``num_batches_tracked`` are
kept). Loading a half-precision file into a model is unchanged:
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
import warnings
from typing import Any, Dict, Optional, Sequence

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
    parser.add_argument(
        '--config',
        default=None,
        help='config of the model: its test dataset gives meta["dataset_meta"]'
        ' when the checkpoint stores none')
    return parser.parse_args(argv)


# What a release keeps of the dataset metainfo: what inference and the
# visualizer read (class names, things first, and their colours).
DATASET_META_KEYS = ('classes', 'thing_classes', 'stuff_classes', 'palette')


def plain_dataset_meta(metainfo: Dict[str, Any]) -> Dict[str, Any]:
    """The :data:`DATASET_META_KEYS` of ``metainfo`` as plain Python values.

    Names become tuples of ``str`` and the palette a list of ``(r, g, b)``
    int tuples, so that the release file loads with ``weights_only=True``
    and no allow-list (a runner's metainfo may hold numpy values).

    Args:
        metainfo (dict): A dataset's ``metainfo`` (keys in any case).

    Returns:
        dict: The keys of :data:`DATASET_META_KEYS` present in
        ``metainfo``.
    """
    metainfo = {str(key).lower(): value for key, value in metainfo.items()}
    dataset_meta = {}
    for key in DATASET_META_KEYS:
        value = metainfo.get(key)
        if value is None:
            continue
        if key == 'palette':
            dataset_meta[key] = [
                tuple(int(channel) for channel in colour) for colour in value
            ]
        else:
            dataset_meta[key] = tuple(str(name) for name in value)
    return dataset_meta


def dataset_meta_from_config(config: str) -> Dict[str, Any]:
    """Metainfo of the test dataset of ``config``, read without data.

    As mmengine's ``BaseDataset`` computes it: the class ``METAINFO``
    updated by the config's ``metainfo``. The annotation file is not read
    (the data root need not exist), so keys that a dataset only adds while
    loading (e.g. ``cat_ids``) are absent.

    Args:
        config (str): Config file.

    Returns:
        dict: The dataset's metainfo.

    Raises:
        ValueError: The config has no test (or val) dataset with a type.
    """
    from mmengine.config import Config

    from mmpanoptic_plus.registry import DATASETS
    from mmpanoptic_plus.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    dataset_cfg = None
    for loader in ('test_dataloader', 'val_dataloader'):
        dataset_cfg = (cfg.get(loader) or {}).get('dataset')
        if dataset_cfg is not None:
            break
    while isinstance(dataset_cfg, dict) and 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']  # wrappers, e.g. RepeatDataset
    if not isinstance(dataset_cfg, dict) or 'type' not in dataset_cfg:
        raise ValueError(f'{config} has no test or val dataset with a type')
    dataset_type = dataset_cfg['type']
    dataset_class = (
        DATASETS.get(dataset_type)
        if isinstance(dataset_type, str) else dataset_type)
    if dataset_class is None:
        raise ValueError(f'{config}: unknown dataset type {dataset_type}')
    # mmengine's own rule (class METAINFO, deep-copied, updated by the
    # config's metainfo or the file it names); building the dataset would
    # need its annotations.
    return dict(dataset_class._load_metainfo(dataset_cfg.get('metainfo')))


def publish_checkpoint(in_file: str,
                       out_file: str,
                       fp16: bool = False,
                       add_hash: bool = True,
                       config: Optional[str] = None) -> str:
    """Write the release version of ``in_file``.

    Args:
        in_file (str): Checkpoint saved by mmengine's runner (or any file
            holding a ``state_dict``, or a bare state dict).
        out_file (str): Output path, ``.pth`` recommended.
        fp16 (bool): Store floating-point tensors as float16.
        add_hash (bool): Append ``-<sha8>`` to the file name.
        config (str, optional): Config file; gives ``meta['dataset_meta']``
            when ``in_file`` stores none.

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
    dataset_meta = plain_dataset_meta(source_meta.get('dataset_meta') or {})
    if not dataset_meta and config is not None:
        dataset_meta = plain_dataset_meta(dataset_meta_from_config(config))
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    else:
        warnings.warn(f'{in_file} stores no dataset_meta and no --config '
                      'gives one: the release will not name its classes')
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
                             not args.no_hash, args.config)
    size = osp.getsize(out) / 2**20
    print(f'wrote {out} ({size:.2f} MiB)')
    return out


if __name__ == '__main__':
    main()
