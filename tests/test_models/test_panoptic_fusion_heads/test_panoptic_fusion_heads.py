# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The registered fusion heads, built from config dicts, give exactly the
outputs of the functions they wrap, and have no parameters."""
import pytest
import torch

from mmpanoptic_plus.models.panoptic_fusion_heads import (
    HeuristicPanopticFusionHead, MajorityVoteFusionHead, SegmentFusionHead)
from mmpanoptic_plus.models.postprocess import (heuristic_panoptic_fusion,
                                                merge_semantic_and_instance,
                                                segments_to_panoptic)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.structures import CroppedMasks
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

NUM_THINGS, NUM_STUFF = 2, 3
NUM_CLASSES = NUM_THINGS + NUM_STUFF


def _no_parameters(head):
    assert list(head.parameters()) == [] and list(head.buffers()) == []
    assert head.loss() == {}


def test_heuristic_head_matches_function():
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 12, 14, generator=gen) > 0.6
    labels = torch.randint(0, NUM_THINGS, (6, ), generator=gen)
    scores = torch.rand(6, generator=gen)
    sem_seg = torch.randint(0, NUM_CLASSES, (12, 14), generator=gen)
    settings = dict(overlap_thr=0.7, stuff_area_limit=9, score_thr=0.2)
    head = MODELS.build(
        dict(type='HeuristicPanopticFusionHead',
             num_things_classes=NUM_THINGS,
             num_stuff_classes=NUM_STUFF,
             **settings))
    assert isinstance(head, HeuristicPanopticFusionHead)
    _no_parameters(head)
    expected = heuristic_panoptic_fusion(masks, labels, scores, sem_seg,
                                         NUM_THINGS, NUM_STUFF, **settings)
    assert torch.equal(head.predict(masks, labels, scores, sem_seg),
                       expected)
    assert torch.equal(
        head(CroppedMasks.from_dense(masks), labels, scores, sem_seg),
        expected)
    # the settings matter: the defaults give another map here
    default = MODELS.build(
        dict(type='HeuristicPanopticFusionHead',
             num_things_classes=NUM_THINGS,
             num_stuff_classes=NUM_STUFF))
    assert not torch.equal(default(masks, labels, scores, sem_seg), expected)


def test_majority_vote_head_matches_function():
    gen = torch.Generator().manual_seed(1)
    sem = torch.randint(0, NUM_CLASSES, (2, 10, 12), generator=gen)
    ids = torch.randint(0, 4, (2, 10, 12), generator=gen)
    thing_mask = torch.rand(2, 10, 12, generator=gen) > 0.3
    head = MODELS.build(
        dict(type='MajorityVoteFusionHead',
             num_things_classes=NUM_THINGS,
             num_stuff_classes=NUM_STUFF,
             stuff_area_limit=15,
             void_label=255))
    assert isinstance(head, MajorityVoteFusionHead)
    _no_parameters(head)
    for mask in (thing_mask, None):
        expected = merge_semantic_and_instance(
            sem, ids, mask, NUM_THINGS, NUM_CLASSES, stuff_area_limit=15,
            void_label=255)
        assert torch.equal(head(sem, ids, mask), expected)
    assert (expected == 255).any()


def test_segment_head_matches_function():
    gen = torch.Generator().manual_seed(2)
    scores = torch.rand(2, 6, 9, 11, generator=gen)
    labels = torch.randint(-1, NUM_CLASSES, (2, 6), generator=gen)
    head = MODELS.build(
        dict(type='SegmentFusionHead',
             num_things_classes=NUM_THINGS,
             num_stuff_classes=NUM_STUFF,
             stuff_area_limit=12))
    assert isinstance(head, SegmentFusionHead)
    _no_parameters(head)
    for segments in (scores, scores.argmax(1)):
        expected = segments_to_panoptic(segments, labels, NUM_THINGS,
                                        NUM_CLASSES, stuff_area_limit=12)
        assert torch.equal(head.predict(segments, labels), expected)
        assert torch.equal(head(segments, list(labels)), expected)


def test_unknown_settings_are_refused():
    # mmdet's base swallows **kwargs; ours name their settings
    with pytest.raises(TypeError, match='stuff_area_limt'):
        MODELS.build(
            dict(type='MajorityVoteFusionHead',
                 num_things_classes=NUM_THINGS,
                 num_stuff_classes=NUM_STUFF,
                 stuff_area_limt=10))
    with pytest.raises(ValueError, match='non-negative'):
        SegmentFusionHead(num_things_classes=-1, num_stuff_classes=2)
