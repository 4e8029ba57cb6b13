# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The shipped CIAE checkpoint (demo/checkpoints/ciae_r18_synthetic-*.pth):
small enough to ship (fp16, <= 8 MB), carries its class names and its
memory embeddings, loads strictly into its config and segments synthetic
images it has never seen."""
import hashlib
import os.path as osp
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.runner import Runner

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(REPO_ROOT / 'configs' / 'ciae' / 'ciae_r18_synthetic.py')
CHECKPOINT = str(REPO_ROOT / 'demo' / 'checkpoints' /
                 'ciae_r18_synthetic-de96b89e.pth')


def test_checkpoint_file():
    assert osp.getsize(CHECKPOINT) <= 8 * 2**20
    with open(CHECKPOINT, 'rb') as file:
        sha = hashlib.sha256(file.read()).hexdigest()
    assert osp.splitext(CHECKPOINT)[0].endswith('-' + sha[:8])
    content = torch.load(CHECKPOINT, weights_only=True)
    assert set(content) == {'meta', 'state_dict'}
    assert content['meta']['fp16'] is True
    assert content['meta']['dataset_meta']['thing_classes'] == (
        'disc', 'square', 'triangle')
    state = content['state_dict']
    # the memory (1 merged thing row + 2 stuff rows, E = 32) and its
    # update counter t = T travel with the weights
    assert state['bbox_head.memory.embeddings'].shape == (3, 32)
    assert int(state['bbox_head.memory.num_updates']) == 4000


def test_checkpoint_segments_unseen_images(tmp_path):
    """PQ on 16 images of a seed never used in training (the README's
    figure is on 200 images of seed 1201; 16 vary more, hence the
    margin)."""
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic
    from mmpanoptic_plus.utils import register_all_modules
    register_all_modules()
    data_root = str(tmp_path / 'data') + '/'
    generate_synthetic_panoptic(data_root, 0, 16, size=(256, 256), seed=4242)
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset.data_root = data_root
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    cfg.load_from = CHECKPOINT
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader = None
    cfg.train_cfg = None
    cfg.optim_wrapper = None
    cfg.param_scheduler = None
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    metrics = Runner.from_cfg(cfg).test()
    assert metrics['panoptic/PQ'] >= 65.0
    assert metrics['panoptic/PQ_th'] >= 45.0
    assert metrics['panoptic/PQ_st'] >= 90.0
