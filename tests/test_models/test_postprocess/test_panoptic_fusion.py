# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""panoptic_fusion: the shared stuff area rule and segments_to_panoptic
against hand-built cases and naive per-segment / per-pixel loops (the
heuristic and the majority vote have their own value tests in the RTP and
Panoptic-DeepLab post-processing tests)."""
import pytest
import torch

from mmpanoptic_plus.models.postprocess import (large_stuff_mask,
                                                merge_semantic_and_instance,
                                                segments_to_panoptic)
from mmpanoptic_plus.structures import INSTANCE_OFFSET

NUM_THINGS, NUM_CLASSES = 2, 5  # labels 0, 1 things; 2, 3, 4 stuff
VOID = NUM_CLASSES


def naive_large_stuff_mask(labels, stuff_mask, num_classes, limit):
    keep = torch.zeros_like(stuff_mask)
    for image in range(labels.size(0)):
        for label in range(num_classes):
            region = stuff_mask[image] & (labels[image] == label)
            if int(region.sum()) >= limit:
                keep[image] |= region
    return keep


def naive_segments_to_panoptic(segments, labels, num_things, num_classes,
                               limit, void):
    """Loop over images and segments: number present things, merge stuff
    per class, then apply the area limit."""
    batch = segments.size(0)
    panoptic = torch.full(segments.shape, void, dtype=torch.long)
    for image in range(batch):
        number = 0
        stuff_region = {}
        for index, label in enumerate(labels[image].tolist()):
            region = segments[image] == index
            if not 0 <= label < num_classes or not region.any():
                continue
            if label < num_things:
                number += 1
                panoptic[image][region] = label + number * INSTANCE_OFFSET
            else:
                stuff_region[label] = stuff_region.get(
                    label, torch.zeros_like(region)) | region
        for label, region in stuff_region.items():
            if int(region.sum()) >= limit:
                panoptic[image][region] = label
    return panoptic


def test_large_stuff_mask_against_loop():
    gen = torch.Generator().manual_seed(0)
    for limit in (0, 1, 7, 20, 1000):
        labels = torch.randint(-1, NUM_CLASSES + 1, (3, 9, 11), generator=gen)
        stuff = (labels >= NUM_THINGS) & (labels < NUM_CLASSES) & (
            torch.rand(3, 9, 11, generator=gen) > 0.3)
        kept = large_stuff_mask(labels, stuff, NUM_CLASSES, limit)
        assert torch.equal(
            kept, naive_large_stuff_mask(labels, stuff, NUM_CLASSES, limit))
    # per image: 5 pixels of class 2 in each of two images, limit 6 drops
    # both although the batch has 10
    labels = torch.full((2, 1, 5), 2)
    stuff = torch.ones(2, 1, 5, dtype=torch.bool)
    assert not large_stuff_mask(labels, stuff, NUM_CLASSES, 6).any()
    assert large_stuff_mask(labels, stuff, NUM_CLASSES, 5).all()
    with pytest.raises(ValueError, match='shape'):
        large_stuff_mask(labels, stuff[0], NUM_CLASSES, 5)


def test_segments_to_panoptic_hand_built():
    # one 4x6 image, segments:
    #   0: thing class 1 (3 px)  1: stuff 3 (4 px)  2: thing class 0 (4 px)
    #   3: stuff 3 again (3 px)  4: stuff 4 (2 px)  5: thing class 1, empty
    #   6: label -1 (2 px)       -1: none (2 px)    7: label 9 invalid (4 px)
    segments = torch.tensor([[0, 0, 0, 1, 1, 1],
                             [2, 2, 6, 6, 1, 3],
                             [2, 2, -1, -1, 3, 3],
                             [4, 4, 7, 7, 7, 7]])[None]
    labels = torch.tensor([[1, 3, 0, 3, 4, 1, -1, 9]])
    panoptic = segments_to_panoptic(segments, labels, NUM_THINGS,
                                    NUM_CLASSES, stuff_area_limit=3)
    expected = torch.tensor(
        [[1 + 1000, 1 + 1000, 1 + 1000, 3, 3, 3],
         [0 + 2000, 0 + 2000, VOID, VOID, 3, 3],
         [0 + 2000, 0 + 2000, VOID, VOID, 3, 3],
         [VOID, VOID, VOID, VOID, VOID, VOID]])[None]  # stuff 4: 2 < 3 px
    assert panoptic.dtype == torch.int64
    assert torch.equal(panoptic, expected)
    # stuff 3 counts as one segment of 7 px: limit 5 keeps it although
    # each of its two segments has fewer
    kept = segments_to_panoptic(segments, labels, NUM_THINGS, NUM_CLASSES,
                                stuff_area_limit=5)
    assert (kept[expected == 3] == 3).all()
    # a larger limit drops it; void value of choice
    dropped = segments_to_panoptic(segments, labels, NUM_THINGS, NUM_CLASSES,
                                   stuff_area_limit=8, void_label=255)
    assert (dropped[expected == 3] == 255).all()
    assert (dropped[expected == VOID] == 255).all()
    assert torch.equal(dropped[expected >= 1000], expected[expected >= 1000])


def test_segments_to_panoptic_random_against_loop():
    gen = torch.Generator().manual_seed(1)
    for trial in range(20):
        num_segments = int(torch.randint(0, 9, (1, ), generator=gen))
        batch = 3
        segments = torch.randint(-1, num_segments + 2, (batch, 7, 9),
                                 generator=gen)
        labels = torch.randint(-1, NUM_CLASSES + 1, (batch, num_segments),
                               generator=gen)
        limit = int(torch.randint(0, 12, (1, ), generator=gen))
        got = segments_to_panoptic(segments, labels, NUM_THINGS, NUM_CLASSES,
                                   stuff_area_limit=limit)
        want = naive_segments_to_panoptic(segments, labels, NUM_THINGS,
                                          NUM_CLASSES, limit, VOID)
        assert torch.equal(got, want), trial


def test_segments_to_panoptic_scores_and_label_lists():
    gen = torch.Generator().manual_seed(2)
    scores = torch.rand(2, 4, 6, 8, generator=gen)
    labels = torch.tensor([[0, 2, 1, 0], [3, 0, 4, 1]])
    from_scores = segments_to_panoptic(scores, labels, NUM_THINGS,
                                       NUM_CLASSES, stuff_area_limit=2)
    from_index = segments_to_panoptic(scores.argmax(1), labels, NUM_THINGS,
                                      NUM_CLASSES, stuff_area_limit=2)
    assert torch.equal(from_scores, from_index)
    # ragged per-image labels are padded with -1 (void)
    index = torch.tensor([[[0, 1, 2, 2]], [[0, 1, 1, 0]]])
    ragged = segments_to_panoptic(index, [torch.tensor([2, 0, 0]),
                                          torch.tensor([1])],
                                  NUM_THINGS, NUM_CLASSES,
                                  stuff_area_limit=0)
    expected = torch.tensor([[[2, 1000, 2000, 2000]],
                             [[1001, VOID, VOID, 1001]]])
    assert torch.equal(ragged, expected)
    # no segment at all
    empty = segments_to_panoptic(torch.rand(1, 0, 3, 3), torch.zeros(
        1, 0, dtype=torch.long), NUM_THINGS, NUM_CLASSES)
    assert torch.equal(empty, torch.full((1, 3, 3), VOID))


def test_segments_to_panoptic_rejects_bad_inputs():
    index = torch.zeros(1, 2, 2, dtype=torch.long)
    labels = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match='segments must be'):
        segments_to_panoptic(index[0], labels, NUM_THINGS, NUM_CLASSES)
    with pytest.raises(ValueError, match='integer'):
        segments_to_panoptic(index.float(), labels, NUM_THINGS, NUM_CLASSES)
    with pytest.raises(ValueError, match='segment labels'):
        segments_to_panoptic(torch.rand(1, 3, 2, 2), labels, NUM_THINGS,
                             NUM_CLASSES)
    with pytest.raises(ValueError, match='num_things'):
        segments_to_panoptic(index, labels, 6, NUM_CLASSES)
    with pytest.raises(ValueError, match='instance_offset'):
        segments_to_panoptic(index, labels, NUM_THINGS, NUM_CLASSES,
                             instance_offset=5)
    with pytest.raises(ValueError, match='label tensors'):
        segments_to_panoptic(index, [labels[0], labels[0]], NUM_THINGS,
                             NUM_CLASSES)


def test_fusions_share_the_stuff_rule():
    """The majority vote and segments_to_panoptic agree on a map without
    instances: both keep exactly the large stuff classes."""
    gen = torch.Generator().manual_seed(3)
    sem = torch.randint(NUM_THINGS, NUM_CLASSES, (2, 6, 7), generator=gen)
    merged = merge_semantic_and_instance(sem, torch.zeros_like(sem), None,
                                         NUM_THINGS, NUM_CLASSES,
                                         stuff_area_limit=14)
    labels = torch.arange(NUM_CLASSES).expand(2, -1)
    segmented = segments_to_panoptic(sem, labels, NUM_THINGS, NUM_CLASSES,
                                     stuff_area_limit=14)
    assert torch.equal(merged, segmented)
    assert (merged == VOID).any() and (merged != VOID).any()
