# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PISR panoptic encodings (Sec. 3.1-3.2): hand-computed E = S F^T, the
footnote-2 instance heatmaps on a hand-built center/offset map, top-K with
more slots than centers (and than pixels), zero centers, gradients."""
import math

import pytest
import torch

from mmpanoptic_plus.models.layers import (instance_encodings,
                                           instance_heatmaps_from_offsets,
                                           semantic_encodings)
from mmpanoptic_plus.models.utils.segment_embeddings import region_encodings


def test_semantic_encodings_hand_computed():
    # 1 image, 2 classes, 2 channels, 1x3 pixels
    sem_probs = torch.tensor([[1., 0., .5], [0., 1., .5]]).view(1, 2, 1, 3)
    feats = torch.tensor([[1., 2., 3.], [10., 20., 30.]]).view(1, 2, 1, 3)
    raw = semantic_encodings(sem_probs, feats, normalize=False)
    # class 0: 1 * (1, 10) + 0.5 * (3, 30); class 1: (2, 20) + 0.5 * (3, 30)
    assert torch.allclose(raw, torch.tensor([[[2.5, 25.], [3.5, 35.]]]))
    # normalised: each class map sums to 1.5 over the pixels
    normalized = semantic_encodings(sem_probs, feats)
    assert torch.allclose(normalized, raw / 1.5)


def test_encodings_match_naive_loops():
    gen = torch.Generator().manual_seed(0)
    sem_probs = torch.rand(2, 3, 4, 5, generator=gen).softmax(1)
    feats = torch.randn(2, 6, 4, 5, generator=gen)
    expected = torch.zeros(2, 3, 6)
    for b in range(2):
        for n in range(3):
            total = sem_probs[b, n].sum()
            for c in range(6):
                expected[b, n, c] = (sem_probs[b, n] * feats[b, c]).sum() / \
                    total
    assert torch.allclose(semantic_encodings(sem_probs, feats), expected,
                          atol=1e-6)
    # E_ins = I F^T is the same product of other regions
    assert torch.allclose(instance_encodings(sem_probs, feats), expected,
                          atol=1e-6)
    assert torch.allclose(region_encodings(sem_probs, feats), expected,
                          atol=1e-6)


def test_zero_region_gives_zero_encoding_without_nan():
    feats = torch.randn(1, 4, 3, 3)
    heatmaps = torch.zeros(1, 2, 3, 3)
    heatmaps[0, 0, 1, 1] = 2.
    encodings = instance_encodings(heatmaps, feats)
    assert torch.allclose(encodings[0, 0], feats[0, :, 1, 1])
    assert torch.equal(encodings[0, 1], torch.zeros(4))


def test_encodings_shape_errors():
    with pytest.raises(ValueError, match='spatial size'):
        semantic_encodings(torch.rand(1, 2, 4, 4), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match='4-D'):
        semantic_encodings(torch.rand(2, 4, 4), torch.rand(1, 3, 4, 4))


def _single_center_case():
    """3x4 map, one center at (1, 1). Columns 0-1 vote exactly for it,
    columns 2-3 vote for themselves (zero offset)."""
    center = torch.zeros(1, 1, 3, 4)
    center[0, 0, 1, 1] = 0.9
    ys, xs = torch.meshgrid(
        torch.arange(3.), torch.arange(4.), indexing='ij')
    offsets = torch.zeros(1, 2, 3, 4)
    left = xs < 2
    offsets[0, 0][left] = (1 - ys)[left]
    offsets[0, 1][left] = (1 - xs)[left]
    thing = torch.ones(1, 1, 3, 4)
    thing[0, 0, 0, 0] = 0.5
    return center, offsets, thing


def test_footnote2_heatmap_hand_computed():
    center, offsets, thing = _single_center_case()
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, num_instances=3, threshold=0.1, nms_kernel=3)
    assert heatmaps.shape == (1, 3, 3, 4)
    assert valid.tolist() == [[True, False, False]]
    # distances of the votes to (1, 1): 0 on columns 0-1; the farthest
    # votes are (0, 3) and (2, 3) at sqrt(5)
    r5 = math.sqrt(5)
    expected = torch.tensor(
        [[0.5 * 1, 1, 1 - math.sqrt(2) / r5, 1 - r5 / r5],
         [1, 1, 1 - 1 / r5, 1 - 2 / r5],
         [1, 1, 1 - math.sqrt(2) / r5, 1 - r5 / r5]])
    assert torch.allclose(heatmaps[0, 0], expected, atol=1e-6)
    # empty slots are all-zero
    assert torch.equal(heatmaps[0, 1:], torch.zeros(2, 3, 4))


def test_top_k_orders_centers_and_applies_nms():
    """Two peaks (scores 0.5 at (0, 0), 0.8 at (2, 3)) and a weaker
    neighbour of the second one, removed by the 3x3 NMS."""
    center = torch.zeros(1, 1, 3, 4)
    center[0, 0, 0, 0] = 0.5
    center[0, 0, 2, 3] = 0.8
    center[0, 0, 2, 2] = 0.7  # suppressed by (2, 3)
    ys, xs = torch.meshgrid(
        torch.arange(3.), torch.arange(4.), indexing='ij')
    # every pixel votes for (2, 3)
    offsets = torch.stack([2 - ys, 3 - xs])[None]
    thing = torch.ones(1, 1, 3, 4)
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, num_instances=4, threshold=0.1, nms_kernel=3)
    assert valid.tolist() == [[True, True, False, False]]
    # slot 0 is the strongest center (2, 3): every vote is on it; with all
    # distances 0 the normaliser is clamped and the heatmap is 1 everywhere
    assert torch.allclose(heatmaps[0, 0], torch.ones(3, 4))
    # slot 1 is (0, 0): all votes at distance sqrt(13), the largest: 0
    assert torch.allclose(heatmaps[0, 1], torch.zeros(3, 4))
    assert torch.equal(heatmaps[0, 2:], torch.zeros(2, 3, 4))


def test_more_slots_than_pixels_and_batch():
    """K = 20 slots on a 12-pixel map; image 1 has no center at all."""
    center, offsets, thing = _single_center_case()
    center = torch.cat([center, torch.zeros_like(center)])
    offsets = torch.cat([offsets, offsets])
    thing = torch.cat([thing, thing])
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, num_instances=20, threshold=0.1, nms_kernel=3)
    assert heatmaps.shape == (2, 20, 3, 4) and valid.shape == (2, 20)
    assert valid[0].sum() == 1 and valid[0, 0]
    assert not valid[1].any()
    assert torch.equal(heatmaps[1], torch.zeros(20, 3, 4))
    single, _ = instance_heatmaps_from_offsets(
        center[:1], offsets[:1], thing[:1], 1, 0.1, 3)
    assert torch.allclose(heatmaps[0, 0], single[0, 0])


def test_zero_centers_give_zero_encodings_and_finite_gradients():
    feats = torch.randn(1, 5, 3, 4, requires_grad=True)
    thing = torch.rand(1, 1, 3, 4, requires_grad=True)
    heatmaps, valid = instance_heatmaps_from_offsets(
        torch.full((1, 1, 3, 4), 0.05), torch.randn(1, 2, 3, 4), thing,
        num_instances=4, threshold=0.1, nms_kernel=3)
    assert not valid.any()
    encodings = instance_encodings(heatmaps, feats)
    assert torch.equal(encodings, torch.zeros(1, 4, 5))
    encodings.sum().backward()
    assert torch.isfinite(feats.grad).all() and torch.isfinite(
        thing.grad).all()


def test_gradients_through_thing_map_not_through_geometry():
    """A vote exactly on its center (distance 0) must not produce NaN: the
    distance uses detached offsets; the thing map keeps its gradient."""
    center, offsets, thing = _single_center_case()
    offsets.requires_grad_(True)
    thing.requires_grad_(True)
    feats = torch.randn(1, 2, 3, 4)
    heatmaps, _ = instance_heatmaps_from_offsets(center, offsets, thing, 2,
                                                 0.1, 3)
    instance_encodings(heatmaps, feats).square().sum().backward()
    assert offsets.grad is None
    assert torch.isfinite(thing.grad).all() and thing.grad.abs().sum() > 0


def test_heatmap_input_errors():
    center, offsets, thing = _single_center_case()
    with pytest.raises(ValueError, match='offsets'):
        instance_heatmaps_from_offsets(center, offsets[:, :1], thing, 2)
    with pytest.raises(ValueError, match='thing_prob'):
        instance_heatmaps_from_offsets(center, offsets, thing[..., :2], 2)
    with pytest.raises(ValueError, match='num_instances'):
        instance_heatmaps_from_offsets(center, offsets, thing, 0)
