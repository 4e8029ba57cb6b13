# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAEHead and its embedding branch: output shapes, the P'' / CoordConv
switches, positives only inside masks, losses (finite, gradient to every
parameter, memory updated in training only)."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.heads import (CIAEEmbeddingBranch, CIAEHead,
                                          CoordConvUpsample)
from mmpanoptic_plus.models.utils import resample_to_grid
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

STRIDES = (8, 16, 32, 64, 128)
GN4 = dict(type='GN', num_groups=4, requires_grad=True)


def tiny_head(**branch):
    head = CIAEHead(
        num_things=2,
        num_stuff=2,
        in_channels=8,
        embed_dim=4,
        feat_channels=8,
        stacked_convs=1,
        norm_cfg=GN4,
        embedding_branch=dict(
            type='CIAEEmbeddingBranch', inner_channels=8, norm_cfg=GN4,
            **branch),
        memory_total_iters=10)
    head.init_weights()
    return head


def fpn_feats(size=64, batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, 8, -(-size // s), -(-size // s), generator=gen)
        for s in (4, ) + STRIDES)


def test_output_shapes():
    cls, bbox, ctr, embeds = tiny_head()(fpn_feats())
    sizes = [8, 4, 2, 1, 1]
    assert [tuple(c.shape) for c in cls] == [(2, 2, s, s) for s in sizes]
    assert [tuple(b.shape) for b in bbox] == [(2, 4, s, s) for s in sizes]
    assert [tuple(c.shape) for c in ctr] == [(2, 1, s, s) for s in sizes]
    assert embeds.shape == (2, 4, 16, 16)
    with pytest.raises(ValueError, match='P2'):
        tiny_head()(fpn_feats()[1:])


def test_branch_switches():
    head = tiny_head()
    assert isinstance(head.embedding_branch.level_convs[3],
                      CoordConvUpsample)
    assert head.embedding_branch.level_convs[3].conv[0].conv.in_channels \
        == 8 + 2
    assert head.conv_box_embed is not None
    plain = tiny_head(use_coord_conv=False, use_box_embedding=False)
    assert not isinstance(plain.embedding_branch.level_convs[3],
                          CoordConvUpsample)
    assert plain.conv_box_embed is None
    assert not hasattr(plain.embedding_branch, 'conv_box_embed')
    assert plain(fpn_feats())[3].shape == (2, 4, 16, 16)


def test_box_embedding_term_is_a_conv_of_the_resampled_sum():
    branch = CIAEEmbeddingBranch(8, embed_dim=4, inner_channels=8,
                                 norm_cfg=GN4)
    feats = fpn_feats()
    gen = torch.Generator().manual_seed(1)
    box_embeds = [
        torch.randn(2, 4, f.size(2), f.size(3), generator=gen)
        for f in feats[1:]
    ]
    with_box = branch(feats, box_embeds, STRIDES)
    branch.use_box_embedding = False
    without = branch(feats)
    summed = sum(
        resample_to_grid(e, s, (16, 16), 4)
        for e, s in zip(box_embeds, STRIDES))
    torch.testing.assert_close(with_box - without,
                               branch.conv_box_embed(summed))


def test_positives_only_inside_masks():
    head = tiny_head()
    # an L-shaped mask: its box centre (and the stride-8 cell there) is
    # outside the mask
    mask = np.zeros((1, 64, 64), dtype=np.uint8)
    mask[0, 0:48, 0:16] = 1
    mask[0, 32:48, 0:48] = 1
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 48., 48.]]),
        labels=torch.tensor([1]),
        masks=BitmapMasks(mask, 64, 64))
    targets = head.assigner.assign([(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)],
                                   [gt])
    fg = targets.fg_masks[0][0]
    # cell (i, j) sits at pixel (8 j + 4, 8 i + 4)
    for i in range(8):
        for j in range(8):
            if fg[i, j]:
                assert mask[0, 8 * i + 4, 8 * j + 4] == 1
    assert not fg[2, 2]  # (20, 20): in the box, not in the mask
    assert fg.any()
    assert targets.levelness_targets is None


def _samples(size=64):
    samples = []
    for img_id in range(2):
        masks = np.zeros((2, size, size), dtype=np.uint8)
        masks[0, 8:24, 8:30] = 1
        masks[1, 36:60, 30:50] = 1
        ids = torch.full((1, size, size), 2 if img_id else 3,
                         dtype=torch.long)
        ids[0, :20, :] = 3 if img_id else 2  # two stuff segments
        ids[0][torch.from_numpy(masks[0]).bool()] = 0
        ids[0][torch.from_numpy(masks[1]).bool()] = 1
        ids[0, 60:, :8] = -1  # crowd
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size), batch_input_shape=(size, size),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[8., 8., 30., 24.], [30., 36., 50., 60.]]),
            labels=torch.tensor([0, 1]),
            masks=BitmapMasks(masks, size, size))
        sample.ignored_instances = InstanceData(
            bboxes=torch.tensor([[0., 60., 8., 64.]]),
            labels=torch.tensor([0]),
            masks=BitmapMasks(np.zeros((1, size, size), np.uint8), size,
                              size))
        sample.gt_segment_ids = PixelData(data=ids)
        sample.gt_segments = InstanceData(
            labels=torch.tensor([0, 1, 2, 3]),
            is_thing=torch.tensor([True, True, False, False]))
        samples.append(sample)
    return samples


def test_losses_gradients_and_memory_update():
    head = tiny_head()
    head.train()
    feats = tuple(f.requires_grad_(True) for f in fpn_feats())
    before = head.memory.embeddings.clone()
    losses = head.loss(feats, _samples())
    assert set(losses) == {
        'loss_cls', 'loss_bbox', 'loss_centerness', 'loss_cae', 'loss_iae'
    }
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name
    assert int(head.memory.num_updates) == 1
    assert not torch.equal(head.memory.embeddings, before)
    # evaluation mode: the loss leaves the memory alone
    head.eval()
    head.loss(fpn_feats(), _samples())
    assert int(head.memory.num_updates) == 1
    assert 'memory.embeddings' in head.state_dict()
    assert 'memory.num_updates' in head.state_dict()


def test_stuff_memory_rows():
    head = tiny_head()
    # merged things: row 0 = things, rows 1, 2 = stuff classes 2, 3
    torch.testing.assert_close(head.stuff_memory(),
                               head.memory.normalized()[1:])


def test_missing_segment_targets_is_explained():
    samples = _samples()
    del samples[0].gt_segment_ids
    with pytest.raises(ValueError, match='GeneratePanopticSegmentIds'):
        tiny_head().loss(fpn_feats(), samples)
