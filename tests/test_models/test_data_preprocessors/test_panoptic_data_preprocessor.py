# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PackPanopticInputs(dense_target_keys) and PanopticDataPreprocessor
padding of the dense targets."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import PixelData

from mmpanoptic_plus.datasets.transforms import PackPanopticInputs
from mmpanoptic_plus.datasets.transforms.panoptic_deeplab_targets import (
    PANOPTIC_DEEPLAB_TARGET_PAD_VALUES, GeneratePanopticDeepLabTargets)
from mmpanoptic_plus.models.data_preprocessors import \
    PanopticDataPreprocessor

DENSE_KEYS = list(PANOPTIC_DEEPLAB_TARGET_PAD_VALUES)


def _results(height=6, width=7):
    """One image with a 2x2 thing instance in the top-left corner."""
    seg = np.full((height, width), 4, dtype=np.uint8)
    masks = np.zeros((1, height, width), dtype=np.uint8)
    masks[0, :2, :2] = 1
    seg[:2, :2] = 0
    return dict(
        img=np.zeros((height, width, 3), dtype=np.uint8),
        img_shape=(height, width),
        ori_shape=(height, width),
        gt_seg_map=seg,
        gt_masks=BitmapMasks(masks, height, width),
        gt_bboxes_labels=np.array([0]),
        gt_ignore_flags=np.array([False]),
        gt_bboxes=np.array([[0., 0., 2., 2.]], dtype=np.float32))


def test_pack_dense_targets_shapes_values_and_default():
    results = GeneratePanopticDeepLabTargets(sigma=1)(_results())
    packed = PackPanopticInputs(dense_target_keys=DENSE_KEYS)(dict(results))
    sample = packed['data_samples']
    for key in DENSE_KEYS:
        field = sample.get(key)
        assert isinstance(field, PixelData)
        assert field.data.dtype == torch.float32
        expected = np.asarray(results[key], dtype=np.float32)
        expected = expected[None] if expected.ndim == 2 else expected
        assert tuple(field.data.shape) == expected.shape
        np.testing.assert_array_equal(field.data.numpy(), expected)
    assert sample.gt_offsets.data.shape == (2, 6, 7)
    assert sample.gt_center_weights.data.shape == (1, 6, 7)
    # default: nothing extra, existing behaviour kept
    plain = PackPanopticInputs()(dict(results))['data_samples']
    assert 'gt_center_heatmap' not in plain and 'gt_sem_seg' in plain


def test_pack_missing_or_bad_dense_target_is_a_clear_error():
    with pytest.raises(KeyError, match='gt_center_heatmap'):
        PackPanopticInputs(dense_target_keys=['gt_center_heatmap'])(
            _results())
    results = _results()
    results['gt_bad'] = np.zeros(5)
    with pytest.raises(ValueError, match='gt_bad'):
        PackPanopticInputs(dense_target_keys=['gt_bad'])(results)


def _sample(height, width, fill):
    sample = DetDataSample()
    sample.gt_sem_seg = PixelData(
        sem_seg=torch.full((1, height, width), 1, dtype=torch.uint8))
    sample.gt_center_heatmap = PixelData(
        data=torch.full((1, height, width), fill))
    sample.gt_offsets = PixelData(data=torch.full((2, height, width), fill))
    return sample


def test_preprocessor_pads_dense_targets_like_the_image():
    preprocessor = PanopticDataPreprocessor(
        pad_size_divisor=4,
        pad_seg=True,
        seg_pad_value=255,
        dense_target_pad_values=dict(gt_center_heatmap=0., gt_offsets=-7.))
    data = dict(
        inputs=[
            torch.full((3, 5, 6), 10, dtype=torch.uint8),
            torch.full((3, 3, 7), 20, dtype=torch.uint8)
        ],
        data_samples=[_sample(5, 6, 0.5), _sample(3, 7, 2.0)])
    out = preprocessor(data, training=True)
    inputs, samples = out['inputs'], out['data_samples']
    assert inputs.shape == (2, 3, 8, 8)  # max (5, 7) padded to /4
    for sample, (height, width), fill in zip(samples, [(5, 6), (3, 7)],
                                             [0.5, 2.0]):
        assert sample.batch_input_shape == (8, 8)
        heatmap = sample.gt_center_heatmap.data
        offsets = sample.gt_offsets.data
        assert heatmap.shape == (1, 8, 8) and offsets.shape == (2, 8, 8)
        # non-pad region untouched, bottom/right pad filled with the value
        assert (heatmap[:, :height, :width] == fill).all()
        assert (offsets[:, :height, :width] == fill).all()
        valid = torch.zeros(8, 8, dtype=torch.bool)
        valid[:height, :width] = True
        assert (heatmap[:, ~valid] == 0).all()
        assert (offsets[:, ~valid] == -7).all()
        # gt_sem_seg by DetDataPreprocessor, with the same layout
        sem = sample.gt_sem_seg.sem_seg
        assert (sem[:, valid] == 1).all() and (sem[:, ~valid] == 255).all()
        # the image: its pad is 0 after normalization (mean 0, std 1)
        image = inputs[samples.index(sample)]
        assert (image[:, ~valid] == 0).all()


def test_preprocessor_skips_missing_fields_and_checks_shapes():
    preprocessor = PanopticDataPreprocessor(
        dense_target_pad_values=dict(gt_center_heatmap=0.))
    sample = DetDataSample()  # e.g. test time: no targets
    out = preprocessor(
        dict(inputs=[torch.zeros(3, 4, 4)], data_samples=[sample]))
    assert 'gt_center_heatmap' not in out['data_samples'][0]
    bad = DetDataSample()
    bad.gt_center_heatmap = PixelData(data=torch.zeros(1, 9, 9))
    with pytest.raises(ValueError, match='larger than the padded batch'):
        preprocessor(dict(inputs=[torch.zeros(3, 4, 4)], data_samples=[bad]))
