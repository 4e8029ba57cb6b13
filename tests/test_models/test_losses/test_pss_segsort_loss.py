# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""SegSort loss of PSS (Eq. 1-2) against a naive per-pixel computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.heads import pss_training_segments
from mmpanoptic_plus.models.losses import PSSSegSortLoss, segsort_loss


def naive_segsort(embeds, clusters, gt_ids, gt_labels, gt_is_thing, kappa):
    """Per pixel, from the definitions: segments are the (image, cluster,
    gt segment) triples; instance = (image, gt) for things, class for
    stuff; Eq. 1-2 with the own segment excluded."""
    batch, channels, height, width = embeds.shape
    members = {}
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                g = int(gt_ids[b, y, x])
                if g < 0:
                    continue
                key = (b, int(clusters[b, y, x]), g)
                members.setdefault(key, []).append(embeds[b, :, y, x])
    keys = sorted(members)
    protos = {}
    instance = {}
    for key in keys:
        total = torch.stack(members[key]).sum(0)
        protos[key] = total / total.norm()
        b, _, g = key
        instance[key] = ('thing', b, g) if bool(gt_is_thing[b, g]) else (
            'stuff', int(gt_labels[b, g]))
    losses = []
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                g = int(gt_ids[b, y, x])
                if g < 0:
                    continue
                own = (b, int(clusters[b, y, x]), g)
                v = embeds[b, :, y, x]
                numerator, denominator = 0.0, 0.0
                for key in keys:
                    if key == own:
                        continue
                    term = math.exp(kappa * float(protos[key] @ v))
                    denominator += term
                    if instance[key] == instance[own]:
                        numerator += term
                if numerator > 0:
                    losses.append(-math.log(numerator / denominator))
    return sum(losses) / len(losses), len(losses)


def two_image_batch():
    """Image 0: thing 0 (class 0) spans clusters 0 and 1, stuff class 2
    (gt 1) in cluster 2, an unlabelled column. Image 1: thing 0 (class 1)
    in clusters 0 and 1 and 2, stuff class 2 (gt 1) in cluster 3, thing 2
    (class 0) alone in one segment (no positive: left out)."""
    gt_ids = torch.tensor([
        [[0, 0, 0, 1, 1, -1], [0, 0, 0, 1, 1, -1]],
        [[0, 0, 0, 1, 1, 2], [1, 1, 1, 1, 1, 2]],
    ])
    clusters = torch.tensor([
        [[0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 2]],
        [[0, 1, 2, 3, 3, 3], [3, 3, 3, 3, 3, 3]],
    ])
    gt_labels = torch.tensor([[0, 2, -1], [1, 2, 0]])
    gt_is_thing = torch.tensor([[True, False, False], [True, False, True]])
    return clusters, gt_ids, gt_labels, gt_is_thing


@pytest.mark.parametrize('kappa', [8.0, 1.5])
def test_segsort_loss_equals_naive_per_pixel(kappa):
    torch.manual_seed(0)
    clusters, gt_ids, gt_labels, gt_is_thing = two_image_batch()
    embeds = F.normalize(
        torch.randn(2, 4, 2, 6, dtype=torch.float64), dim=1)
    segs = pss_training_segments(
        embeds, clusters, 4, gt_ids, gt_labels, gt_is_thing,
        num_classes=3, stride=1, small_area=None)
    # 3 segments in image 0, 5 in image 1 (thing 0 split in 3, stuff 1,
    # thing 2)
    assert segs.prototypes.shape == (8, 4)
    loss, num_pixels = segsort_loss(segs.pixel_embeds, segs.pixel_segments,
                                    segs.prototypes, segs.instances, kappa)
    ref, ref_pixels = naive_segsort(embeds, clusters, gt_ids, gt_labels,
                                    gt_is_thing, kappa)
    assert int(num_pixels) == ref_pixels == 20  # 22 labelled - thing 2's 2
    assert abs(float(loss) - ref) < 1e-9
    module = PSSSegSortLoss(concentration=kappa, loss_weight=2.0)
    weighted = module(segs.pixel_embeds, segs.pixel_segments,
                      segs.prototypes, segs.instances)
    assert abs(float(weighted) - 2 * ref) < 1e-9


def test_stuff_is_one_instance_over_the_batch():
    clusters, gt_ids, gt_labels, gt_is_thing = two_image_batch()
    embeds = F.normalize(torch.randn(2, 4, 2, 6), dim=1)
    segs = pss_training_segments(embeds, clusters, 4, gt_ids, gt_labels,
                                 gt_is_thing, 3, stride=1)
    stuff = segs.labels == 2
    assert stuff.sum() == 2
    assert segs.instances[stuff].unique().numel() == 1
    things = ~stuff
    # thing 0 of image 0 (2 segments), thing 0 of image 1 (3), thing 2 (1)
    counts = torch.unique(segs.instances[things], return_counts=True)[1]
    assert sorted(counts.tolist()) == [1, 2, 3]


def test_gradient_reaches_pixels_and_prototypes():
    clusters, gt_ids, gt_labels, gt_is_thing = two_image_batch()
    raw = torch.randn(2, 4, 2, 6, requires_grad=True)
    embeds = F.normalize(raw, dim=1)
    segs = pss_training_segments(embeds, clusters, 4, gt_ids, gt_labels,
                                 gt_is_thing, 3, stride=1)
    loss, _ = segsort_loss(segs.pixel_embeds, segs.pixel_segments,
                           segs.prototypes, segs.instances)
    loss.backward()
    assert torch.isfinite(raw.grad).all()
    # the unlabelled column still gets no gradient
    assert raw.grad[0, :, :, 5].abs().sum() == 0
    assert raw.grad[0, :, :, :5].abs().sum() > 0


def test_no_positive_gives_zero_with_graph():
    embeds = F.normalize(torch.randn(3, 4, requires_grad=True), dim=1)
    protos = F.normalize(torch.randn(2, 4), dim=1)
    loss, num = segsort_loss(embeds, torch.tensor([0, 0, 1]), protos,
                             torch.tensor([5, 6]))
    assert float(loss) == 0 and int(num) == 0
    loss.backward()
