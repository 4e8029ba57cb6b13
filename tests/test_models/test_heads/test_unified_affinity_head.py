# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import pytest
import torch

from mmpanoptic_plus.models.heads import UnifiedAffinityHead
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()


def _head(**kwargs):
    return UnifiedAffinityHead(
        extractor=dict(
            type='UPSNetSemanticHead',
            num_things_classes=0,
            num_stuff_classes=0,
            in_channels=8,
            feat_channels=4,
            conv_cfg=None,
            norm_cfg=dict(type='GN', num_groups=2)),
        channels=6,
        **kwargs)


def _levels():
    torch.manual_seed(0)
    return tuple(torch.randn(1, 8, 16 // 2**i, 24 // 2**i) for i in range(4))


@pytest.mark.parametrize('acts', [('softmax_channels', 'softmax_pixels'),
                                  ('relu', 'relu'), ('sigmoid', 'relu')])
def test_eq4_equals_naive_hw_by_hw_affinity(acts):
    head = _head(phi0_activation=acts[0], phi1_activation=acts[1])
    out = head(_levels())
    assert out['q'].shape == (1, 6, 16, 24)
    psi = torch.rand(5, 16, 24)
    p = head.apply_affinity(psi, out['phi0'][0], out['phi1'][0])
    # naive: A = phi0(Q) phi1(Q)^T formed explicitly (HW x HW), then A Psi
    emb0, emb1 = head.embeddings(out['phi0'][0], out['phi1'][0])
    affinity = emb0.t() @ emb1  # (N, N)
    assert affinity.shape == (16 * 24, 16 * 24)
    naive = psi.flatten(1) + (affinity @ psi.flatten(1).t()).t()
    torch.testing.assert_close(p.flatten(1), naive, rtol=1e-4, atol=1e-5)
    # and the loop form P_ik = Psi_ik + sum_j A_ij Psi_jk on a few entries
    for i, k in ((0, 0), (17, 3), (383, 4)):
        expected = psi.flatten(1)[k, i] + sum(
            affinity[i, j] * psi.flatten(1)[k, j] for j in range(0, 384))
        torch.testing.assert_close(p.flatten(1)[k, i], expected,
                                   rtol=1e-4, atol=1e-5)


def test_default_activations_are_normalised():
    head = _head()
    out = head(_levels())
    emb0, emb1 = head.embeddings(out['phi0'][0], out['phi1'][0])
    torch.testing.assert_close(emb0.sum(0), torch.ones(16 * 24))
    torch.testing.assert_close(emb1.sum(1), torch.ones(6))
    # a constant Psi stays within its range: the affinity term is a mean
    p = head.apply_affinity(torch.ones(2, 16, 24), out['phi0'][0],
                            out['phi1'][0])
    torch.testing.assert_close(p, torch.full((2, 16, 24), 2.0))


def test_gradient_reaches_extractor_and_phis():
    head = _head()
    out = head(_levels())
    psi = torch.rand(3, 16, 24)
    p = head.apply_affinity(psi, out['phi0'][0], out['phi1'][0])
    (p * torch.rand_like(p)).sum().backward()
    for module in (head.extractor.subnet[0].conv, head.extractor.conv_logits,
                   head.phi0, head.phi1):
        assert module.weight.grad.abs().sum() > 0


def test_checks():
    with pytest.raises(ValueError):
        _head(phi0_activation='tanh')
    with pytest.raises(ValueError):
        UnifiedAffinityHead(
            extractor=dict(
                type='UPSNetSemanticHead',
                num_things_classes=0,
                num_stuff_classes=0,
                out_channels=3),
            channels=6)
