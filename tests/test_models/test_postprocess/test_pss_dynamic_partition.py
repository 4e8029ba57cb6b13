# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Dynamic partitioning of PSS (Sec. 3.3) on hand-built segments and against
a naive per-pixel loop."""
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.postprocess import (compact_labels,
                                                dynamic_partition,
                                                segment_concentration)


def quadrant_scene():
    """4x8 map: segment 0 (left half) has four quadrants pointing to four
    orthogonal directions (concentration 0.5); segment 1 (right half) is
    uniform (concentration 1)."""
    embeds = torch.zeros(1, 4, 4, 8)
    embeds[0, 0, :2, :2] = 1
    embeds[0, 1, :2, 2:4] = 1
    embeds[0, 2, 2:, :2] = 1
    embeds[0, 3, 2:, 2:4] = 1
    embeds[0, 0, :, 4:] = 1
    labels = torch.zeros(1, 4, 8, dtype=torch.long)
    labels[0, :, 4:] = 1
    return embeds, labels


def test_concentration_values():
    embeds, labels = quadrant_scene()
    concentration, counts = segment_concentration(labels, embeds, 3)
    torch.testing.assert_close(concentration, torch.tensor([[0.5, 1.0, 0]]))
    assert counts.tolist() == [[16, 16, 0]]


def test_low_concentration_segment_is_split_in_four():
    embeds, labels = quadrant_scene()
    new, num = dynamic_partition(labels, embeds, 2, threshold=0.99,
                                 num_splits=4)
    assert num == 5
    expected = torch.tensor([[0, 0, 1, 1, 4, 4, 4, 4],
                             [0, 0, 1, 1, 4, 4, 4, 4],
                             [2, 2, 3, 3, 4, 4, 4, 4],
                             [2, 2, 3, 3, 4, 4, 4, 4]])
    assert torch.equal(new[0], expected)
    # above the threshold nothing is split (only renumbered)
    same, num = dynamic_partition(labels, embeds, 2, threshold=0.4)
    assert num == 2 and torch.equal(same, labels)


def naive_partition(embeds, labels, num_segments, threshold, splits, iters):
    channels, height, width = embeds.shape
    out = {}
    child = {}
    for s in range(num_segments):
        pixels = [(y, x) for y in range(height) for x in range(width)
                  if labels[y, x] == s]
        if not pixels:
            continue
        total = sum(embeds[:, y, x] for y, x in pixels)
        if float(total.norm()) / len(pixels) >= threshold:
            for p in pixels:
                child[p] = (s, 0)
            continue
        y0 = min(p[0] for p in pixels)
        y1 = max(p[0] for p in pixels)
        x0 = min(p[1] for p in pixels)
        x1 = max(p[1] for p in pixels)
        for y, x in pixels:  # 2 x 2 grid over the box
            child[(y, x)] = (s, (y - y0) * 2 // (y1 - y0 + 1) * 2 +
                             (x - x0) * 2 // (x1 - x0 + 1))
        for _ in range(iters):
            protos = {}
            for j in range(splits):
                members = [p for p in pixels if child[p] == (s, j)]
                if members:
                    protos[j] = F.normalize(
                        sum(embeds[:, y, x] for y, x in members), dim=0)
            new = {}
            for y, x in pixels:
                scores = {j: float(protos[j] @ embeds[:, y, x])
                          for j in protos}
                best = max(scores.values())
                new[(y, x)] = (s, min(j for j in scores
                                      if scores[j] == best))
            child.update(new)
    keys = sorted(set(child.values()))
    for p, c in child.items():
        out[p] = keys.index(c)
    return out, len(keys)


def test_dynamic_partition_equals_naive_loop():
    torch.manual_seed(1)
    height, width = 6, 9
    embeds = F.normalize(torch.randn(2, 3, height, width,
                                     dtype=torch.float64), dim=1)
    labels = (torch.arange(width) // 3).expand(2, height, width).clone()
    labels[1, :, -1] = -1
    new, num = dynamic_partition(labels, embeds, 3, threshold=0.8,
                                 num_splits=4, num_iters=10, chunk_pixels=5)
    widest = 0
    for b in range(2):
        ref, count = naive_partition(embeds[b], labels[b], 3, 0.8, 4, 10)
        widest = max(widest, count)
        for (y, x), value in ref.items():
            assert int(new[b, y, x]) == value
    assert num == widest
    assert (new[1, :, -1] == -1).all()


def test_compact_labels():
    labels = torch.tensor([[[4, 4, -1, 1]], [[2, 0, 0, 2]]])
    new, num = compact_labels(labels, 5)
    assert new.tolist() == [[[1, 1, -1, 0]], [[1, 0, 0, 1]]]
    assert num == 2
