# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""``rtp_queries_to_panoptic`` (models/postprocess/realtime_panoptic.py), the
chain ``model.predict`` and the ONNX post-processing share: equal to its
steps composed by hand on all masks at once, for any chunking; a hand-made
scene checked pixel by pixel."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.postprocess.panoptic_fusion import \
    heuristic_panoptic_fusion
from mmpanoptic_plus.models.postprocess.realtime_panoptic import (
    RTP_TEST_CFG, merge_rtp_test_cfg, resample_to_output,
    rtp_queries_to_panoptic, semantic_labels_to_output)
from mmpanoptic_plus.structures import INSTANCE_OFFSET


def _random_queries(seed, num_queries=7, num_things=2, num_stuff=2):
    gen = torch.Generator().manual_seed(seed)
    soft_masks = torch.rand(num_queries, 8, 10, generator=gen) ** 3
    sem_logits = torch.randn(num_things + num_stuff, 8, 10, generator=gen)
    queries = InstanceData(
        bboxes=torch.rand(num_queries, 4, generator=gen) * 30,
        scores=torch.rand(num_queries, generator=gen).sort(
            descending=True).values,
        labels=torch.randint(0, num_things, (num_queries, ), generator=gen))
    return queries, soft_masks, sem_logits


@pytest.mark.parametrize('chunk_size', [1, 3, 7, 100])
def test_chain_equals_its_steps_composed_for_any_chunking(chunk_size):
    queries, soft_masks, sem_logits = _random_queries(0)
    img_shape, out_shape = (30, 37), (45, 61)
    cfg = merge_rtp_test_cfg(
        dict(chunk_size=chunk_size, mask_thr=0.3, stuff_area_limit=20))
    result = rtp_queries_to_panoptic(
        queries,
        soft_masks.split(chunk_size),
        sem_logits,
        img_shape,
        out_shape,
        2,
        2,
        cfg,
        scale_factor=(2.0, 0.5))
    # the steps on all masks at once, the masks fully resampled
    masks = resample_to_output(soft_masks, img_shape, out_shape) >= 0.3
    assert masks.any() and not masks.all()
    sem_seg = semantic_labels_to_output(sem_logits, img_shape, out_shape)
    expected = heuristic_panoptic_fusion(
        masks, queries.labels, queries.scores, sem_seg, 2, 2,
        overlap_thr=0.5, stuff_area_limit=20)
    pan = result['pan_results'].sem_seg
    assert pan.shape == (1, ) + out_shape
    assert torch.equal(pan[0], expected)
    assert (pan >= INSTANCE_OFFSET).any()  # thing segments made it
    instances = result['ins_results']
    assert torch.equal(instances.masks.to_dense(), masks)
    assert torch.equal(instances.labels, queries.labels)
    assert torch.equal(instances.scores, queries.scores)
    # boxes divided by (w, h, w, h)
    torch.testing.assert_close(
        instances.bboxes,
        queries.bboxes / torch.tensor([2.0, 0.5, 2.0, 0.5]))


def test_chain_hand_made_scene_and_errors():
    """One thing query whose soft mask covers stride-4 cells (1..2, 1..2) of
    a 16 x 16 input at full strength, on stuff class 2 everywhere."""
    soft = torch.zeros(1, 4, 4)
    soft[0, 1:3, 1:3] = 1.0
    sem_logits = torch.zeros(3, 4, 4)
    sem_logits[2] = 5.0
    queries = InstanceData(
        bboxes=torch.tensor([[4., 4., 12., 12.]]),
        scores=torch.tensor([0.9]),
        labels=torch.tensor([0]))
    cfg = merge_rtp_test_cfg(dict(mask_thr=0.5, stuff_area_limit=0))
    result = rtp_queries_to_panoptic(queries, [soft], sem_logits, (16, 16),
                                     (16, 16), 1, 2, cfg)
    pan = result['pan_results'].sem_seg[0]
    # per axis, the bilinear weight of the two cells (centres 6 and 10) is
    # .625 at pixels 4 and 11, .875 at 5 and 10, 1 between: the mask is
    # pixels 4..11 squared but the corners (.625 ** 2 < .5)
    expected = torch.full((16, 16), 2)
    expected[4:12, 4:12] = 0 + 1 * INSTANCE_OFFSET
    for y in (4, 11):
        for x in (4, 11):
            expected[y, x] = 2
    assert torch.equal(pan, expected)
    # no scale factor: boxes stay in input pixels
    assert result['ins_results'].bboxes.tolist() == [[4., 4., 12., 12.]]
    # no queries: stuff only, an empty mask set of the output size
    empty = InstanceData(
        bboxes=torch.zeros(0, 4),
        scores=torch.zeros(0),
        labels=torch.zeros(0, dtype=torch.long))
    result = rtp_queries_to_panoptic(empty, [], sem_logits, (16, 16),
                                     (8, 8), 1, 2, cfg)
    assert torch.equal(result['pan_results'].sem_seg,
                       torch.full((1, 8, 8), 2))
    assert result['ins_results'].masks.to_dense().shape == (0, 8, 8)
    with pytest.raises(ValueError, match='2 soft masks for 1 queries'):
        rtp_queries_to_panoptic(queries, [soft, soft], sem_logits, (16, 16),
                                (16, 16), 1, 2, cfg)
    with pytest.raises(ValueError, match='chunk_size'):
        rtp_queries_to_panoptic(queries, [soft], sem_logits, (16, 16),
                                (16, 16), 1, 2,
                                dict(RTP_TEST_CFG, chunk_size=0))
