# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Segment embedding ops against naive loops: sums, counts and means of a
segment-id map (random maps, an empty segment, ignore pixels, dtype kept),
L2-normalised means, soft-mask encodings, S = P V^T and its argmax."""
import pytest
import torch

from mmpanoptic_plus.models.utils.segment_embeddings import (
    assign_pixels_to_segments, region_encodings, segment_means,
    segment_similarity, segment_sums)


def _random_case(seed=0, batch=2, channels=3, height=5, width=6, k=4,
                 ignore=255, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, channels, height, width, generator=gen)
    ids = torch.randint(0, k, (batch, height, width), generator=gen)
    ids[torch.rand(batch, height, width, generator=gen) < 0.2] = ignore
    ids[ids == k - 1] = ignore  # segment k - 1 is empty in every image
    return feats.to(dtype), ids


def _naive_sums(ids, feats, k, ignore):
    batch, channels, height, width = feats.shape
    sums = torch.zeros(batch, k, channels, dtype=torch.float64)
    counts = torch.zeros(batch, k, dtype=torch.long)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                s = int(ids[b, y, x])
                if s == ignore:
                    continue
                sums[b, s] += feats[b, :, y, x].double()
                counts[b, s] += 1
    return sums, counts


@pytest.mark.parametrize('ignore', [255, -1])
def test_segment_sums_and_means_match_naive_loops(ignore):
    k = 4
    feats, ids = _random_case(k=k, ignore=ignore)
    sums, counts = segment_sums(ids, feats, k, ignore_index=ignore)
    expected_sums, expected_counts = _naive_sums(ids, feats, k, ignore)
    assert sums.shape == (2, k, 3) and sums.dtype == feats.dtype
    assert counts.dtype == torch.long
    assert torch.equal(counts, expected_counts)
    assert torch.allclose(sums.double(), expected_sums, atol=1e-5)
    # the empty segment: zero sum, count 0, zero mean (no NaN)
    assert (counts[:, k - 1] == 0).all()
    assert torch.equal(sums[:, k - 1], torch.zeros(2, 3))
    means = segment_means(ids, feats, k, ignore_index=ignore)
    expected_means = expected_sums / expected_counts.clamp_min(1)[..., None]
    assert torch.allclose(means.double(), expected_means, atol=1e-5)
    assert torch.equal(means[:, k - 1], torch.zeros(2, 3))
    # L2-normalised means (CIAE Eq. 3-4): unit norm, zero stays zero
    unit = segment_means(ids, feats, k, ignore_index=ignore,
                         l2_normalize=True)
    norms = expected_means.norm(dim=-1, keepdim=True)
    expected_unit = torch.where(norms > 0, expected_means / norms,
                                torch.zeros_like(expected_means))
    assert torch.allclose(unit.double(), expected_unit, atol=1e-5)
    assert torch.isfinite(unit).all()


def test_segment_sums_hand_case_and_gradient():
    # 1 image, 1x4 pixels, ids [0, 1, 0, ignore]
    feats = torch.tensor([[[[1., 2., 3., 4.]], [[10., 20., 30., 40.]]]],
                         requires_grad=True)
    ids = torch.tensor([[[0, 1, 0, 255]]])
    sums, counts = segment_sums(ids, feats, 3)
    assert torch.equal(sums.detach(),
                       torch.tensor([[[4., 40.], [2., 20.], [0., 0.]]]))
    assert counts.tolist() == [[2, 1, 0]]
    means = segment_means(ids, feats, 3)
    assert torch.equal(means.detach(),
                       torch.tensor([[[2., 20.], [2., 20.], [0., 0.]]]))
    means.sum().backward()
    # d mean_k / d pixel = 1 / count of its segment, 0 for ignored pixels
    assert torch.equal(feats.grad[0, 0, 0], torch.tensor([.5, 1., .5, 0.]))


def test_segment_sums_keep_dtype_and_reject_bad_ids():
    feats, ids = _random_case(dtype=torch.float64)
    sums, _ = segment_sums(ids.int(), feats, 4)
    assert sums.dtype == torch.float64 and sums.device == feats.device
    assert segment_means(ids, feats.half(), 4).dtype == torch.float16
    with pytest.raises(ValueError, match='segment ids must be in'):
        segment_sums(torch.full((2, 5, 6), 7), feats, 4)
    with pytest.raises(ValueError, match='ignore_index'):
        segment_sums(ids, feats, 300, ignore_index=255)
    with pytest.raises(ValueError, match='must be \\(B, H, W\\)'):
        segment_sums(ids[:, :4], feats, 4)
    with pytest.raises(ValueError, match='integer'):
        segment_sums(ids.float(), feats, 4)
    # no segment slots at all: empty (B, 0, C)
    sums, counts = segment_sums(torch.full((2, 5, 6), -1), feats, 0, -1)
    assert sums.shape == (2, 0, 3) and counts.shape == (2, 0)


def test_region_encodings_soft_masks_match_naive_loops():
    gen = torch.Generator().manual_seed(1)
    masks = torch.rand(2, 3, 4, 5, generator=gen)
    masks[1, 2] = 0  # an empty soft region
    feats = torch.randn(2, 6, 4, 5, generator=gen)
    expected_sums = torch.zeros(2, 3, 6)
    for b in range(2):
        for r in range(3):
            for c in range(6):
                expected_sums[b, r, c] = (masks[b, r] * feats[b, c]).sum()
    assert torch.allclose(region_encodings(masks, feats, normalize=False),
                          expected_sums, atol=1e-5)
    mass = masks.flatten(2).sum(-1).clamp_min(1e-6)[..., None]
    means = region_encodings(masks, feats)
    assert torch.allclose(means, expected_sums / mass, atol=1e-5)
    assert torch.equal(means[1, 2], torch.zeros(6))
    unit = region_encodings(masks, feats, l2_normalize=True)
    assert torch.allclose(unit.norm(dim=-1)[0], torch.ones(3), atol=1e-6)
    assert torch.equal(unit[1, 2], torch.zeros(6))
    # hard one-hot masks give the segment-id means
    ids = torch.randint(0, 3, (2, 4, 5), generator=gen)
    one_hot = torch.nn.functional.one_hot(ids, 3).permute(0, 3, 1, 2)
    assert torch.allclose(
        region_encodings(one_hot.float(), feats), segment_means(ids, feats, 3),
        atol=1e-6)


def test_similarity_and_argmax_match_naive_loops():
    gen = torch.Generator().manual_seed(2)
    pixels = torch.randn(2, 4, 3, 5, generator=gen)
    segments = torch.randn(2, 3, 4, generator=gen)
    scores = segment_similarity(pixels, segments)
    assert scores.shape == (2, 3, 3, 5)
    expected = torch.zeros(2, 3, 3, 5)
    for b in range(2):
        for k in range(3):
            for y in range(3):
                for x in range(5):
                    expected[b, k, y, x] = (segments[b, k] *
                                            pixels[b, :, y, x]).sum()
    assert torch.allclose(scores, expected, atol=1e-5)
    # shared (K, C) prototypes
    shared = segment_similarity(pixels, segments[0])
    assert torch.allclose(shared[1], segment_similarity(
        pixels[1:], segments[:1])[0], atol=1e-6)
    index = assign_pixels_to_segments(scores)
    naive = torch.zeros(2, 3, 5, dtype=torch.long)
    for b in range(2):
        for y in range(3):
            for x in range(5):
                values = expected[b, :, y, x].tolist()
                naive[b, y, x] = values.index(max(values))
    assert torch.equal(index, naive)
    # invalid slots never win; an image without valid slots gets -1
    valid = torch.tensor([[True, False, True], [False, False, False]])
    masked = assign_pixels_to_segments(scores, valid)
    assert (masked[0] != 1).all() and (masked[1] == -1).all()
    for y in range(3):
        for x in range(5):
            best = 0 if expected[0, 0, y, x] >= expected[0, 2, y, x] else 2
            assert int(masked[0, y, x]) == best


def test_similarity_shape_errors():
    with pytest.raises(ValueError, match='segment_embeds'):
        segment_similarity(torch.zeros(2, 4, 3, 3), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match='valid'):
        assign_pixels_to_segments(torch.zeros(2, 3, 4, 4),
                                  torch.ones(2, 2, dtype=torch.bool))
