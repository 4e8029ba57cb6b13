# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE-loss (Eq. 5-12, remote filtering of Sec. IV-B) against a naive
per-pixel, per-query loop; the top-K rule of Eq. 9 in both readings."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.losses import (CIAEEmbeddingLoss, category_rows,
                                           top_k_embedding_loss,
                                           triplet_embedding_terms)

NUM_THINGS, NUM_STUFF = 2, 2  # things 0, 1; stuff 2, 3
MARGIN = 0.15


def tiny_case(seed=0):
    """One 6x8 image: two instances of thing class 0 (segments 0, 1), stuff
    class 3 (segment 2), a crowd region (-1); a second image with one
    instance of class 1 (segment 0), stuff class 2 (segment 1) and void."""
    ids = torch.full((2, 6, 8), 2, dtype=torch.long)
    ids[0, 1:3, 1:3] = 0
    ids[0, 3:5, 5:8] = 1
    ids[0, 0, 6:8] = -1  # crowd
    ids[0, 5, 0:2] = -1
    ids[1] = 1
    ids[1, 2:5, 2:4] = 0
    ids[1, 0, :] = -1  # void
    labels = torch.tensor([[0, 0, 3], [1, 2, -1]])
    is_thing = torch.tensor([[True, True, False], [True, False, False]])
    gen = torch.Generator().manual_seed(seed)
    embeds = torch.randn(2, 4, 6, 8, generator=gen)
    memory = F.normalize(torch.randn(3, 4, generator=gen), dim=1)
    return embeds, ids, labels, is_thing, memory


def naive_pixel_loss(p, queries, own, outside, k_top):
    """Eq. 5-9 for one pixel: p (E,) unit, queries list of (E,) unit,
    own index, outside[k] True -> similarity 0."""
    sims = []
    for k, q in enumerate(queries):
        sims.append(0.0 if outside[k] else float(torch.dot(p, q)))
    d_pos = 1 - sims[own]
    terms = []
    for k in range(len(queries)):
        d_neg = 0.0 if k == own else 1 - sims[k]
        hinge = max(d_pos - d_neg + MARGIN, 0.0)
        terms.append(-math.log(1 - hinge / (2 + MARGIN)))
    return sum(sorted(terms, reverse=True)[:k_top])


def naive_losses(embeds, ids, labels, is_thing, memory, k_top, box_expand):
    cae_total, iae_total, count = 0.0, 0.0, 0
    batch, _, height, width = embeds.shape
    for b in range(batch):
        # instance means of the raw embeddings, then normalised (Eq. 4)
        means, boxes = {}, {}
        for s in range(labels.size(1)):
            if not bool(is_thing[b, s]):
                continue
            ys, xs = torch.nonzero(ids[b] == s, as_tuple=True)
            means[s] = F.normalize(
                embeds[b][:, ys, xs].mean(1), dim=0)
            x1, x2 = xs.min().item(), xs.max().item() + 1
            y1, y2 = ys.min().item(), ys.max().item() + 1
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            hw, hh = (x2 - x1) / 2 * box_expand, (y2 - y1) / 2 * box_expand
            boxes[s] = (cx - hw, cy - hh, cx + hw, cy + hh)
        slots = sorted(means)
        for y in range(height):
            for x in range(width):
                s = int(ids[b, y, x])
                if s < 0:
                    continue
                count += 1
                p = F.normalize(embeds[b, :, y, x], dim=0)
                label = int(labels[b, s])
                # CAE: things merged into row 0, stuff c -> c - T + 1
                row = 0 if label < NUM_THINGS else label - NUM_THINGS + 1
                cae_total += naive_pixel_loss(p, list(memory), row,
                                              [False] * len(memory), k_top)
                # IAE: stuff memory rows, then instances
                queries = [memory[1], memory[2]] + [means[t] for t in slots]
                outside = [False, False]
                for t in slots:
                    x1, y1, x2, y2 = boxes[t]
                    inside = x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2
                    outside.append(not inside)
                if bool(is_thing[b, s]):
                    own, weight = NUM_STUFF + slots.index(s), 5.0
                else:
                    own, weight = label - NUM_THINGS, 1.0
                iae_total += weight * naive_pixel_loss(p, queries, own,
                                                       outside, k_top)
    return cae_total / count, iae_total / count


@pytest.mark.parametrize('top_k', [5, 2])
def test_loss_equals_naive_loop(top_k):
    embeds, ids, labels, is_thing, memory = tiny_case()
    loss = CIAEEmbeddingLoss(
        NUM_THINGS, NUM_STUFF, top_k=top_k, box_expand=1.5)
    out = loss(embeds, ids, labels, is_thing, memory)
    cae, iae = naive_losses(embeds, ids, labels, is_thing, memory, top_k,
                            1.5)
    assert out['loss_cae'].item() == pytest.approx(cae, rel=1e-5)
    assert out['loss_iae'].item() == pytest.approx(2.0 * iae, rel=1e-5)


def test_remote_filtering_changes_the_loss_and_none_disables_it():
    embeds, ids, labels, is_thing, memory = tiny_case(seed=3)
    off = CIAEEmbeddingLoss(NUM_THINGS, NUM_STUFF, box_expand=None)(
        embeds, ids, labels, is_thing, memory)
    _, iae_off = naive_losses(embeds, ids, labels, is_thing, memory, 5,
                              1e6)  # boxes covering everything
    assert off['loss_iae'].item() == pytest.approx(2 * iae_off, rel=1e-5)
    on = CIAEEmbeddingLoss(NUM_THINGS, NUM_STUFF, box_expand=1.0)(
        embeds, ids, labels, is_thing, memory)
    assert on['loss_iae'].item() != pytest.approx(off['loss_iae'].item())
    # L_CAE has no instance queries: unaffected
    assert on['loss_cae'].item() == pytest.approx(off['loss_cae'].item())


def test_gradients_reach_embeddings_and_not_memory():
    embeds, ids, labels, is_thing, memory = tiny_case()
    embeds.requires_grad_(True)
    memory.requires_grad_(True)
    out = CIAEEmbeddingLoss(NUM_THINGS, NUM_STUFF)(embeds, ids, labels,
                                                   is_thing, memory)
    sum(out.values()).backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
    # ignored pixels (crowd, void) get no gradient through their own term;
    # they only enter the instance means when they belong to a segment
    assert memory.grad is None


def test_no_valid_pixel_gives_zero_loss():
    embeds, ids, labels, is_thing, memory = tiny_case()
    ids = torch.full_like(ids, -1)
    out = CIAEEmbeddingLoss(NUM_THINGS, NUM_STUFF)(embeds, ids, labels,
                                                   is_thing, memory)
    assert out['loss_cae'].item() == 0 and out['loss_iae'].item() == 0


def test_unmerged_things_use_one_row_per_class():
    labels = torch.tensor([0, 1, 2, 3, -1])
    assert category_rows(labels, 2, True).tolist() == [0, 0, 1, 2, -1]
    assert category_rows(labels, 2, False).tolist() == [0, 1, 2, 3, -1]
    embeds, ids, labels, is_thing, _ = tiny_case()
    loss = CIAEEmbeddingLoss(NUM_THINGS, NUM_STUFF, merge_things=False)
    assert loss.num_categories == 4
    memory = F.normalize(torch.randn(4, 4), dim=1)
    out = loss(embeds, ids, labels, is_thing, memory)
    assert torch.isfinite(out['loss_cae'])
    with pytest.raises(ValueError, match='rows'):
        loss(embeds, ids, labels, is_thing, memory[:3])


def test_triplet_terms_by_hand():
    # one pixel, three queries: similarities 0.9 (own), 0.5, -1
    sim = torch.tensor([[[0.9], [0.5], [-1.0]]])
    terms = triplet_embedding_terms(sim, torch.tensor([[0]]), margin=0.15)
    d_pos = 0.1
    expected = [
        d_pos + 0.15,  # own query: d_neg = 0 (Eq. 6)
        max(d_pos - 0.5 + 0.15, 0),  # = 0
        max(d_pos - 2.0 + 0.15, 0)
    ]
    expected = [-math.log(1 - h / 2.15) for h in expected]
    assert terms[0, :, 0].tolist() == pytest.approx(expected)
    # a hard negative: similarity 0.95 > own 0.9
    sim = torch.tensor([[[0.9], [0.95]]])
    terms = triplet_embedding_terms(sim, torch.tensor([[0]]), margin=0.15)
    assert terms[0, 1, 0].item() == pytest.approx(
        -math.log(1 - (0.1 - 0.05 + 0.15) / 2.15))
    # ignored pixel and invalid query give 0
    terms = triplet_embedding_terms(
        sim, torch.tensor([[-1]]), margin=0.15)
    assert terms.abs().sum() == 0
    terms = triplet_embedding_terms(
        sim, torch.tensor([[0]]), torch.tensor([[True, False]]), 0.15)
    assert terms[0, 1, 0] == 0


def test_top_k_rule_per_pixel_and_over_pixels():
    # 1 image, 4 queries, 3 pixels (the last ignored)
    terms = torch.tensor([[[0.1, 0.9, 5.0], [0.4, 0.2, 5.0],
                           [0.3, 0.0, 5.0], [0.2, 0.1, 5.0]]])
    positive = torch.tensor([[0, 1, -1]])
    # per pixel, its 2 largest terms, divided by the 2 valid pixels
    loss = top_k_embedding_loss(terms, positive, top_k=2)
    assert loss.item() == pytest.approx(((0.4 + 0.3) + (0.9 + 0.2)) / 2)
    # K >= number of queries: all terms
    loss = top_k_embedding_loss(terms, positive, top_k=10)
    assert loss.item() == pytest.approx((1.0 + 1.2) / 2)
    # pixel weights
    loss = top_k_embedding_loss(
        terms, positive, top_k=1, pixel_weight=torch.tensor([[5., 1., 1.]]))
    assert loss.item() == pytest.approx((5 * 0.4 + 0.9) / 2)
    # over pixels: the top-1 pixel by its summed loss (1.2), ignored pixel
    # never chosen
    loss = top_k_embedding_loss(terms, positive, top_k=1, topk_over='pixels')
    assert loss.item() == pytest.approx(1.2)
    loss = top_k_embedding_loss(terms, positive, top_k=5, topk_over='pixels')
    assert loss.item() == pytest.approx((1.0 + 1.2) / 2)
    with pytest.raises(ValueError):
        top_k_embedding_loss(terms, positive, topk_over='images')
