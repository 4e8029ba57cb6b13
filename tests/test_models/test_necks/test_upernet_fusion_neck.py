# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""UPerNetFusionNeck: mmseg's UPerHead fusion without the classifier: the
same fused map as UPerHead._forward_feature, no conv_seg / loss left."""
import torch
from mmseg.models.decode_heads import UPerHead

from mmpanoptic_plus.models.necks import UPerNetFusionNeck
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

IN_CHANNELS = [8, 16, 32, 64]


def _levels(batch=2, size=32):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(batch, c, size >> i, size >> i, generator=gen)
        for i, c in enumerate(IN_CHANNELS)
    ]


def test_fused_map_equals_upernet_feature():
    neck = MODELS.build(
        dict(type='UPerNetFusionNeck', in_channels=IN_CHANNELS, channels=12))
    assert type(neck) is UPerNetFusionNeck
    assert not hasattr(neck, 'conv_seg') and not hasattr(neck, 'loss_decode')
    assert neck.dropout is None
    torch.manual_seed(1)
    reference = UPerHead(
        in_channels=IN_CHANNELS,
        in_index=[0, 1, 2, 3],
        channels=12,
        num_classes=3,
        norm_cfg=dict(type='BN', requires_grad=True))
    missing, unexpected = reference.load_state_dict(
        neck.state_dict(), strict=False)
    assert set(missing) == {'conv_seg.weight', 'conv_seg.bias'}
    assert not unexpected
    neck.eval()
    reference.eval()
    levels = _levels()
    with torch.no_grad():
        fused = neck(levels)
        expected = reference._forward_feature(levels)
    assert fused.shape == (2, 12, 32, 32)
    torch.testing.assert_close(fused, expected)


def test_every_parameter_gets_a_gradient():
    neck = MODELS.build(
        dict(type='UPerNetFusionNeck', in_channels=IN_CHANNELS, channels=12))
    neck(_levels()).square().mean().backward()
    for name, param in neck.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
