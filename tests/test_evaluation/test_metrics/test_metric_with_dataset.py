# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PanopticQualityMetric fed by the project's own loader (synthetic set,
test pipeline): the interface between datasets and the metric."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from panoptic_test_utils import (assert_same_as_reference, random_prediction,
                                 write_set)

from mmpanoptic_plus.evaluation import PanopticQualityMetric


@pytest.fixture
def val_dataset(synthetic_root):
    from mmpanoptic_plus.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpanoptic_plus'):
        dataset = DATASETS.build(
            dict(
                type='SyntheticPanopticDataset',
                data_root=str(synthetic_root),
                ann_file='annotations/panoptic_val.json',
                data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
                test_mode=True,
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadPanopticAnnotations'),
                    dict(type='PackPanopticInputs')
                ]))
    return dataset


def test_metric_on_loaded_samples_equals_reference(val_dataset, synthetic_root,
                                                   tmp_path):
    meta = val_dataset.metainfo
    label_of_category = {c: i for i, c in enumerate(meta['cat_ids'])}
    ann_file = osp.join(synthetic_root, 'annotations', 'panoptic_val.json')
    with open(ann_file) as f:
        gt_json = json.load(f)
    gt_folder = osp.join(synthetic_root, 'annotations', 'panoptic_val')
    gt_anns = {
        osp.splitext(a['file_name'])[0]: a
        for a in gt_json['annotations']
    }

    rng = np.random.default_rng(0)
    samples, perfect, preds = [], [], []
    for i in range(len(val_dataset)):
        sample = val_dataset[i]['data_samples']
        stem = osp.splitext(osp.basename(sample.seg_map_path))[0]
        gt_ann = gt_anns[stem]
        gt_map = sample.gt_panoptic_seg.sem_seg[0].numpy()
        pred_map, pred_segments = random_prediction(gt_map,
                                                    gt_ann['segments_info'],
                                                    meta['cat_ids'], rng)
        preds.append((gt_ann['image_id'], pred_map, pred_segments))
        # The same prediction, label-encoded as a model outputs it.
        encoded = np.full(gt_map.shape, len(meta['classes']), np.int64)
        for k, segment in enumerate(pred_segments):
            encoded[pred_map == segment['id']] = (
                label_of_category[segment['category_id']] + 1000 * (k + 1))
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(encoded)[None])
        samples.append(sample)
        # And the ground truth itself as a prediction.
        exact = sample.clone()
        encoded = np.full(gt_map.shape, len(meta['classes']), np.int64)
        for k, segment in enumerate(sample.segments_info):
            encoded[gt_map == segment['id']] = (
                segment['category'] + 1000 * (k + 1))
        exact.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(encoded)[None])
        perfect.append(exact)

    def evaluate(data_samples):
        metric = PanopticQualityMetric()
        metric.dataset_meta = meta
        metric.process({}, [s.to_dict() for s in data_samples])
        return metric.evaluate(len(data_samples))

    assert evaluate(perfect)['panoptic/PQ'] == 100.0
    metrics = evaluate(samples)
    pred_json, pred_folder = write_set(str(tmp_path / 'pred'), preds)
    results, _ = assert_same_as_reference(gt_json, gt_folder, pred_json,
                                          pred_folder)
    for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff', '_st')):
        for key in ('pq', 'sq', 'rq'):
            assert metrics[f'panoptic/{key.upper()}{suffix}'] == (
                pytest.approx(100 * results[group][key], abs=1e-7))
