# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PanopticQualityMetric against pq_compute (itself checked against the
reference) and a naive semantic mIoU."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from panoptic_test_utils import (CATEGORIES, ROAD, SKY, make_scene,
                                 random_prediction, segments_from_map,
                                 write_set)

from mmpanoptic_plus.evaluation import PanopticQualityMetric
from mmpanoptic_plus.evaluation.functional import pq_compute
from mmpanoptic_plus.evaluation.metrics import panoptic_quality_metric
from mmpanoptic_plus.registry import METRICS

CAT_IDS = [c['id'] for c in CATEGORIES]
LABEL_OF_CATEGORY = {cat_id: label for label, cat_id in enumerate(CAT_IDS)}
NUM_CLASSES = len(CATEGORIES)
DATASET_META = dict(
    classes=tuple(c['name'] for c in CATEGORIES),
    thing_classes=tuple(c['name'] for c in CATEGORIES if c['isthing']),
    stuff_classes=tuple(c['name'] for c in CATEGORIES if not c['isthing']),
    cat_ids=CAT_IDS)


def encode_prediction(pred_map, pred_segments):
    """COCO-style prediction -> ``label + instance * 1000`` (VOID =
    num_classes); every segment gets its own instance number."""
    encoded = np.full(pred_map.shape, NUM_CLASSES, np.int64)
    next_instance = [0] * NUM_CLASSES
    for segment in pred_segments:
        label = LABEL_OF_CATEGORY[segment['category_id']]
        encoded[pred_map == segment['id']] = (
            label + 1000 * next_instance[label])
        next_instance[label] += 1
    return encoded


def data_sample(image_id,
                gt_map,
                gt_segments,
                encoded_pred,
                gt_folder,
                with_gt_map=True):
    segments_info = [
        dict(
            id=s['id'],
            category=LABEL_OF_CATEGORY[s['category_id']],
            is_thing=bool(
                CATEGORIES[LABEL_OF_CATEGORY[s['category_id']]]['isthing']),
            iscrowd=bool(s['iscrowd']),
            area=s['area']) for s in gt_segments
    ]
    sample = DetDataSample(
        metainfo=dict(
            img_id=image_id,
            img_path=f'leftImg8bit/{image_id}_leftImg8bit.png',
            seg_map_path=osp.join(gt_folder, f'{image_id}.png'),
            segments_info=segments_info,
            ori_shape=gt_map.shape))
    if with_gt_map:
        sample.gt_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(gt_map.astype(np.int64))[None])
    sample.pred_panoptic_seg = PixelData(
        sem_seg=torch.from_numpy(encoded_pred)[None])
    return sample


def build_set(tmp_path, num_images=5, seed=0, scene=make_scene):
    """Random predictions of a scene, as files (for pq_compute) and as
    data samples (for the metric)."""
    rng = np.random.default_rng(seed)
    gts, preds, samples = [], [], []
    gt_map, gt_segments = scene()
    for i in range(num_images):
        pred_map, pred_segments = random_prediction(gt_map, gt_segments,
                                                    CAT_IDS, rng)
        image_id = f'city_{i:06d}_000019'
        gts.append((image_id, gt_map, gt_segments))
        preds.append((image_id, pred_map, pred_segments))
        samples.append((image_id, gt_map, gt_segments,
                        encode_prediction(pred_map, pred_segments)))
    gt_json, gt_folder = write_set(str(tmp_path / 'gt'), gts, CATEGORIES)
    pred_json, pred_folder = write_set(str(tmp_path / 'pred'), preds)
    samples = [data_sample(*s, gt_folder) for s in samples]
    return (gt_json, gt_folder, pred_json, pred_folder), samples


def run_metric(samples, as_dicts=True, **kwargs):
    metric = PanopticQualityMetric(**kwargs)
    metric.dataset_meta = DATASET_META
    batch = [s.to_dict() for s in samples] if as_dicts else samples
    metric.process({}, batch[:2])
    metric.process({}, batch[2:])
    return metric.evaluate(len(samples))


def assert_metric_equals_pq_compute(metrics, files_results, prefix='panoptic'):
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            name = f'{prefix}/{key.upper()}{suffix}'
            assert metrics[name] == pytest.approx(
                100 * files_results[group][key], abs=1e-7), name


def naive_miou(samples):
    """Per-pixel semantic IoU (gt label from the segment category, VOID
    and unannotated gt ignored, predicted VOID is wrong)."""
    intersection = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for sample in samples:
        gt_map = sample.gt_panoptic_seg.sem_seg[0].numpy()
        gt_label = np.full(gt_map.shape, -1)
        for segment in sample.segments_info:
            gt_label[gt_map == segment['id']] = segment['category']
        pred_label = sample.pred_panoptic_seg.sem_seg[0].numpy() % 1000
        valid = gt_label >= 0
        for c in range(NUM_CLASSES):
            intersection[c] += ((gt_label == c) & (pred_label == c)).sum()
            union[c] += (((gt_label == c) | (pred_label == c)) & valid).sum()
    present = union > 0
    return 100 * np.mean(intersection[present] / union[present])


def test_metric_equals_pq_compute_and_naive_miou(tmp_path):
    files, samples = build_set(tmp_path)
    metrics = run_metric(samples)
    assert_metric_equals_pq_compute(metrics, pq_compute(*files))
    assert 0 < metrics['panoptic/PQ'] < 100
    assert metrics['panoptic/mIoU'] == pytest.approx(
        naive_miou(samples), abs=1e-9)
    # Data samples given as DetDataSample objects work the same.
    assert run_metric(samples, as_dicts=False) == metrics


def test_gt_read_from_seg_map_path(tmp_path):
    files, samples = build_set(tmp_path, num_images=3, seed=3)
    expected = run_metric(samples)
    gt_json, gt_folder = files[:2]
    without_gt = [
        data_sample(
            s.img_id,
            s.gt_panoptic_seg.sem_seg[0].numpy(),
            next(a['segments_info'] for a in gt_json['annotations']
                 if a['image_id'] == s.img_id),
            s.pred_panoptic_seg.sem_seg[0].numpy(),
            gt_folder,
            with_gt_map=False) for s in samples
    ]
    assert 'gt_panoptic_seg' not in without_gt[0]
    assert run_metric(without_gt) == expected


def test_evaluator_through_the_registry(tmp_path):
    files, samples = build_set(tmp_path, num_images=3, seed=5)
    assert METRICS.get('PanopticQualityMetric') is PanopticQualityMetric
    # As a config does it: the Evaluator builds from mmengine's root
    # registry, which finds our metric in the default scope.
    with DefaultScope.overwrite_default_scope('mmpanoptic_plus'):
        evaluator = Evaluator(
            dict(type='PanopticQualityMetric', classwise=True))
    assert isinstance(evaluator.metrics[0], PanopticQualityMetric)
    evaluator.dataset_meta = DATASET_META
    evaluator.process(data_samples=samples[:1])
    evaluator.process(data_samples=samples[1:])
    metrics = evaluator.evaluate(len(samples))
    assert set(metrics) == {
        f'panoptic/{k}'
        for k in ('PQ', 'SQ', 'RQ', 'PQ_th', 'SQ_th', 'RQ_th', 'PQ_st',
                  'SQ_st', 'RQ_st', 'mIoU')
    }
    assert_metric_equals_pq_compute(metrics, pq_compute(*files))


def test_results_stay_small(tmp_path):
    _, samples = build_set(tmp_path, num_images=1)
    metric = PanopticQualityMetric()
    metric.dataset_meta = DATASET_META
    metric.process({}, [samples[0].to_dict()])
    (result, ) = metric.results
    assert set(result) == {'pq_stat', 'confusion_index', 'confusion_count'}
    assert result['confusion_index'].size <= 4 * NUM_CLASSES**2
    assert len(result['pq_stat'].tp) == NUM_CLASSES + 1


def test_classwise_table_is_logged(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(
        panoptic_quality_metric,
        'print_log',
        lambda msg, logger=None: logged.append(msg))
    _, samples = build_set(tmp_path, num_images=2)
    metrics = run_metric(samples, classwise=True)
    assert len(logged) == 2
    assert 'Things' in logged[0] and 'mIoU' in logged[0]
    for name in DATASET_META['classes']:
        assert name in logged[1]
    assert f"{metrics['panoptic/PQ']:.3f}" in logged[0]


def stuff_only_scene():
    gt_map = np.full((12, 16), 7001, np.uint32)
    gt_map[:5] = 9001
    gt_map[:, -2:] = 0
    return gt_map, segments_from_map(gt_map, {7001: ROAD, 9001: SKY})


def test_image_without_things(tmp_path):
    files, samples = build_set(tmp_path, num_images=3, scene=stuff_only_scene)
    metrics = run_metric(samples)
    assert_metric_equals_pq_compute(metrics, pq_compute(*files))
    assert np.isfinite(metrics['panoptic/mIoU'])


def test_format_only_round_trip(tmp_path):
    files, samples = build_set(tmp_path, num_images=4, seed=7)
    gt_json, gt_folder = files[:2]
    prefix = str(tmp_path / 'out' / 'results')
    assert run_metric(samples, format_only=True, outfile_prefix=prefix) == {}
    with open(f'{prefix}.panoptic.json') as f:
        dumped = json.load(f)
    assert [c['id'] for c in dumped['categories']] == CAT_IDS
    assert [c['isthing'] for c in dumped['categories']] == [1, 1, 0, 0, 0]
    # image_id is the img_path stem without '_leftImg8bit', as in the gt.
    assert [a['image_id'] for a in dumped['annotations']
            ] == [a['image_id'] for a in gt_json['annotations']]
    from mmpanoptic_plus.evaluation.functional import read_panoptic_ids
    for ann in dumped['annotations']:
        ids = read_panoptic_ids(
            osp.join(f'{prefix}.panoptic', ann['file_name']))
        for segment in ann['segments_info']:
            ys, xs = np.nonzero(ids == segment['id'])
            assert segment['area'] == len(ys)
            assert segment['bbox'] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            assert segment['iscrowd'] == 0
    read_back = pq_compute(gt_json, gt_folder, f'{prefix}.panoptic.json',
                           f'{prefix}.panoptic')
    assert read_back == pq_compute(*files)


def test_format_only_label_fallback(tmp_path):
    _, samples = build_set(tmp_path, num_images=1)
    metric = PanopticQualityMetric(
        format_only=True, outfile_prefix=str(tmp_path / 'p'))
    metric.dataset_meta = {
        k: v
        for k, v in DATASET_META.items() if k != 'cat_ids'
    }
    metric.process({}, [samples[0].to_dict()])
    metric.compute_metrics(metric.results)
    with open(tmp_path / 'p.panoptic.json') as f:
        dumped = json.load(f)
    assert [c['id'] for c in dumped['categories']] == [1, 2, 3, 4, 5]


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match='outfile_prefix'):
        PanopticQualityMetric(format_only=True)
    _, samples = build_set(tmp_path, num_images=1)
    metric = PanopticQualityMetric()
    metric.dataset_meta = DATASET_META
    sample = samples[0].to_dict()
    sample['pred_panoptic_seg']['sem_seg'] = sample['pred_panoptic_seg'][
        'sem_seg'][:, :-1]
    with pytest.raises(ValueError, match='original image size'):
        metric.process({}, [sample])
    sample = samples[0].to_dict()
    del sample['segments_info']
    with pytest.raises(KeyError, match='segments_info'):
        metric.process({}, [sample])
    sample = samples[0].to_dict()
    del sample['gt_panoptic_seg'], sample['seg_map_path']
    with pytest.raises(KeyError, match='neither gt_panoptic_seg'):
        metric.process({}, [sample])
