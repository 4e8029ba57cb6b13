# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import pytest
import torch

from mmpanoptic_plus.models.heads import UnifiedDynamicPotentialHead


def _case():
    """2 things, 1 stuff, a 4x4 grid at stride 2 (8x8 input pixels).

    Detection 0: class 1, score 0.5, box (0, 0, 4, 4) -> cells (0..1, 0..1).
    Detection 1: class 0, score 0.8, box (4, 2, 8, 6) -> rows 1..2 (centres
    3, 5), cols 2..3 (centres 5, 7).
    """
    torch.manual_seed(0)
    sem_probs = torch.rand(3, 4, 4).softmax(0)
    boxes = torch.tensor([[0., 0., 4., 4.], [4., 2., 8., 6.]])
    scores = torch.tensor([0.5, 0.8])
    labels = torch.tensor([1, 0])
    masks = torch.rand(2, 4, 4)
    inside = torch.zeros(2, 4, 4)
    inside[0, 0:2, 0:2] = 1
    inside[1, 1:3, 2:4] = 1
    return sem_probs, boxes, scores, labels, masks, inside


@pytest.mark.parametrize('variant', ['A', 'B', 'C'])
def test_without_masks(variant):
    sem, boxes, scores, labels, _, inside = _case()
    head = UnifiedDynamicPotentialHead(2, 1, variant=variant, stride=2)
    psi = head(sem, boxes, scores, labels)
    assert psi.shape == (3, 4, 4)
    weight = torch.ones(2) if variant == 'A' else scores
    for k in range(2):
        for i in range(4):
            for j in range(4):
                expected = weight[k] * sem[labels[k], i, j] * inside[k, i, j]
                torch.testing.assert_close(psi[k, i, j], expected)
    # the stuff box covers the image with score 1 (Sec. 3.3)
    torch.testing.assert_close(psi[2], sem[2])
    # hand values: detection 0 at cell (0, 0) and outside its box
    assert psi[0, 3, 3] == 0
    if variant != 'A':
        torch.testing.assert_close(psi[0, 0, 0], 0.5 * sem[1, 0, 0])


def test_with_masks_each_variant():
    sem, boxes, scores, labels, masks, inside = _case()
    psi = {
        v: UnifiedDynamicPotentialHead(2, 1, variant=v, stride=2)(
            sem, boxes, scores, labels, masks)
        for v in 'ABC'
    }
    v_c = sem[labels]
    # Eq. 2, B: product; C: sum; A: UPSNet's sum without score
    torch.testing.assert_close(psi['B'][:2],
                               scores[:, None, None] * v_c * masks * inside)
    torch.testing.assert_close(psi['C'][:2],
                               scores[:, None, None] * (v_c + masks) * inside)
    torch.testing.assert_close(psi['A'][:2], (v_c + masks) * inside)
    # one hand-computed cell: detection 1 at (1, 2)
    torch.testing.assert_close(psi['B'][1, 1, 2],
                               0.8 * sem[0, 1, 2] * masks[1, 1, 2])
    torch.testing.assert_close(psi['C'][1, 1, 2],
                               0.8 * (sem[0, 1, 2] + masks[1, 1, 2]))
    for v in 'ABC':
        torch.testing.assert_close(psi[v][2], sem[2])


def test_gradients_reach_scores_semantics_and_masks():
    sem, boxes, scores, labels, masks, _ = _case()
    sem.requires_grad_(True)
    scores.requires_grad_(True)
    masks.requires_grad_(True)
    psi = UnifiedDynamicPotentialHead(2, 1, variant='B', stride=2)(
        sem, boxes, scores, labels, masks)
    psi.sum().backward()
    assert scores.grad.abs().min() > 0
    assert sem.grad[2].abs().sum() > 0 and masks.grad.abs().sum() > 0


def test_no_detection_and_checks():
    sem = torch.rand(3, 4, 4)
    head = UnifiedDynamicPotentialHead(2, 1, stride=2)
    psi = head(sem, torch.zeros(0, 4), torch.zeros(0),
               torch.zeros(0, dtype=torch.long))
    torch.testing.assert_close(psi, sem[2:])
    with pytest.raises(ValueError):
        UnifiedDynamicPotentialHead(2, 1, variant='D')
    with pytest.raises(ValueError):
        head(torch.rand(4, 4, 4), torch.zeros(0, 4), torch.zeros(0),
             torch.zeros(0, dtype=torch.long))
