# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PISR panoptic encodings (Sec. 3.1-3.2): hand-computed E = S F^T, the
footnote-2 instance heatmaps on hand-built center/offset maps (each
normaliser; neighbouring instances kept apart; independent of the map size),
a naive-loop reference, top-K with more slots than centers (and than
pixels), zero centers, gradients."""
import math

import pytest
import torch

from mmpanoptic_plus.models.layers import (instance_encodings,
                                           instance_heatmaps_from_offsets,
                                           semantic_encodings)
from mmpanoptic_plus.models.postprocess import find_instance_centers
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
    """The ``'image'`` normaliser (largest vote distance over the map), kept
    for comparison."""
    center, offsets, thing = _single_center_case()
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, num_instances=3, threshold=0.1, nms_kernel=3,
        normalizer='image')
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
        center, offsets, thing, num_instances=4, threshold=0.1, nms_kernel=3,
        normalizer='image')
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


def _two_cars(height=128, width=256, noise=0.7):
    """Two thing instances (disks of radius 10 map pixels) whose centers are
    30 map pixels apart, on a stride-4 map of a 512x1024 crop. Their pixels
    vote for their own center up to ``noise`` map pixels per coordinate
    (trained offsets are close, not exact); stuff pixels vote for
    themselves (zero offsets, never trained).

    Returns:
        tuple: center heatmap, offsets, thing map, the two centers and the
        two (H, W) member masks.
    """
    gen = torch.Generator().manual_seed(0)
    centers = [(64, 100), (64, 130)]
    ys, xs = torch.meshgrid(
        torch.arange(float(height)), torch.arange(float(width)),
        indexing='ij')
    center = torch.zeros(1, 1, height, width)
    offsets = torch.zeros(1, 2, height, width)
    thing = torch.zeros(1, 1, height, width)
    masks = []
    for (cy, cx), score in zip(centers, (0.9, 0.8)):
        mask = (ys - cy).square() + (xs - cx).square() <= 10**2
        jitter = (torch.rand(2, height, width, generator=gen) * 2 - 1) * noise
        offsets[0, 0][mask] = (cy - ys + jitter[0])[mask]
        offsets[0, 1][mask] = (cx - xs + jitter[1])[mask]
        thing[0, 0][mask] = 1.
        center[0, 0, cy, cx] = score
        masks.append(mask)
    return center, offsets, thing, centers, masks


def test_default_heatmap_keeps_a_neighbour_30_pixels_away_apart():
    """Issue 10: the pixels of the car whose center is 30 map pixels away
    get weight below 0.5 in the first car's heatmap, the first car's own
    pixels stay near 1. The old normaliser (largest vote distance over the
    whole map, ``'image'``) gave the neighbour about 0.82 here."""
    center, offsets, thing, _, (own, other) = _two_cars()
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, num_instances=2, threshold=0.1, nms_kernel=3)
    assert valid.all()
    first, second = heatmaps[0]
    assert first[own].min() > 0.9
    assert first[other].max() < 0.5
    assert second[other].min() > 0.9 and second[own].max() < 0.5
    old, _ = instance_heatmaps_from_offsets(
        center, offsets, thing, 2, 0.1, 3, normalizer='image')
    assert old[0, 0][other].max() > 0.8


def test_instance_normalizer_keeps_neighbours_at_zero():
    center, offsets, thing, _, (own, other) = _two_cars()
    heatmaps, _ = instance_heatmaps_from_offsets(
        center, offsets, thing, 2, 0.1, 3, normalizer='instance')
    first = heatmaps[0, 0]
    assert torch.equal(first[other], torch.zeros_like(first[other]))
    # the own vote spread (<= 0.7 * sqrt(2) < 1) is below the 1-pixel floor
    assert first[own].min() > 0 and first[own].max() <= 1


@pytest.mark.parametrize('normalizer', [16.0, 'instance'])
def test_heatmaps_do_not_depend_on_the_map_size(normalizer):
    """The same two instances on the map of a 512x1024 crop and on that of
    a full 1024x2048 image (more stuff around them) give the same heatmaps
    where the maps overlap (the ``'image'`` normaliser does not)."""
    small = _two_cars(128, 256)
    large = _two_cars(256, 512)
    # same votes on the overlapping region (the jitter is drawn per map)
    large[1][..., :128, :256] = small[1]
    heat_small, _ = instance_heatmaps_from_offsets(
        *small[:3], 2, 0.1, 3, normalizer=normalizer)
    heat_large, _ = instance_heatmaps_from_offsets(
        *large[:3], 2, 0.1, 3, normalizer=normalizer)
    assert torch.allclose(heat_large[..., :128, :256], heat_small)
    if normalizer == 16.0:
        old_small, _ = instance_heatmaps_from_offsets(
            *small[:3], 2, 0.1, 3, normalizer='image')
        old_large, _ = instance_heatmaps_from_offsets(
            *large[:3], 2, 0.1, 3, normalizer='image')
        assert not torch.allclose(old_large[..., :128, :256], old_small)


def _naive_heatmaps(centers, valid, offsets, thing, normalizer):
    """Plain loops over centers and pixels (one image)."""
    _, height, width = offsets.shape
    num_slots = centers.size(0)
    heatmaps = torch.zeros(num_slots, height, width)
    votes = {}
    for y in range(height):
        for x in range(width):
            votes[y, x] = (y + offsets[0, y, x].item(),
                           x + offsets[1, y, x].item())

    def dist(k, pixel):
        vy, vx = votes[pixel]
        return math.hypot(centers[k, 0].item() - vy,
                          centers[k, 1].item() - vx)

    real = [k for k in range(num_slots) if valid[k]]
    for k in real:
        if normalizer == 'image':
            scale = max(max(dist(k, p) for p in votes), 1e-6)
        elif normalizer == 'instance':
            members = [
                p for p in votes if thing[0][p] > 0.5
                and min(real, key=lambda j: dist(j, p)) == k
            ]
            scale = max([dist(k, p) for p in members] + [1.0])
        else:
            scale = normalizer
        for (y, x) in votes:
            weight = min(max(1 - dist(k, (y, x)) / scale, 0.), 1.)
            heatmaps[k, y, x] = weight * thing[0, y, x]
    return heatmaps


@pytest.mark.parametrize('normalizer', [2.5, 'instance', 'image'])
def test_heatmaps_match_naive_loops(normalizer):
    gen = torch.Generator().manual_seed(3)
    center = torch.rand(1, 1, 6, 7, generator=gen)
    offsets = torch.randn(1, 2, 6, 7, generator=gen) * 2
    thing = (torch.rand(1, 1, 6, 7, generator=gen) > 0.3).float()
    heatmaps, valid = instance_heatmaps_from_offsets(
        center, offsets, thing, 4, 0.1, 3, normalizer=normalizer)
    centers, _, ref_valid = find_instance_centers(center, 0.1, 3, top_k=4)
    assert torch.equal(valid, ref_valid) and valid.sum() >= 2
    expected = _naive_heatmaps(centers[0], valid[0], offsets[0], thing[0],
                               normalizer)
    assert torch.allclose(heatmaps[0], expected, atol=1e-5)


def test_heatmap_normalizer_errors():
    center, offsets, thing = _single_center_case()
    for bad in ('largest', 0., -1., None, True):
        with pytest.raises(ValueError, match='normalizer'):
            instance_heatmaps_from_offsets(
                center, offsets, thing, 2, normalizer=bad)
