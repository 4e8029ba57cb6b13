# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS training segments: (cluster, gt) pairs and hybrid scale exemplars
(Sec. 3.3) against loops."""
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.heads import (pss_training_segments,
                                          sample_ids_on_grid)


def scene():
    """16x16 input, stride-4 embeddings (4x4). gt 0: a small thing (rows
    1-4, cols 1-4: 16 px, covers the sampled pixel (2, 2)); gt 1: a large
    thing (rows 8-15: 128 px); gt 2: stuff elsewhere. Clusters: left /
    right halves of the map."""
    gt = torch.full((1, 16, 16), 2)
    gt[0, 1:5, 1:5] = 0
    gt[0, 8:, :] = 1
    clusters = torch.zeros(1, 4, 4, dtype=torch.long)
    clusters[0, :, 2:] = 1
    labels = torch.tensor([[0, 1, 3]])
    is_thing = torch.tensor([[True, True, False]])
    return gt, clusters, labels, is_thing


def reference_prototype(embeds, clusters, gt, image, cluster, gt_id, up):
    """Loop over the pixels of the (cluster, gt) pair at scale ``up``."""
    fine = F.interpolate(embeds, scale_factor=up, mode='bilinear',
                         align_corners=False) if up > 1 else embeds
    step = 4 // up
    total = torch.zeros(embeds.size(1), dtype=embeds.dtype)
    for y in range(fine.size(2)):
        for x in range(fine.size(3)):
            g = int(gt[image, y * step + step // 2, x * step + step // 2])
            c = int(clusters[image, y // up, x // up])
            if g == gt_id and c == cluster:
                total += fine[image, :, y, x]
    return total / total.norm()


def test_sample_ids_on_grid_uses_cell_centres():
    ids = torch.arange(64).view(1, 8, 8)
    assert sample_ids_on_grid(ids, 4).tolist() == [[[18, 22], [50, 54]]]


def test_hybrid_scale_exemplars_pick_the_upscaled_map_for_small_instances():
    torch.manual_seed(0)
    gt, clusters, labels, is_thing = scene()
    embeds = F.normalize(torch.randn(1, 3, 4, 4, dtype=torch.float64), dim=1)
    segs = pss_training_segments(embeds, clusters, 2, gt, labels, is_thing,
                                 num_classes=4, stride=4, small_area=20,
                                 upscale_factor=4)
    keys = {}
    for index in range(len(segs.labels)):
        # recover (cluster, gt) of each segment from its pixels
        cells = (segs.segment_map[0] == index).nonzero()
        y, x = cells[0].tolist()
        keys[(int(clusters[0, y, x]), int(gt[0, 4 * y + 2, 4 * x + 2]))] = \
            index
    small = keys[(0, 0)]
    assert bool(segs.upscaled[small])
    torch.testing.assert_close(
        segs.prototypes[small],
        reference_prototype(embeds, clusters, gt, 0, 0, 0, 4))
    # the regular prototype differs: the test can fail
    regular = reference_prototype(embeds, clusters, gt, 0, 0, 0, 1)
    assert (segs.prototypes[small] - regular).abs().max() > 1e-3
    for (cluster, gt_id), index in keys.items():
        if gt_id == 0:
            continue
        assert not bool(segs.upscaled[index])
        torch.testing.assert_close(
            segs.prototypes[index],
            reference_prototype(embeds, clusters, gt, 0, cluster, gt_id, 1))
    # without A_p every prototype is the regular one
    plain = pss_training_segments(embeds, clusters, 2, gt, labels, is_thing,
                                  num_classes=4, stride=4, small_area=None)
    assert not plain.upscaled.any()
    torch.testing.assert_close(plain.prototypes[small], regular)


def test_hybrid_gradient_flows_through_the_upscaled_map():
    gt, clusters, labels, is_thing = scene()
    raw = torch.randn(1, 3, 4, 4, requires_grad=True)
    segs = pss_training_segments(F.normalize(raw, dim=1), clusters, 2, gt,
                                 labels, is_thing, 4, 4, small_area=20)
    small = int(segs.upscaled.nonzero()[0])
    segs.prototypes[small].sum().backward()
    # bilinear upscaling spreads the small instance's gradient to the
    # neighbouring cells too (cell (1, 1) lies outside its regular segment)
    assert raw.grad[0, :, 1, 1].abs().sum() > 0
