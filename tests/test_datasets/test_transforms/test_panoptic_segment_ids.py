# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""GeneratePanopticSegmentIds on a hand-built annotation, after geometric
augmentation, and through PackPanopticInputs + PanopticDataPreprocessor."""
import copy

import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import RandomCrop, RandomFlip
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmpanoptic_plus.datasets.transforms import (GeneratePanopticSegmentIds,
                                                 PackPanopticInputs)
from mmpanoptic_plus.datasets.transforms.panoptic_segment_ids import \
    PANOPTIC_SEGMENT_ID_PAD_VALUES
from mmpanoptic_plus.models.data_preprocessors import \
    PanopticDataPreprocessor
from mmpanoptic_plus.registry import TRANSFORMS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

NUM_THINGS = 2  # classes 0, 1 things; 2, 3 stuff
V = 255  # void in gt_seg_map
# A, B: two instances of class 0; C: a crowd of class 1; 'u': a class-1
# pixel of no instance; stuff 2 in two regions, stuff 3 around
LAYOUT = ['2222 3333',
          'AA33 BB33',
          'AA33 BBVV',
          '3333 333u',
          'CCC3 3333',
          'CCCV 2222']
INSTANCE_ORDER = 'CAB'  # gt_masks order: the crowd first
INSTANCE_LABELS = {'A': 0, 'B': 0, 'C': 1}
# expected: A -> 0, B -> 1 (instances in order, crowd skipped), stuff 2 ->
# 2, stuff 3 -> 3 (classes in order), -1 for crowd, void and 'u'
EXPECTED_IDS = np.array([[2, 2, 2, 2, 3, 3, 3, 3],
                         [0, 0, 3, 3, 1, 1, 3, 3],
                         [0, 0, 3, 3, 1, 1, -1, -1],
                         [3, 3, 3, 3, 3, 3, 3, -1],
                         [-1, -1, -1, 3, 3, 3, 3, 3],
                         [-1, -1, -1, -1, 2, 2, 2, 2]])
EXPECTED_LABELS = np.array([0, 0, 2, 3])
EXPECTED_IS_THING = np.array([True, True, False, False])


def hand_built_results():
    grid = np.array([list(row.replace(' ', '')) for row in LAYOUT])
    height, width = grid.shape
    semantic = np.zeros((height, width), dtype=np.uint8)
    for char, value in (('2', 2), ('3', 3), ('V', V), ('u', 1)):
        semantic[grid == char] = value
    for char, label in INSTANCE_LABELS.items():
        semantic[grid == char] = label
    masks = np.stack([grid == char for char in INSTANCE_ORDER])
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return dict(
        img=np.zeros((height, width, 3), dtype=np.uint8),
        img_shape=(height, width),
        ori_shape=(height, width),
        gt_seg_map=semantic,
        gt_masks=BitmapMasks(masks.astype(np.uint8), height, width),
        gt_bboxes=HorizontalBoxes(np.array(boxes, dtype=np.float32)),
        gt_bboxes_labels=np.array(
            [INSTANCE_LABELS[char] for char in INSTANCE_ORDER]),
        gt_ignore_flags=np.array([char == 'C' for char in INSTANCE_ORDER]))


def test_hand_built_annotation():
    transform = TRANSFORMS.build(
        dict(type='GeneratePanopticSegmentIds', num_thing_classes=NUM_THINGS))
    results = transform(hand_built_results())
    ids = results['gt_segment_ids']
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, EXPECTED_IDS)
    assert results['gt_segment_labels'].dtype == np.int64
    np.testing.assert_array_equal(results['gt_segment_labels'],
                                  EXPECTED_LABELS)
    np.testing.assert_array_equal(results['gt_segment_is_thing'],
                                  EXPECTED_IS_THING)
    # another ignore value; the thing count may come from the results
    results = hand_built_results()
    results['thing_classes'] = ('a', 'b')
    other = GeneratePanopticSegmentIds(ignore_index=-7)(results)
    np.testing.assert_array_equal(
        other['gt_segment_ids'],
        np.where(EXPECTED_IDS < 0, -7, EXPECTED_IDS))


def test_after_geometric_augmentation():
    # a flip moves the map and keeps the numbering
    flip = RandomFlip(prob=1., direction='horizontal')
    results = GeneratePanopticSegmentIds(NUM_THINGS)(
        flip(hand_built_results()))
    np.testing.assert_array_equal(results['gt_segment_ids'],
                                  EXPECTED_IDS[:, ::-1])
    np.testing.assert_array_equal(results['gt_segment_labels'],
                                  EXPECTED_LABELS)
    # a crop of the right half: A is gone, B becomes segment 0, both
    # stuff classes stay (ids 1 and 2), the crowd is gone too
    # mmdet's crop_size is (w, h), its _rand_offset returns (top, left)
    crop = RandomCrop(crop_size=(4, 6), allow_negative_crop=True)
    results = hand_built_results()
    crop._rand_offset = lambda margin: (0, 4)  # (offset_h, offset_w)
    results = GeneratePanopticSegmentIds(NUM_THINGS)(crop(results))
    expected = EXPECTED_IDS[:, 4:].copy()
    expected[expected >= 0] -= 1
    np.testing.assert_array_equal(results['gt_segment_ids'], expected)
    np.testing.assert_array_equal(results['gt_segment_labels'], [0, 2, 3])
    np.testing.assert_array_equal(results['gt_segment_is_thing'],
                                  [True, False, False])


def test_no_instances_no_stuff_and_errors():
    results = hand_built_results()
    results['gt_seg_map'][:] = V
    results['gt_masks'] = BitmapMasks(np.zeros((0, 6, 8), np.uint8), 6, 8)
    results['gt_bboxes_labels'] = np.zeros(0, np.int64)
    results['gt_ignore_flags'] = np.zeros(0, bool)
    results = GeneratePanopticSegmentIds(NUM_THINGS)(results)
    assert (results['gt_segment_ids'] == -1).all()
    assert results['gt_segment_labels'].shape == (0, )
    assert results['gt_segment_is_thing'].shape == (0, )

    with pytest.raises(KeyError, match='num_thing_classes'):
        GeneratePanopticSegmentIds()(hand_built_results())
    with pytest.raises(ValueError, match='negative'):
        GeneratePanopticSegmentIds(NUM_THINGS, ignore_index=0)
    results = hand_built_results()
    del results['gt_masks']
    with pytest.raises(KeyError, match='gt_masks'):
        GeneratePanopticSegmentIds(NUM_THINGS)(results)
    results = hand_built_results()
    results['gt_ignore_flags'] = results['gt_ignore_flags'][:2]
    with pytest.raises(ValueError, match='same'):
        GeneratePanopticSegmentIds(NUM_THINGS)(results)


def test_pack_and_pad():
    transform = GeneratePanopticSegmentIds(NUM_THINGS)
    pack = PackPanopticInputs(dense_target_keys=['gt_segment_ids'])
    big = pack(transform(hand_built_results()))
    crop = RandomCrop(crop_size=(3, 5), allow_negative_crop=True)
    crop._rand_offset = lambda margin: (1, 4)
    small = pack(transform(crop(hand_built_results())))

    sample = big['data_samples']
    assert sample.gt_segment_ids.data.dtype == torch.int64
    assert tuple(sample.gt_segment_ids.data.shape) == (1, 6, 8)
    np.testing.assert_array_equal(sample.gt_segment_ids.data[0].numpy(),
                                  EXPECTED_IDS)
    assert isinstance(sample.gt_segments, InstanceData)
    assert sample.gt_segments.labels.dtype == torch.int64
    assert torch.equal(sample.gt_segments.labels,
                       torch.from_numpy(EXPECTED_LABELS))
    assert torch.equal(sample.gt_segments.is_thing,
                       torch.from_numpy(EXPECTED_IS_THING))
    small_ids = small['data_samples'].gt_segment_ids.data[0].numpy()
    assert small_ids.shape == (5, 3)

    preprocessor = PanopticDataPreprocessor(
        pad_size_divisor=4,
        pad_seg=True,
        seg_pad_value=255,
        dense_target_pad_values=PANOPTIC_SEGMENT_ID_PAD_VALUES)
    data = preprocessor(
        dict(inputs=[big['inputs'], small['inputs']],
             data_samples=[big['data_samples'], small['data_samples']]),
        training=True)
    assert data['inputs'].shape == (2, 3, 8, 8)
    for sample, ids in zip(data['data_samples'],
                           (EXPECTED_IDS, small_ids)):
        padded = sample.gt_segment_ids.data
        assert padded.dtype == torch.int64
        assert tuple(padded.shape) == (1, 8, 8)
        height, width = ids.shape
        np.testing.assert_array_equal(padded[0, :height, :width].numpy(),
                                      ids)
        outside = torch.ones(8, 8, dtype=torch.bool)
        outside[:height, :width] = False
        assert (padded[0][outside] == -1).all()
    # the packed per-segment fields are left alone by the preprocessor
    assert torch.equal(data['data_samples'][0].gt_segments.labels,
                       torch.from_numpy(EXPECTED_LABELS))


def test_packing_segments_needs_both_fields():
    results = GeneratePanopticSegmentIds(NUM_THINGS)(hand_built_results())
    del results['gt_segment_is_thing']
    with pytest.raises(KeyError, match='gt_segment_is_thing'):
        PackPanopticInputs()(copy.deepcopy(results))
