# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Checkpoints of real runner runs load under torch.load(weights_only=True),
and malicious ones are still refused."""
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch.utils.data import Dataset

from mmpanoptic_plus.utils import allow_mmengine_checkpoint_globals
from mmpanoptic_plus.utils.checkpoint import _history_buffer_getattr


class _LinearModel(BaseModel):
    """Linear regression: the smallest model the runner can train."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        outputs = self.linear(inputs).squeeze(1)
        if mode == 'loss':
            return dict(loss=((outputs - targets)**2).mean())
        return outputs


class _PointsDataset(Dataset):
    metainfo = dict(classes=('thing', 'stuff'), palette=[(1, 2, 3)])

    def __len__(self):
        return 8

    def __getitem__(self, index):
        point = torch.tensor([float(index), 1.0])
        return dict(inputs=point, targets=point.sum())


def _train(work_dir, max_iters, resume=False, load_from=None):
    """A real (tiny) runner training: SGD with momentum (optimizer state),
    warm-up + steps (scheduler state), message hub with its logs."""
    runner = Runner(
        model=_LinearModel(),
        work_dir=str(work_dir),
        experiment_name=f'linear_{max_iters}_{resume}',
        train_dataloader=dict(
            dataset=_PointsDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=2),
            dict(
                type='MultiStepLR', milestones=[3], by_epoch=False,
                end=10)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        load_from=load_from,
        default_scope='mmengine')
    runner.train()
    return runner


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('linear_run')
    _train(work_dir, max_iters=4)
    return work_dir / 'iter_4.pth'


@pytest.fixture
def only_torch_default_globals():
    """Run a test with torch's default allow-list, then restore ours."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


def test_runner_checkpoint_is_refused_without_allow_list(
        runner_checkpoint, only_torch_default_globals):
    # the failure this module fixes: mmengine calls torch.load without
    # weights_only, and torch's default (True) refuses the runner's pickle
    unsafe = set(
        torch.serialization.get_unsafe_globals_in_checkpoint(
            str(runner_checkpoint)))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    assert 'builtins.getattr' in unsafe
    assert 'numpy.ndarray' in unsafe
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        load_checkpoint(_LinearModel(), str(runner_checkpoint))


def test_allow_list_covers_runner_checkpoint(runner_checkpoint):
    names = allow_mmengine_checkpoint_globals()
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
        str(runner_checkpoint))
    assert unsafe == []
    # exactly what the pickle names (both numpy module spellings), plus the
    # dtype classes the unpickler checks on BUILD
    assert set(names) >= {
        'numpy.ndarray', 'numpy.dtype', 'builtins.getattr',
        'mmengine.logging.history_buffer.HistoryBuffer',
        'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar'
    }
    assert not any(name.startswith(('os.', 'posix.', 'subprocess.'))
                   for name in names)

    model = _LinearModel()
    checkpoint = load_checkpoint(model, str(runner_checkpoint))
    saved = torch.load(str(runner_checkpoint))  # weights_only by default
    assert torch.equal(model.linear.weight,
                       saved['state_dict']['linear.weight'])
    assert checkpoint['meta']['iter'] == 4
    assert checkpoint['meta']['dataset_meta']['classes'] == ('thing', 'stuff')
    # optimizer and scheduler state for --resume
    assert len(checkpoint['optimizer']['state']) == 2  # weight, bias
    assert checkpoint['param_schedulers'][1]['last_step'] == 4
    # the message hub's log buffers come back as HistoryBuffers with values
    loss_log = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss_log, HistoryBuffer)
    values, counts = loss_log.data
    assert values.dtype == np.float64 and len(values) == 4
    assert np.array_equal(counts, np.ones(4, dtype=np.int64))
    assert loss_log.mean() == pytest.approx(values.mean())
    assert loss_log.statistics('current') == pytest.approx(values[-1])


def test_allow_is_idempotent():
    first = allow_mmengine_checkpoint_globals()
    count = len(torch.serialization.get_safe_globals())
    second = allow_mmengine_checkpoint_globals()
    assert first == second
    assert len(torch.serialization.get_safe_globals()) == count


def test_resume_continues_from_saved_iteration(tmp_path):
    allow_mmengine_checkpoint_globals()
    first = _train(tmp_path, max_iters=2)
    weight_after_2 = first.model.linear.weight.detach().clone()
    resumed = _train(
        tmp_path, max_iters=4, resume=True,
        load_from=str(tmp_path / 'iter_2.pth'))
    assert resumed.iter == 4
    assert (tmp_path / 'iter_4.pth').is_file()
    checkpoint = torch.load(str(tmp_path / 'iter_4.pth'))
    assert checkpoint['meta']['iter'] == 4
    # the schedulers went on counting from 2, and the step at 3 was taken
    steps = [s['_global_step'] for s in checkpoint['param_schedulers']]
    assert steps == [4, 4]
    assert checkpoint['param_schedulers'][1]['last_step'] == 4
    assert checkpoint['optimizer']['param_groups'][0]['lr'] == \
        pytest.approx(0.001)
    # training moved the weights on from the resumed ones
    assert not torch.equal(resumed.model.linear.weight, weight_after_2)
    # two runs' losses in the hub: 2 restored from the checkpoint, 2 new
    loss_log = checkpoint['message_hub']['log_scalars']['train/loss']
    assert len(loss_log.data[0]) == 4


class _CallsSystem:
    """Unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _CallsGetattr:
    """Unpickling it asks getattr for a non-statistic attribute."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'update')


def _save_checkpoint(path, payload):
    torch.save(
        dict(
            meta=dict(iter=1, seed=np.int64(3)),
            state_dict=_LinearModel().state_dict(),
            payload=payload), str(path))


def test_malicious_checkpoint_is_still_refused(tmp_path):
    allow_mmengine_checkpoint_globals()
    marker = tmp_path / 'pwned'
    checkpoint = tmp_path / 'malicious.pth'
    _save_checkpoint(checkpoint, _CallsSystem(marker))
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_checkpoint(_LinearModel(), str(checkpoint))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(checkpoint))
    assert not marker.exists()


def test_getattr_stand_in_only_gives_statistic_methods(tmp_path):
    allow_mmengine_checkpoint_globals()
    checkpoint = tmp_path / 'getattr.pth'
    _save_checkpoint(checkpoint, _CallsGetattr())
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        torch.load(str(checkpoint))

    assert _history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for obj, name in [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                      (np.ndarray, 'tofile'), (os, 'system'),
                      (HistoryBuffer, '__class__')]:
        with pytest.raises(pickle.UnpicklingError):
            _history_buffer_getattr(obj, name)
