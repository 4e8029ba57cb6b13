# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The checkpoint ``make demo`` runs (demo/run_default_demo.py's
DEFAULT_CHECKPOINT): one of the shipped checkpoints that
test_registry_checkpoints.py checks (file, strict loading, PQ on unseen
images), and the demo names its classes from it."""
import importlib.util
import os.path as osp
import warnings
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]


def _demo_defaults():
    spec = importlib.util.spec_from_file_location(
        'demo_defaults', REPO_ROOT / 'demo' / 'run_default_demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return (str(REPO_ROOT / module.DEFAULT_CONFIG),
            str(REPO_ROOT / module.DEFAULT_CHECKPOINT))


def test_shipped_checkpoint_is_tested_with_the_others():
    """The file checks (size, hash name, fp16, dataset_meta, strict
    loading, PQ on unseen images) of test_registry_checkpoints.py cover the
    demo's checkpoint because the registry names it, with the demo's
    config."""
    from mmengine.config import Config
    config, checkpoint = _demo_defaults()
    assert osp.isfile(checkpoint)
    entries = Config.fromfile(
        str(REPO_ROOT / 'configs' / 'compare' / 'methods.py')).methods
    pairs = {(str(REPO_ROOT / entry['synthetic_config']),
              str(REPO_ROOT / entry['checkpoint']))
             for entry in entries if entry['checkpoint'] is not None}
    assert (config, checkpoint) in pairs


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

