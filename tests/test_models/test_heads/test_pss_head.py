# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSSHead: seed targets, branch layout, losses, gradients, switches."""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.heads import PSSHead, seed_targets
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

BRANCH = dict(
    type='UPSNetSemanticHead', in_channels=8, feat_channels=8, num_convs=3,
    conv_cfg=None, norm_cfg=dict(type='GN', num_groups=4,
                                 requires_grad=True))


def test_seed_targets_against_loops():
    centers = torch.tensor([[10., 6.], [30., 26.]])  # (x, y), input pixels
    heatmap, offsets, within = seed_targets(centers, (8, 10), stride=4,
                                            radius=8.)
    sigma = 17 / 6
    for i in range(8):
        for j in range(10):
            px, py = 4 * j + 2, 4 * i + 2
            d2 = [(float(cx) - px)**2 + (float(cy) - py)**2
                  for cx, cy in centers]
            k = min(range(2), key=lambda n: d2[n])
            inside = d2[k] <= 64
            assert bool(within[0, i, j]) == inside
            expected = torch.exp(torch.tensor(-d2[k] / (2 * sigma**2))) \
                if inside else torch.tensor(0.)
            assert abs(float(heatmap[0, i, j]) - float(expected)) < 1e-6
            if inside:
                assert abs(float(offsets[0, i, j]) -
                           (float(centers[k, 1]) - py) / 4) < 1e-6
                assert abs(float(offsets[1, i, j]) -
                           (float(centers[k, 0]) - px) / 4) < 1e-6
            else:
                assert offsets[:, i, j].abs().sum() == 0
    empty = seed_targets(torch.zeros(0, 2), (3, 3))
    assert empty[0].sum() == 0 and not empty[2].any()


def make_head(**kwargs):
    cfg = dict(num_things=2, num_stuff=1, embedding_branch=BRANCH,
               seeding_branch=BRANCH, embed_dim=8, classifier_channels=8,
               num_clusters=4, small_area=40, seed_radius=8.)
    cfg.update(kwargs)
    return PSSHead(**cfg)


def feats(batch=2, size=8):
    torch.manual_seed(0)
    return [torch.randn(batch, 8, size // 2**i, size // 2**i)
            for i in range(4)]


def sample(with_things=True):
    """32x32 input: a thing of class 0 (rows 4-19, cols 4-19), a small thing
    of class 1 (rows 24-29, cols 24-29), stuff class 2 elsewhere."""
    ds = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32)))
    ids = torch.full((1, 32, 32), 2 if with_things else 0)
    labels, is_thing, boxes = [2], [False], []
    if with_things:
        ids[0, 4:20, 4:20] = 0
        ids[0, 24:30, 24:30] = 1
        labels, is_thing = [0, 1, 2], [True, True, False]
        boxes = [[4, 4, 20, 20], [24, 24, 30, 30]]
    ds.gt_segment_ids = PixelData(data=ids)
    ds.gt_segments = InstanceData(
        labels=torch.tensor(labels), is_thing=torch.tensor(is_thing))
    ds.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        labels=torch.tensor(labels[:len(boxes)], dtype=torch.long))
    return ds


def test_forward_layout():
    head = make_head()
    outs = head(feats())
    assert outs['embeddings'].shape == (2, 8, 8, 8)
    torch.testing.assert_close(outs['embeddings'].norm(dim=1),
                               torch.ones(2, 8, 8))
    assert outs['seed_heatmap'].shape == (2, 1, 8, 8)
    assert outs['seed_offsets'].shape == (2, 2, 8, 8)
    assert head.embedding_branch.out_channels == 8
    assert head.seeding_branch.out_channels == 3
    assert len(head.embedding_branch.subnet) == 3
    assert head(feats())['embeddings'].shape[1] == head.embed_dim
    without = make_head(seeding_branch=None)
    assert set(without(feats())) == {'embeddings'}


def test_losses_are_finite_and_reach_every_branch():
    head = make_head()
    losses = head.loss(feats(), [sample(), sample()])
    assert set(losses) == {'loss_segsort', 'loss_segment_cls',
                           'loss_seed_heatmap', 'loss_seed_offset'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, module in (('embedding', head.embedding_branch),
                         ('seeding', head.seeding_branch),
                         ('classifier', head.classifier)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_image_without_things_gives_no_nan():
    head = make_head()
    losses = head.loss(feats(), [sample(False), sample(False)])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert float(losses['loss_seed_offset']) == 0


def test_classifier_switch_off_uses_class_means():
    head = make_head(classifier_channels=None)
    head.train()
    losses = head.loss(feats(), [sample(), sample()])
    assert 'loss_segment_cls' not in losses
    assert (head.class_means.norm(dim=1) > 0).all()
    protos = torch.nn.functional.normalize(head.class_means, dim=1)
    assert head.classify(protos).argmax(-1).tolist() == [0, 1, 2]


def test_missing_segment_targets_raise():
    ds = sample()
    del ds.gt_segment_ids
    with pytest.raises(KeyError, match='GeneratePanopticSegmentIds'):
        make_head().loss(feats(1), [ds])
