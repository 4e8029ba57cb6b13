# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Batched segment targets of ``GeneratePanopticSegmentIds``, for every
method that trains on segments (CIAE, Unified, PSS)."""
from typing import Tuple

import torch
from mmdet.structures import SampleList
from torch import Tensor


def stack_segment_targets(
        batch_data_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
    """Dense segment ids and padded segment tables of a batch, from
    ``GeneratePanopticSegmentIds`` (packed by ``PackPanopticInputs(
    dense_target_keys=['gt_segment_ids'])``, padded with -1 by
    ``PanopticDataPreprocessor``).

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``segment_ids`` (B, H, W) int64 (-1
        none), ``labels`` (B, S) int64 padded with -1 and ``is_thing`` (B,
        S) bool padded with False, S the most segments of an image.
    """
    for data_sample in batch_data_samples:
        if 'gt_segment_ids' not in data_sample or \
                'gt_segments' not in data_sample:
            raise ValueError(
                'this model needs data_sample.gt_segment_ids and gt_segments: '
                'add '
                'GeneratePanopticSegmentIds and PackPanopticInputs('
                "dense_target_keys=['gt_segment_ids']) to the train "
                'pipeline and PanopticDataPreprocessor(dense_target_pad_values'
                '=dict(gt_segment_ids=-1))')
    segment_ids = torch.stack([
        ds.gt_segment_ids.data[0].long() for ds in batch_data_samples
    ])
    num_slots = max(len(ds.gt_segments) for ds in batch_data_samples)
    batch = len(batch_data_samples)
    labels = segment_ids.new_full((batch, num_slots), -1)
    is_thing = torch.zeros((batch, num_slots),
                           dtype=torch.bool,
                           device=segment_ids.device)
    for img_id, data_sample in enumerate(batch_data_samples):
        count = len(data_sample.gt_segments)
        if count:
            labels[img_id, :count] = data_sample.gt_segments.labels.to(
                labels.device)
            is_thing[img_id, :count] = data_sample.gt_segments.is_thing.to(
                labels.device)
    return segment_ids, labels, is_thing
