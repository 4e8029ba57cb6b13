# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE memory embeddings: the momentum schedule of Eq. 13 at t = 0, T/2, T,
the update of Eq. 14 with values, checkpointed buffers, and the same memory
on two ranks after an update from different batches (gloo, 2 processes)."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mmpanoptic_plus.models.heads import CIAEMemoryEmbeddings, memory_momentum


def test_momentum_schedule_values():
    total = 90000
    assert memory_momentum(0, total) == pytest.approx(1 - 1e-4, abs=1e-15)
    assert memory_momentum(total // 2, total) == pytest.approx(
        1 - 1e-4 / 8, abs=1e-15)
    assert memory_momentum(total, total) == 1.0
    assert memory_momentum(2 * total, total) == 1.0  # clamped
    assert memory_momentum(total // 4, total) == pytest.approx(
        1 - 1e-4 * 0.75**3, abs=1e-15)
    with pytest.raises(ValueError):
        memory_momentum(0, 0)


def _memory(total=8):
    memory = CIAEMemoryEmbeddings(3, 2, total_iters=total)
    memory.embeddings.copy_(torch.tensor([[1., 0.], [0., 1.], [0.6, 0.8]]))
    return memory


@pytest.mark.parametrize('step', [0, 4, 8])
def test_update_values_at_t0_half_and_end(step):
    memory = _memory()
    memory.num_updates.fill_(step)
    lam = {0: 1 - 1e-4, 4: 1 - 1e-4 / 8, 8: 1.0}[step]
    assert memory.momentum() == pytest.approx(lam, abs=1e-15)
    means = torch.tensor([[0., 3.], [5., 5.], [1., 1.]])
    present = torch.tensor([True, False, True])
    before = memory.embeddings.clone()
    memory.update(means, present)
    expected = before.clone()
    for row in (0, 2):
        unit_mean = means[row] / means[row].norm()
        mixed = lam * before[row] + (1 - lam) * unit_mean
        expected[row] = mixed / mixed.norm()
    torch.testing.assert_close(memory.embeddings, expected)
    assert int(memory.num_updates) == step + 1
    # absent category untouched; unit rows
    torch.testing.assert_close(memory.embeddings[1], before[1])
    torch.testing.assert_close(memory.embeddings.norm(dim=1),
                               torch.ones(3))


def test_update_moves_towards_mean_with_large_gap():
    memory = _memory()
    memory.momentum_gap = 1.0  # lambda_0 = 0: M_t = M_c
    memory.update(torch.tensor([[0., 2.], [0., 0.], [0., 0.]]),
                  torch.tensor([True, False, False]))
    torch.testing.assert_close(memory.embeddings[0], torch.tensor([0., 1.]))


def test_buffers_are_in_state_dict_and_not_parameters():
    memory = CIAEMemoryEmbeddings(4, 8, total_iters=10)
    state = memory.state_dict()
    assert set(state) == {'embeddings', 'num_updates'}
    assert list(memory.parameters()) == []
    torch.testing.assert_close(memory.embeddings.norm(dim=1), torch.ones(4))
    other = CIAEMemoryEmbeddings(4, 8, total_iters=10)
    other.load_state_dict(state)
    torch.testing.assert_close(other.embeddings, memory.embeddings)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _rank_update(rank, port, out_dir):
    os.environ['OMP_NUM_THREADS'] = '1'
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=2)
    try:
        memory = _memory()
        memory.momentum_gap = 0.5  # visible steps
        if rank == 0:
            means = torch.tensor([[2., 0.], [0., 0.], [0., 1.]])
            present = torch.tensor([True, False, True])
        else:
            means = torch.tensor([[0., 4.], [0., 0.], [0., 0.]])
            present = torch.tensor([True, False, False])
        memory.update(means, present)
        torch.save(memory.embeddings, os.path.join(out_dir, f'{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_two_ranks_hold_the_same_memory(tmp_path):
    mp.spawn(
        _rank_update, args=(_free_port(), str(tmp_path)), nprocs=2,
        join=True)
    rank0 = torch.load(tmp_path / '0.pth')
    rank1 = torch.load(tmp_path / '1.pth')
    assert torch.equal(rank0, rank1)
    # row 0: mean of the two ranks' unit means; row 2: rank 0 only
    lam = 0.5
    start = torch.tensor([[1., 0.], [0., 1.], [0.6, 0.8]])
    row0 = F.normalize(
        lam * start[0] + (1 - lam) * torch.tensor([0.5, 0.5]), dim=0)
    row2 = F.normalize(
        lam * start[2] + (1 - lam) * torch.tensor([0., 1.]), dim=0)
    torch.testing.assert_close(rank0[0], row0)
    torch.testing.assert_close(rank0[1], start[1])
    torch.testing.assert_close(rank0[2], row2)
