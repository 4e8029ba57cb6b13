# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PISREncoder (Sec. 3.3-3.4): shapes, the attention equations against a
naive reference, gradients to every parameter, the reweighting switch and
the masking of invalid instance slots."""
import pytest
import torch

from mmpanoptic_plus.models.layers import (PISREncoder, instance_encodings,
                                           semantic_encodings)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

C_IN, N, K, H, W = 6, 3, 4, 5, 7


def _encoder(**kwargs):
    cfg = dict(
        type='PISREncoder',
        in_channels=C_IN,
        num_semantic=N,
        num_instances=K,
        channels=5,
        reweight_channels=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _inputs(batch=2, num_valid=(2, 4), seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, C_IN, H, W, generator=gen)
    sem_probs = torch.randn(batch, N, H, W, generator=gen).softmax(1)
    heatmaps = torch.rand(batch, K, H, W, generator=gen)
    valid = torch.zeros(batch, K, dtype=torch.bool)
    for image, count in enumerate(num_valid):
        valid[image, :count] = True
    heatmaps = heatmaps * valid[..., None, None]
    return feats, sem_probs, heatmaps, valid


def test_output_shapes():
    encoder = _encoder()
    assert isinstance(encoder, PISREncoder)
    assert encoder(*_inputs()).shape == (2, C_IN, H, W)
    wider = _encoder(out_channels=9)
    assert wider(*_inputs()).shape == (2, 9, H, W)
    # layer layout: h 3x3, g_p 1x1 over the N + K affinity maps
    assert encoder.h.conv.kernel_size == (3, 3)
    assert encoder.g_p.conv.kernel_size == (1, 1)
    assert encoder.g_p.conv.in_channels == N + K
    assert encoder.g_s.in_features == C_IN and encoder.g_s.out_features == 5


def _reference(encoder, feats, sem_probs, heatmaps, valid):
    """The equations of Sec. 3.3-3.4 with explicit loops over encodings."""
    batch = feats.shape[0]
    e_pan = torch.cat([
        semantic_encodings(sem_probs, feats),
        instance_encodings(heatmaps, feats)
    ], 1)
    if encoder.reweight is not None:
        e_pan = e_pan * encoder.reweight(e_pan)  # (B, N + K, 1) weights
    keep = torch.cat([torch.ones(batch, N, dtype=torch.bool), valid], 1)
    h_feats = encoder.h(feats)  # (B, channels, H, W)
    f_sp = torch.zeros(batch, N + K, H, W)
    for b in range(batch):
        for k in range(N + K):
            if keep[b, k]:
                key = encoder.g_s(e_pan[b, k])  # (channels, )
                f_sp[b, k] = (key[:, None, None] * h_feats[b]).sum(0)
    mixed = encoder.g_p(f_sp)
    f_pan = torch.zeros(batch, encoder.out_channels, H, W)
    for b in range(batch):
        for k in range(N + K):
            if keep[b, k]:
                value = encoder.g_q(e_pan[b, k])  # (C_out, )
                f_pan[b] += value[:, None, None] * mixed[b, k]
    return f_pan


@pytest.mark.parametrize('use_reweighting', [True, False])
def test_forward_matches_naive_equations(use_reweighting):
    encoder = _encoder(use_reweighting=use_reweighting)
    # eval: BN uses running statistics, the same for both computations
    encoder.eval()
    inputs = _inputs()
    with torch.no_grad():
        assert torch.allclose(
            encoder(*inputs), _reference(encoder, *inputs), atol=1e-5)


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    encoder = _encoder()
    encoder.train()
    feats, sem_probs, heatmaps, valid = _inputs()
    feats.requires_grad_(True)
    sem_probs.requires_grad_(True)
    out = encoder(feats, sem_probs, heatmaps, valid)
    out.square().mean().backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    assert feats.grad.abs().sum() > 0 and sem_probs.grad.abs().sum() > 0


def test_reweighting_switch():
    torch.manual_seed(0)
    with_fc = _encoder()
    without_fc = _encoder(use_reweighting=False)
    assert without_fc.reweight is None
    assert not any('reweight' in n for n, _ in without_fc.named_parameters())
    extra = sum(p.numel() for p in with_fc.reweight.parameters())
    # 2-layer FC C_in -> 4 -> 1
    assert extra == (C_IN * 4 + 4) + (4 * 1 + 1)
    assert sum(p.numel() for p in with_fc.parameters()) - sum(
        p.numel() for p in without_fc.parameters()) == extra
    # same weights elsewhere
    missing, unexpected = without_fc.load_state_dict(
        with_fc.state_dict(), strict=False)[:2]
    assert not missing and all('reweight' in n for n in unexpected)
    with_fc.eval()
    without_fc.eval()
    inputs = _inputs()
    with torch.no_grad():
        reweighted = with_fc(*inputs)
        plain = without_fc(*inputs)
        assert not torch.allclose(reweighted, plain, atol=1e-4)
        encodings = with_fc.panoptic_encodings(*inputs[:3])
        new, weights = with_fc.reweight_encodings(encodings)
        assert weights.shape == (2, N + K)
        assert ((weights > 0) & (weights < 1)).all()
        assert torch.allclose(new, encodings * weights[..., None])
        # with the reweighting bypassed, the two modules agree exactly
        with_fc.reweight = None
        assert torch.allclose(with_fc(*inputs), plain, atol=1e-6)


def test_invalid_slots_do_not_contribute():
    encoder = _encoder()
    encoder.train()  # batch statistics: the masked maps must not leak in
    feats, sem_probs, heatmaps, valid = _inputs(num_valid=(1, 3))
    garbage = heatmaps.clone()
    garbage[0, 1:] = torch.rand(K - 1, H, W) * 5
    garbage[1, 3] = torch.rand(H, W) * 5
    torch.manual_seed(1)
    clean_out = encoder(feats, sem_probs, heatmaps, valid)
    garbage_out = encoder(feats, sem_probs, garbage, valid)
    assert torch.allclose(clean_out, garbage_out, atol=1e-5)


@pytest.mark.parametrize('num_valid', [(0, 0), (0, 4)])
def test_zero_centers_finite_outputs_and_gradients(num_valid):
    encoder = _encoder()
    encoder.train()
    feats, sem_probs, heatmaps, valid = _inputs(num_valid=num_valid)
    feats.requires_grad_(True)
    out = encoder(feats, sem_probs, heatmaps, valid)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    assert torch.isfinite(feats.grad).all()
    for name, param in encoder.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name


def test_input_errors():
    encoder = _encoder()
    feats, sem_probs, heatmaps, valid = _inputs()
    with pytest.raises(ValueError, match='num_instances'):
        encoder(feats, sem_probs, heatmaps[:, :2], valid[:, :2])
    with pytest.raises(ValueError, match='sem_probs'):
        encoder(feats, sem_probs[:, :2], heatmaps, valid)
    with pytest.raises(ValueError, match='channels'):
        encoder(feats[:, :3], sem_probs, heatmaps, valid)
    with pytest.raises(ValueError, match='inst_valid'):
        encoder(feats, sem_probs, heatmaps, valid[:1])
    with pytest.raises(ValueError, match='num_instances'):
        _encoder(num_instances=0)


def test_default_reweight_width():
    encoder = PISREncoder(in_channels=32, num_semantic=N, num_instances=K)
    assert encoder.reweight[0].out_features == 8  # C_in // 4
    assert encoder.out_channels == 32 and encoder.channels == 256
