# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Shared pytest fixtures.

- ``fixtures_dir``: :class:`~pathlib.Path` of the real data samples
  (``../shared/fixtures`` next to the repository, or ``$MMPANOPTIC_FIXTURES``);
  tests using it are skipped when it does not exist, except under CI
  (``CI`` set), where ``shared/`` is always beside the clone and a missing
  folder is an error rather than silently untested code. Read-only: copy to
  ``tmp_path`` before writing.
- ``synthetic_root``: :class:`~pathlib.Path` of a small synthetic panoptic
  set generated once per session (8 train / 4 val images, 64x64, seed 0;
  layout of ``tools/dataset_converters/make_synthetic.py``). Read-only too.
- ``synthetic_dataset_meta``: the synthetic set's ``dataset_meta`` (classes
  and colours) written out by hand, not read from
  ``SyntheticPanopticDataset.METAINFO``: the oracle for what a published
  checkpoint must carry.
"""
import os
from pathlib import Path

import pytest

SYNTHETIC_NUM_TRAIN = 8
SYNTHETIC_NUM_VAL = 4
SYNTHETIC_SIZE = (64, 64)
SYNTHETIC_SEED = 0


@pytest.fixture(scope='session')
def synthetic_dataset_meta() -> dict:
    return dict(
        classes=('disc', 'square', 'triangle', 'sky', 'ground'),
        thing_classes=('disc', 'square', 'triangle'),
        stuff_classes=('sky', 'ground'),
        palette=[(220, 20, 60), (0, 0, 142), (250, 170, 30), (70, 130, 180),
                 (152, 118, 84)])


@pytest.fixture(scope='session')
def fixtures_dir() -> Path:
    override = os.environ.get('MMPANOPTIC_FIXTURES')
    path = Path(override) if override else (
        Path(__file__).resolve().parents[1].parent / 'shared' / 'fixtures')
    if not path.is_dir():
        if os.environ.get('CI'):
            pytest.fail(f'real data fixtures not found at {path} under CI')
        pytest.skip(f'real data fixtures not found at {path} '
                    '(set MMPANOPTIC_FIXTURES)')
    return path


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> Path:
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic
    root = tmp_path_factory.mktemp('synthetic')
    generate_synthetic_panoptic(
        str(root),
        SYNTHETIC_NUM_TRAIN,
        SYNTHETIC_NUM_VAL,
        size=SYNTHETIC_SIZE,
        seed=SYNTHETIC_SEED)
    return root
