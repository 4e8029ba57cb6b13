# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Fixtures of the tools' tests: a tiny training config on the synthetic set,
and the tool scripts loaded as modules."""
import functools
import importlib.util
import os.path as osp
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# The repository's Panoptic FPN R18 synthetic config, cut down: 2 images a
# batch, no workers, 2 iterations, a checkpoint every 2.
TINY_TRAIN_CONFIG = '''
_base_ = [{base!r}]
data_root = {data_root!r}
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=2))
'''


@pytest.fixture
def tiny_train_config(tmp_path, synthetic_root) -> str:
    """Path of the tiny config (in ``tmp_path``)."""
    path = tmp_path / 'panoptic-fpn_tiny_synthetic.py'
    path.write_text(
        TINY_TRAIN_CONFIG.format(
            base=str(REPO_ROOT / 'configs' / 'panoptic_fpn' /
                     'panoptic-fpn_r18_synthetic.py'),
            data_root=str(synthetic_root) + '/'))
    return str(path)


@functools.lru_cache()
def _load_tool(relative_path: str):
    """Import a script of ``tools/`` as a module (they are not a package)."""
    path = REPO_ROOT / 'tools' / relative_path
    name = 'tool_' + osp.splitext(relative_path)[0].replace('/', '_')
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def train_tool():
    """``tools/train.py`` as a module."""
    return _load_tool('train.py')


@pytest.fixture
def test_tool():
    """``tools/test.py`` as a module."""
    return _load_tool('test.py')


@pytest.fixture
def benchmark_tool():
    """``tools/analysis_tools/benchmark.py`` as a module."""
    return _load_tool('analysis_tools/benchmark.py')


@pytest.fixture
def compare_tool():
    """``tools/analysis_tools/compare_methods.py`` as a module."""
    return _load_tool('analysis_tools/compare_methods.py')


@pytest.fixture
def get_flops_tool():
    """``tools/analysis_tools/get_flops.py`` as a module."""
    return _load_tool('analysis_tools/get_flops.py')
