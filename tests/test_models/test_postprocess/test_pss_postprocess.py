# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS inference chain: seeds, seed segments, and the panoptic map of
hand-built embeddings."""
import torch

from mmpanoptic_plus.models.postprocess import (find_seeds,
                                                pss_panoptic_predict,
                                                pss_segments,
                                                seed_segment_mask)
from mmpanoptic_plus.structures import INSTANCE_OFFSET


def test_find_seeds_moves_peaks_by_their_offsets():
    heatmap = torch.zeros(1, 1, 8, 8)
    heatmap[0, 0, 2, 3] = 0.9
    heatmap[0, 0, 2, 4] = 0.5  # not a local maximum
    heatmap[0, 0, 6, 6] = 0.05  # under the threshold
    offsets = torch.zeros(1, 2, 8, 8)
    offsets[0, :, 2, 3] = torch.tensor([1.4, -0.6])
    seeds = find_seeds(heatmap, offsets, threshold=0.1, kernel=3)
    assert seeds[0].tolist() == [[3, 2]]


def test_seed_segment_mask():
    labels = torch.tensor([[[0, 0, 1], [2, 2, -1]]])
    mask = seed_segment_mask(labels, [torch.tensor([[0, 2], [1, 2]])], 3)
    assert mask.tolist() == [[False, True, False]]


def two_object_embeddings():
    """16x16 map, stuff class 3 (direction e2) around two thing objects of
    class 0: object A (rows 2-7, cols 2-7) in two halves of near directions
    (e0 and e0 + 0.5 e1, cosine 0.894), object B (rows 9-14, cols 9-14)
    direction e1."""
    embeds = torch.zeros(1, 3, 16, 16)
    embeds[0, 2] = 1
    embeds[0, :, 2:8, 2:5] = torch.tensor([1., 0., 0.])[:, None, None]
    embeds[0, :, 2:8, 5:8] = torch.tensor([1., 0.5, 0.])[:, None, None]
    embeds[0, :, 9:15, 9:15] = torch.tensor([0., 1., 0.])[:, None, None]
    return torch.nn.functional.normalize(embeds, dim=1)


def classify(protos):
    """Class 0 (thing) for e0/e1-like prototypes, class 3 (stuff) for e2."""
    thing = protos[..., 0] + protos[..., 1]
    stuff = protos[..., 2]
    zeros = torch.zeros_like(thing)
    return torch.stack([thing, zeros - 9, zeros - 9, stuff], -1)


def test_panoptic_map_of_hand_built_embeddings():
    embeds = two_object_embeddings()
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64))
    cfg = dict(num_clusters=16, merge_threshold=0.85, use_seeds=False,
               thing_area_limit=0, stuff_area_limit=0,
               dynamic_partition=True)
    result = pss_panoptic_predict(embeds, classify, [meta], num_things=3,
                                  num_stuff=1, test_cfg=cfg, stride=4)[0]
    pan = result.sem_seg[0]
    assert pan.shape == (64, 64)
    # object A is one instance however the grid cut it, B another, stuff 3
    a = pan[8:32, 8:32].unique()
    b = pan[36:60, 36:60].unique()
    assert a.numel() == 1 and b.numel() == 1 and a != b
    assert int(a) % INSTANCE_OFFSET == 0 and int(b) % INSTANCE_OFFSET == 0
    assert int(pan[0, 0]) == 3
    # with T_P above cos(A halves) = 0.894 the halves stay two instances
    cfg['merge_threshold'] = 0.95
    pan = pss_panoptic_predict(embeds, classify, [meta], 3, 1,
                               test_cfg=cfg, stride=4)[0].sem_seg[0]
    assert pan[8:32, 8:20].unique().numel() == 1
    assert pan[8:32, 8:20].unique() != pan[8:32, 20:32].unique()


def test_area_rules_and_seeds():
    embeds = two_object_embeddings()
    meta = dict(img_shape=(64, 64), ori_shape=(32, 32))  # rescaled output
    heatmap = torch.zeros(1, 1, 16, 16)
    heatmap[0, 0, 4, 4] = 1.0  # a seed on object A only
    offsets = torch.zeros(1, 2, 16, 16)
    cfg = dict(num_clusters=16, merge_threshold=0.85, use_seeds=True,
               thing_area_limit=10 ** 6, stuff_area_limit=0)
    pan = pss_panoptic_predict(embeds, classify, [meta], 3, 1, heatmap,
                               offsets, test_cfg=cfg, stride=4)[0].sem_seg[0]
    assert pan.shape == (32, 32)
    # the seed segment survives the area rule, non-seed B becomes void (4)
    assert int(pan[4:16, 4:16].unique().numel()) == 1
    assert int(pan[6, 6]) % INSTANCE_OFFSET == 0 and int(pan[6, 6]) >= 1000
    assert (pan[20:28, 20:28] == 4).all()
    # stuff under its area limit becomes void too
    cfg['stuff_area_limit'] = 10 ** 6
    pan = pss_panoptic_predict(embeds, classify, [meta], 3, 1, heatmap,
                               offsets, test_cfg=cfg, stride=4)[0].sem_seg[0]
    assert int(pan[0, 0]) == 4


def test_padding_is_no_segment_and_no_nan_without_things():
    embeds = torch.zeros(1, 3, 8, 8)
    embeds[0, 2] = 1  # stuff only
    meta = dict(img_shape=(20, 24), ori_shape=(20, 24))
    segments = pss_segments(embeds, classify, [meta], 3,
                            test_cfg=dict(num_clusters=4, use_seeds=False))
    assert (segments['labels'][0, 5:] == -1).all()
    assert (segments['labels'][0, :, 6:] == -1).all()
    assert (segments['labels'][0, :5, :6] >= 0).all()
    pan = pss_panoptic_predict(embeds, classify, [meta], 3, 1,
                               test_cfg=dict(num_clusters=4,
                                             stuff_area_limit=0))[0]
    assert (pan.sem_seg == 3).all()
