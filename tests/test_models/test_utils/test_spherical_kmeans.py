# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Spherical k-means (PSS Sec. 3.1) against a naive per-pixel loop."""
import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.utils import (grid_cluster_labels, grid_shape,
                                          spherical_kmeans)


def naive_spherical_kmeans(embeds, labels, num_clusters, num_iters):
    """Plain loops: M-step per cluster, E-step per pixel (one image)."""
    channels, height, width = embeds.shape
    labels = labels.clone()

    def prototypes(labels):
        protos = torch.zeros(num_clusters, channels, dtype=embeds.dtype)
        nonempty = [False] * num_clusters
        for k in range(num_clusters):
            total = torch.zeros(channels, dtype=embeds.dtype)
            for y in range(height):
                for x in range(width):
                    if labels[y, x] == k:
                        total += embeds[:, y, x]
                        nonempty[k] = True
            norm = total.norm()
            protos[k] = total / norm if norm > 0 else total
        return protos, nonempty

    for _ in range(num_iters):
        protos, nonempty = prototypes(labels)
        new = labels.clone()
        for y in range(height):
            for x in range(width):
                if labels[y, x] < 0:
                    continue
                best, best_k = None, -1
                for k in range(num_clusters):
                    if not nonempty[k]:
                        continue
                    score = float(protos[k] @ embeds[:, y, x])
                    if best is None or score > best:
                        best, best_k = score, k
                new[y, x] = best_k
        labels = new
    return labels, prototypes(labels)[0]


def test_grid_shape_and_labels():
    assert grid_shape(196, 176, 176) == (14, 14)
    assert grid_shape(500, 256, 512) == (16, 31)
    assert grid_shape(4, 1, 1) == (1, 1)  # clamped to the map
    assert grid_shape(4, 10, 10) == (2, 2)
    labels = grid_cluster_labels(4, 6, 4)  # 2 x 2 cells of 2 x 3 pixels
    assert labels.tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1],
                               [2, 2, 2, 3, 3, 3], [2, 2, 2, 3, 3, 3]]


@pytest.mark.parametrize('chunk', [7, 32768])
def test_spherical_kmeans_equals_naive_loop(chunk):
    torch.manual_seed(0)
    batch, channels, height, width, clusters = 2, 5, 6, 7, 6
    embeds = F.normalize(
        torch.randn(batch, channels, height, width, dtype=torch.float64),
        dim=1)
    init = grid_cluster_labels(height, width, clusters)[None].repeat(
        batch, 1, 1)
    init[1, :, -2:] = -1  # padding of the second image stays out
    labels, protos = spherical_kmeans(
        embeds, init, clusters, num_iters=10, chunk_pixels=chunk)
    for b in range(batch):
        ref_labels, ref_protos = naive_spherical_kmeans(
            embeds[b], init[b], clusters, 10)
        assert torch.equal(labels[b], ref_labels)
        torch.testing.assert_close(protos[b], ref_protos)
    assert (labels[1, :, -2:] == -1).all()
    assert (labels[0] >= 0).all()
    # prototypes are unit length (or zero for empty clusters)
    norms = protos.norm(dim=-1)
    assert torch.all((norms - 1).abs() < 1e-9) or torch.all(
        ((norms - 1).abs() < 1e-9) | (norms == 0))


def test_spherical_kmeans_separates_two_directions():
    # left half points to e0, right half to e1: a start whose boundary is
    # one column off converges to the halves
    height, width = 4, 8
    embeds = torch.zeros(1, 2, height, width)
    embeds[0, 0, :, :4] = 1
    embeds[0, 1, :, 4:] = 1
    init = torch.ones(1, height, width, dtype=torch.long)
    init[0, :, :3] = 0
    labels, protos = spherical_kmeans(embeds, init, 2, num_iters=3)
    assert (labels[0, :, :4] == labels[0, 0, 0]).all()
    assert (labels[0, :, 4:] == labels[0, 0, 4]).all()
    assert labels[0, 0, 0] != labels[0, 0, 4]


def test_spherical_kmeans_rejects_bad_labels():
    with pytest.raises(ValueError):
        spherical_kmeans(torch.randn(1, 2, 3, 3),
                         torch.full((1, 3, 3), 5), 3)
