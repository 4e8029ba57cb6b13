# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from unittest import mock

from mmengine.config import Config

from mmpanoptic_plus.utils.runner_env import setup_cpu_distributed


def test_cpu_setup_replaces_sync_bn_and_nccl():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
                heads=[dict(norm_cfg=dict(type='mmseg.SyncBN')),
                       dict(norm_cfg=dict(type='GN', num_groups=8))]),
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with mock.patch('torch.cuda.is_available', return_value=False):
        setup_cpu_distributed(cfg, 'none')
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert cfg.model.backbone.norm_cfg.requires_grad is True
    assert [h['norm_cfg']['type'] for h in cfg.model.heads] == ['BN', 'GN']
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_cuda_setup_leaves_config_alone():
    cfg = Config(
        dict(
            model=dict(norm_cfg=dict(type='SyncBN')),
            env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with mock.patch('torch.cuda.is_available', return_value=True):
        setup_cpu_distributed(cfg, 'pytorch')
    assert cfg.model.norm_cfg.type == 'SyncBN'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def test_teardown_destroys_the_process_group(tmp_path):
    import torch.distributed as dist

    from mmpanoptic_plus.utils.runner_env import teardown_distributed
    assert teardown_distributed() is False  # no group: nothing to do
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
        world_size=1)
    assert dist.is_initialized()
    assert teardown_distributed() is True
    assert not dist.is_initialized()


def test_exit_distributed_worker_exits_zero_with_flushed_output(tmp_path):
    """The hard exit keeps what was printed and logged, and returns 0."""
    import subprocess
    import sys
    log_file = tmp_path / 'run.log'
    script = (
        'import logging, sys\n'
        f'logging.basicConfig(filename={str(log_file)!r}, level=logging.INFO)\n'
        'logging.getLogger("x").info("logged line")\n'
        'print("printed line", end="")\n'
        'from mmpanoptic_plus.utils.runner_env import exit_distributed_worker\n'
        'exit_distributed_worker()\n'
        'print("never")\n')
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout == 'printed line'
    assert 'logged line' in log_file.read_text()
