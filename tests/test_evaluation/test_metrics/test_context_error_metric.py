# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ContextErrorMetric on a hand-built dataset whose nearest neighbours are
known: crafted embedding maps (constant unit vectors per instance) and
images (constant colours per instance)."""
import math

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.evaluation.functional import (context_distributions,
                                                   context_error)
from mmpanoptic_plus.evaluation.metrics import ContextErrorMetric
from mmpanoptic_plus.evaluation.metrics.context_error_metric import \
    embedding_means
from mmpanoptic_plus.registry import METRICS

META = dict(
    classes=('a', 'b', 'sky', 'ground'),
    thing_classes=('a', 'b'),
    stuff_classes=('sky', 'ground'))
SIZE = 16


def _unit(angle):
    return np.array([math.cos(angle), math.sin(angle), 0.0])


def _sample(split, boxes, labels, vectors, colours, ground_from=8):
    """One 16x16 image: sky above row ``ground_from``, ground below, the
    instances' boxes painted with their class, embedding and colour."""
    sem_seg = np.full((SIZE, SIZE), 2, np.uint8)
    sem_seg[ground_from:] = 3
    sem_seg[0, 0] = 255  # an ignore pixel
    embedding = np.zeros((3, SIZE, SIZE), np.float32)
    embedding[2] = 1.0  # background: orthogonal to every instance
    image = np.zeros((3, SIZE, SIZE), np.uint8)
    masks = np.zeros((len(boxes), SIZE, SIZE), np.uint8)
    for n, ((x1, y1, x2, y2), label, vector, colour) in enumerate(
            zip(boxes, labels, vectors, colours)):
        sem_seg[y1:y2, x1:x2] = label
        embedding[:, y1:y2, x1:x2] = np.asarray(vector)[:, None, None]
        image[:, y1:y2, x1:x2] = np.asarray(colour)[::-1, None, None]  # BGR
        masks[n, y1:y2, x1:x2] = 1
    sample = DetDataSample(
        metainfo=dict(
            split=split,
            img_shape=(SIZE, SIZE),
            ori_shape=(SIZE, SIZE),
            img_path=f'{split}_{len(boxes)}.png'))
    sample.gt_instances = InstanceData(
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, SIZE, SIZE))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem_seg)[None])
    sample.pred_embedding = PixelData(embedding=torch.from_numpy(embedding))
    return sample, torch.from_numpy(image), sem_seg


def _dataset():
    """Database (train): four class-a instances at angles 0, 0.3, 0.6, 1.5
    rad in different places, one class-b instance pointing exactly like the
    query; query (val): class a at angle 0.5 -> nearest 0.6, then 0.3."""
    train = [
        _sample('train', [(2, 2, 6, 6)], [0], [_unit(0.0)], [(200, 0, 0)]),
        _sample('train', [(9, 5, 13, 9)], [0], [_unit(0.3)], [(10, 10, 10)]),
        _sample('train', [(4, 10, 8, 14), (10, 2, 14, 6)], [0, 1],
                [_unit(0.6), _unit(0.5)], [(90, 90, 90), (100, 100, 100)],
                ground_from=10),
        _sample('train', [(6, 6, 10, 10)], [0], [_unit(1.5)],
                [(101, 99, 100)]),
    ]
    val = [
        _sample('val', [(5, 6, 9, 10)], [0], [_unit(0.5)], [(100, 100, 100)])
    ]
    return train, val


def _run(metric, samples, as_dict=False):
    metric.dataset_meta = META
    for sample, image, _ in samples:
        data = sample.to_dict() if as_dict else sample
        metric.process(dict(inputs=[image]), [data])


@pytest.mark.parametrize('as_dict', [False, True])
def test_embedding_retrieval_and_ce_on_known_neighbours(as_dict):
    train, val = _dataset()
    metric = ContextErrorMetric(k=2, embedding_stride=1)
    _run(metric, train + val, as_dict)
    retrieval = metric.retrieve(metric.results)
    query = retrieval['query']
    assert len(query) == 1
    # instance rows: train images 0, 1, 2 (a, b), 3 then the val one
    assert retrieval['image'].tolist() == [0, 1, 2, 2, 3, 4]
    assert retrieval['retrieved'][0].tolist() == [2, 1]  # 0.6 rad, 0.3 rad
    np.testing.assert_allclose(retrieval['scores'][0],
                               [math.cos(0.1), math.cos(0.2)], rtol=1e-5)
    expected = context_error(
        context_distributions(val[0][2], (5, 6, 9, 10), 4),
        np.stack([
            context_distributions(train[2][2], (4, 10, 8, 14), 4),
            context_distributions(train[1][2], (9, 5, 13, 9), 4)
        ]))
    assert retrieval['ce'][0] == pytest.approx(expected, rel=1e-5)
    metrics = metric.compute_metrics(metric.results)
    assert metrics['CE_a'] == pytest.approx(expected, rel=1e-5)
    assert 'CE_b' not in metrics  # no class-b query
    assert metrics['CE'] == pytest.approx(expected, rel=1e-5)
    assert metrics['num_queries'] == 1


def test_mean_colour_baseline_ranks_by_colour_distance():
    train, val = _dataset()
    metric = ContextErrorMetric(k=2, descriptor='mean_color')
    _run(metric, train + val)
    retrieval = metric.retrieve(metric.results)
    # colour (100, 100, 100): (101, 99, 100) at distance^2 2, then
    # (90, 90, 90); the class-b instance of the same colour is not a
    # candidate (same category only)
    assert retrieval['retrieved'][0].tolist() == [4, 2]
    np.testing.assert_allclose(
        metric.results[3]['descriptors'], [[101, 99, 100]], rtol=1e-6)


def test_leave_one_out_and_fewer_candidates_than_k():
    train, _ = _dataset()
    metric = METRICS.build(
        dict(
            type='ContextErrorMetric',
            k=5,
            query_split='train',
            database_split=None,
            embedding_stride=1))
    _run(metric, train)
    retrieval = metric.retrieve(metric.results)
    labels = retrieval['labels'][retrieval['query']]
    assert labels.tolist() == [0, 0, 0, 0, 1]
    for query, row in zip(retrieval['query'], retrieval['retrieved']):
        assert query not in row
    # 3 other class-a instances, padded to K = 5; the lone b has none
    assert (retrieval['retrieved'][:4, 3:] == -1).all()
    assert retrieval['retrieved'][0, :3].tolist() == [1, 2, 4]
    assert (retrieval['retrieved'][4] == -1).all()
    assert np.isnan(retrieval['ce'][4])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['num_queries'] == 4 and 'CE_b' not in metrics


def test_missing_database_or_embedding_is_a_clear_error():
    _, val = _dataset()
    metric = ContextErrorMetric(embedding_stride=1)
    _run(metric, val)
    with pytest.raises(ValueError, match='database split'):
        metric.compute_metrics(metric.results)
    sample, image, _ = val[0]
    del sample.pred_embedding
    with pytest.raises(ValueError, match='with_embedding=True'):
        metric.process(dict(inputs=[image]), [sample])
    sample.set_metainfo(dict(split='test'))
    with pytest.raises(ValueError, match="split 'test'"):
        metric.process(dict(inputs=[image]), [sample])


def test_embedding_means_resample_the_stride_map():
    """A stride-4 map of an 11x13 image (3x4 cells, padding beyond): the
    means equal a naive bilinear upsampling (F.interpolate x4, crop),
    per-pixel normalisation and mask mean."""
    torch.manual_seed(0)
    embedding = torch.randn(5, 3, 4)
    ids = torch.zeros(11, 13, dtype=torch.long)
    ids[2:6, 3:9] = 1
    ids[7:, :4] = 2
    got = embedding_means(embedding, (11, 13), ids, 3, stride=4,
                          band_pixels=20)
    full = torch.nn.functional.interpolate(
        embedding[None], scale_factor=4, mode='bilinear',
        align_corners=False)[0, :, :11, :13]
    full = full / full.norm(dim=0, keepdim=True)
    for n in (1, 2):
        mean = full[:, ids == n].mean(1)
        torch.testing.assert_close(got[n - 1], mean / mean.norm(),
                                   rtol=1e-4, atol=1e-5)
    assert torch.equal(got[2], torch.zeros(5))  # no pixel: zero vector
