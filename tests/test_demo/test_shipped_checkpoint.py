# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The checkpoint ``make demo`` runs (demo/run_default_demo.py's
DEFAULT_CHECKPOINT): small enough to ship, loads strictly into its config,
and is the one the demo's README describes. Its PQ on unseen images is
checked with every other shipped checkpoint in
test_registry_checkpoints.py."""
import hashlib
import importlib.util
import os.path as osp
import warnings
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def _demo_defaults():
    spec = importlib.util.spec_from_file_location(
        'demo_defaults', REPO_ROOT / 'demo' / 'run_default_demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return (str(REPO_ROOT / module.DEFAULT_CONFIG),
            str(REPO_ROOT / module.DEFAULT_CHECKPOINT))


def test_shipped_checkpoint_file():
    _, checkpoint = _demo_defaults()
    assert osp.isfile(checkpoint)
    assert osp.getsize(checkpoint) <= 10 * 2**20
    with open(checkpoint, 'rb') as file:
        sha = hashlib.sha256(file.read()).hexdigest()
    # name written by tools/model_converters/publish_model.py
    assert osp.splitext(checkpoint)[0].endswith('-' + sha[:8])
    # plain content: loads without any allow-list
    content = torch.load(checkpoint, weights_only=True)
    assert set(content) == {'meta', 'state_dict'}
    assert content['meta']['fp16'] is True
    # the class names and colours travel with the weights
    assert content['meta']['dataset_meta'] == dict(
        classes=('disc', 'square', 'triangle', 'sky', 'ground'),
        thing_classes=('disc', 'square', 'triangle'),
        stuff_classes=('sky', 'ground'),
        palette=[(220, 20, 60), (0, 0, 142), (250, 170, 30),
                 (70, 130, 180), (152, 118, 84)])


def test_shipped_checkpoint_names_its_classes():
    """The demo takes the class names from the file, not from the config:
    no 'stores no dataset_meta' warning."""
    from mmpanoptic_plus.apis import init_panoptic_model
    config, checkpoint = _demo_defaults()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = init_panoptic_model(config, checkpoint)
    assert not [w for w in caught if 'dataset_meta' in str(w.message)]
    assert model.dataset_meta['classes'] == ('disc', 'square', 'triangle',
                                             'sky', 'ground')
    assert model.dataset_meta['palette'][3] == (70, 130, 180)

