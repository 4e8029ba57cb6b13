# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/train.py and tools/test.py: options, and a real tiny run (train,
load, resume, test with drawings and dumped results)."""
import argparse
import glob
import json
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils.runner_env import setup_cpu_distributed

NO_CUDA = not torch.cuda.is_available()


def _train_args(config, **overrides):
    args = dict(
        config=config,
        work_dir=None,
        amp=False,
        auto_scale_lr=False,
        resume=None,
        cfg_options=None,
        launcher='none',
        local_rank=0)
    args.update(overrides)
    return argparse.Namespace(**args)


def _run(tool, monkeypatch, argv):
    monkeypatch.setattr('sys.argv', [tool.__file__] + argv)
    tool.main()


def test_train_config_options(train_tool, tiny_train_config, tmp_path):
    cfg = train_tool.build_train_config(_train_args(tiny_train_config))
    assert cfg.work_dir == osp.join('./work_dirs',
                                    'panoptic-fpn_tiny_synthetic')
    assert cfg.launcher == 'none' and cfg.resume is False
    if NO_CUDA:
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'

    cfg = train_tool.build_train_config(
        _train_args(
            tiny_train_config,
            work_dir=str(tmp_path / 'wd'),
            amp=True,
            auto_scale_lr=True,
            resume='auto',
            cfg_options={
                'train_cfg.max_iters': 7,
                'auto_scale_lr': dict(enable=False, base_batch_size=8)
            }))
    assert cfg.work_dir == str(tmp_path / 'wd')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.train_cfg.max_iters == 7
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=8)

    checkpoint = tmp_path / 'some.pth'
    checkpoint.write_bytes(b'')
    cfg = train_tool.build_train_config(
        _train_args(tiny_train_config, resume=str(checkpoint)))
    assert cfg.resume is True and cfg.load_from == str(checkpoint)


def test_train_bad_input_is_explained(train_tool, tiny_train_config,
                                      tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'):
        train_tool.build_train_config(_train_args(str(tmp_path / 'no.py')))
    with pytest.raises(FileNotFoundError, match='resume from not found'):
        train_tool.build_train_config(
            _train_args(tiny_train_config, resume=str(tmp_path / 'no.pth')))
    no_scale = tmp_path / 'no_scale.py'
    no_scale.write_text(f'_base_ = [{tiny_train_config!r}]\n'
                        'auto_scale_lr = None\n')
    with pytest.raises(RuntimeError, match='base_batch_size'):
        train_tool.build_train_config(
            _train_args(str(no_scale), auto_scale_lr=True))


@pytest.mark.skipif(not NO_CUDA, reason='the CPU fallback only')
def test_cpu_distributed_setup(monkeypatch):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_cpu_distributed(cfg, 'slurm')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    # DDP must get no device ids for a CPU module
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=False,
        device_ids=None)

    cfg = Config(
        dict(
            env_cfg=dict(dist_cfg=dict(backend='mpi')),
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel',
                find_unused_parameters=True)))
    setup_cpu_distributed(cfg, 'mpi')
    assert cfg.env_cfg.dist_cfg.backend == 'mpi'  # a CPU backend: kept
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    assert cfg.model_wrapper_cfg.device_ids is None

    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_cpu_distributed(cfg, 'none')
    assert 'model_wrapper_cfg' not in cfg

    monkeypatch.delenv('MASTER_PORT', raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        setup_cpu_distributed(
            Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl')))),
            'pytorch')


def _linear_lr(step):
    """The synthetic config's learning rate after ``step`` scheduler steps:
    AdamW lr 1e-3 times mmengine's LinearLR factor, 0.01 -> 1 over its
    ``end - begin - 1 = 199`` steps."""
    return 1e-3 * (0.01 + 0.99 * step / 199)


def test_train_load_resume_and_test(train_tool, test_tool, tiny_train_config,
                                    tmp_path, monkeypatch):
    work_dir = tmp_path / 'work_dir'
    _run(train_tool, monkeypatch,
         [tiny_train_config, '--work-dir',
          str(work_dir)])
    first = work_dir / 'iter_2.pth'
    assert first.is_file()

    # mmengine's load_checkpoint (torch.load, weights_only by default)
    saved = torch.load(str(first))
    assert saved['meta']['iter'] == 2
    assert saved['optimizer']['param_groups'][0]['lr'] == pytest.approx(
        _linear_lr(2), rel=1e-6)
    cfg = Config.fromfile(tiny_train_config)
    init_default_scope('mmpanoptic_plus')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(first), map_location='cpu')
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved['state_dict'][name]), name

    # --resume (auto: the latest checkpoint) continues from iteration 2
    _run(train_tool, monkeypatch, [
        tiny_train_config, '--work-dir',
        str(work_dir), '--resume', '--cfg-options', 'train_cfg.max_iters=4',
        'default_hooks.checkpoint.interval=4'
    ])
    resumed = torch.load(str(work_dir / 'iter_4.pth'))
    assert resumed['meta']['iter'] == 4
    # the scheduler state came back: 4 steps, not 2 twice
    assert resumed['optimizer']['param_groups'][0]['lr'] == pytest.approx(
        _linear_lr(4), rel=1e-6)
    assert [s['_global_step'] for s in resumed['param_schedulers']] == [4, 4]
    losses = resumed['message_hub']['log_scalars']['train/loss']
    assert len(losses.data[0]) == 4  # 2 restored + 2 new
    logs = sorted(glob.glob(str(work_dir / '*' / '*.log')))
    assert 'resumed epoch: 0, iter: 2' in open(logs[-1]).read()

    # test with drawings and dumped predictions
    test_dir = tmp_path / 'test_dir'
    out = tmp_path / 'results.pkl'
    _run(test_tool, monkeypatch, [
        tiny_train_config,
        str(work_dir / 'iter_4.pth'), '--work-dir',
        str(test_dir), '--show-dir', 'drawings', '--out',
        str(out)
    ])
    drawings = glob.glob(str(test_dir / '*' / 'drawings' / '*.png'))
    assert len(drawings) == 4  # the 4 val images of synthetic_root
    with open(out, 'rb') as file:
        results = pickle.load(file)
    assert len(results) == 4
    for result in results:
        panoptic = result['pred_panoptic_seg']['sem_seg']
        assert tuple(panoptic.shape) == (1, 64, 64)
        assert 'gt_panoptic_seg' not in result  # the dumper drops the GT
    metrics_files = glob.glob(str(test_dir / '*' / '*.json'))
    metrics = json.loads(open(metrics_files[0]).read())
    assert 0.0 <= metrics['panoptic/PQ'] <= 100.0


def test_test_bad_input_is_explained(test_tool, tiny_train_config, tmp_path,
                                     monkeypatch):
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    args = argparse.Namespace(
        config=tiny_train_config,
        checkpoint=str(checkpoint),
        work_dir=None,
        out=None,
        show=False,
        show_dir=None,
        wait_time=2,
        cfg_options=None,
        launcher='none',
        tta=True,
        local_rank=0)
    with pytest.raises(RuntimeError, match='tta_model and tta_pipeline'):
        test_tool.build_test_config(args)
    args.tta, args.out = False, str(tmp_path / 'results.json')
    with pytest.raises(ValueError, match='.pkl'):
        test_tool.build_test_config(args)
    args.out, args.checkpoint = None, str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        test_tool.build_test_config(args)
    args.checkpoint, args.show_dir = str(checkpoint), 'drawings'
    cfg = test_tool.build_test_config(args)
    assert cfg.load_from == str(checkpoint)
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'drawings'
