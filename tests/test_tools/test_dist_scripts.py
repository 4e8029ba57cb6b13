# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/dist_train.sh and tools/dist_test.sh start 2 real processes (gloo
on a CPU machine) that train, save a checkpoint and test it."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from mmpanoptic_plus.utils import allow_mmengine_checkpoint_globals

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _run_script(script, cwd, *args):
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable)
    completed = subprocess.run(['bash', str(REPO_ROOT / 'tools' / script)] +
                               [str(arg) for arg in args],
                               env=env,
                               # mmengine's result collection writes
                               # .dist_test/ into the working directory
                               cwd=str(cwd),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stdout[-5000:]
    return completed.stdout


def test_dist_train_and_test_with_two_processes(tiny_train_config, tmp_path):
    work_dir = tmp_path / 'work_dir'
    output = _run_script('dist_train.sh', tmp_path, tiny_train_config, 2,
                         '--work-dir', work_dir)
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # the world size, GPUs or not
    if not torch.cuda.is_available():
        # printed by each of the two processes before the runner starts
        assert output.count('distributed backend nccl -> gloo') == 2
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()
    allow_mmengine_checkpoint_globals()
    saved = torch.load(str(checkpoint))
    assert saved['meta']['iter'] == 2
    # DDP's model is saved unwrapped (no `module.` prefix)
    assert not any(key.startswith('module.') for key in saved['state_dict'])

    output = _run_script('dist_test.sh', tmp_path, tiny_train_config,
                         checkpoint, 2, '--work-dir', tmp_path / 'test_dir')
    assert 'Distributed training: True' in output
    # the 4 val images, split over the 2 processes, all evaluated
    assert 'Iter(test) [2/2]' in output
    assert 'panoptic/PQ' in output
