# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.utils import stack_segment_targets


def _sample(ids, labels, is_thing):
    sample = DetDataSample()
    sample.gt_segment_ids = PixelData(data=torch.tensor(ids)[None])
    sample.gt_segments = InstanceData(
        labels=torch.tensor(labels, dtype=torch.long),
        is_thing=torch.tensor(is_thing, dtype=torch.bool))
    return sample


def test_stack_pads_the_segment_tables_to_the_largest_image():
    first = _sample([[0, 1], [2, -1]], [3, 0, 4], [False, True, False])
    second = _sample([[0, 0], [-1, -1]], [5], [False])
    segment_ids, labels, is_thing = stack_segment_targets([first, second])
    assert segment_ids.tolist() == [[[0, 1], [2, -1]], [[0, 0], [-1, -1]]]
    assert segment_ids.dtype == torch.long
    assert labels.tolist() == [[3, 0, 4], [5, -1, -1]]
    assert is_thing.tolist() == [[False, True, False],
                                 [False, False, False]]


def test_missing_targets_name_the_pipeline_steps():
    sample = DetDataSample()
    with pytest.raises(ValueError, match='GeneratePanopticSegmentIds'):
        stack_segment_targets([sample])
