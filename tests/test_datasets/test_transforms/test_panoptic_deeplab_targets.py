# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""GeneratePanopticDeepLabTargets on hand-built instance maps, under a flip,
and against a per-segment oracle on the real Cityscapes fixture."""
import copy

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmpanoptic_plus.datasets.transforms import GeneratePanopticDeepLabTargets
from mmpanoptic_plus.datasets.transforms.panoptic_deeplab_targets import (
    PANOPTIC_DEEPLAB_TARGET_PAD_VALUES, gaussian_window)
from mmpanoptic_plus.registry import DATASETS, TRANSFORMS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

HEIGHT, WIDTH = 20, 30
STUFF, OTHER_STUFF, VOID = 3, 4, 255


def hand_built_instances():
    """(H, W) map of instance indices (-1 none), labels, crowd flags, and
    the semantic map.

    - instance 0 (label 0): rows 2..6 x cols 3..5 plus pixel (7, 3):
      16 pixels, mass center (67/16, 63/16) = (4.1875, 3.9375) -> peak (4, 4)
    - instance 1 (label 1): rows 10..12 x cols 10..14: 15 pixels, center
      (11, 12)
    - instance 2 (label 0, crowd): rows 15..17 x cols 20..24: 15 pixels,
      center (16, 22)
    - stuff: label 3 everywhere else, label 4 in cols 26..29, void in rows
      0..1
    """
    index = np.full((HEIGHT, WIDTH), -1, dtype=np.int64)
    index[2:7, 3:6] = 0
    index[7, 3] = 0
    index[10:13, 10:15] = 1
    index[15:18, 20:25] = 2
    labels = np.array([0, 1, 0], dtype=np.int64)
    crowd = np.array([False, False, True])
    semantic = np.full((HEIGHT, WIDTH), STUFF, dtype=np.uint8)
    semantic[:, 26:] = OTHER_STUFF
    semantic[index >= 0] = labels[index[index >= 0]]
    semantic[:2] = VOID
    return index, labels, crowd, semantic


def make_results(index, labels, crowd, semantic):
    masks = (index[None] == np.arange(len(labels))[:, None, None])
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    height, width = semantic.shape
    return dict(
        img=np.zeros((height, width, 3), dtype=np.uint8),
        img_shape=(height, width),
        ori_shape=(height, width),
        gt_seg_map=semantic.copy(),
        gt_masks=BitmapMasks(masks.astype(np.uint8), height, width),
        gt_bboxes=HorizontalBoxes(np.array(boxes, dtype=np.float32)),
        gt_bboxes_labels=labels.copy(),
        gt_ignore_flags=crowd.copy())


def naive_heatmap(shape, peaks, sigma):
    """Max of truncated Gaussians, pixel by pixel."""
    radius = int(3 * sigma + 1)
    heatmap = np.zeros(shape, dtype=np.float64)
    for y in range(shape[0]):
        for x in range(shape[1]):
            for peak_y, peak_x in peaks:
                if abs(y - peak_y) <= radius and abs(x - peak_x) <= radius:
                    value = np.exp(-((y - peak_y)**2 + (x - peak_x)**2) /
                                   (2 * sigma**2))
                    heatmap[y, x] = max(heatmap[y, x], value)
    return heatmap


def test_gaussian_window_is_the_reference_one():
    window = gaussian_window(8)
    assert window.shape == (51, 51)
    assert window[25, 25] == 1
    assert window[25, 0] == pytest.approx(np.exp(-625 / 128), rel=1e-6)
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])


def test_hand_built_targets():
    index, labels, crowd, semantic = hand_built_instances()
    transform = TRANSFORMS.build(
        dict(
            type='GeneratePanopticDeepLabTargets',
            sigma=2,
            small_instance_area=16,
            small_instance_weight=3))
    results = transform(make_results(index, labels, crowd, semantic))

    heatmap = results['gt_center_heatmap']
    assert heatmap.shape == (1, HEIGHT, WIDTH)
    assert heatmap.dtype == np.float32
    # peaks exactly 1 at the rounded mass centers, crowd included
    for peak in [(4, 4), (11, 12), (16, 22)]:
        assert heatmap[0][peak] == 1
    assert heatmap.max() == 1 and (heatmap == 1).sum() == 3
    assert heatmap[0, 4, 5] == pytest.approx(np.exp(-1 / 8))
    # (8, 8): exp(-32/8) from the first, exp(-25/8) from the second: max
    assert heatmap[0, 8, 8] == pytest.approx(np.exp(-25 / 8))
    # (0, 12) is 8 columns from (4, 4), outside the 6 * 2 + 3 window
    assert heatmap[0, 0, 12] == 0
    np.testing.assert_allclose(
        heatmap[0],
        naive_heatmap((HEIGHT, WIDTH), [(4, 4), (11, 12), (16, 22)], 2),
        rtol=1e-6,
        atol=1e-7)

    offsets = results['gt_offsets']
    assert offsets.shape == (2, HEIGHT, WIDTH)
    assert offsets.dtype == np.float32
    # (2, 3) -> (4.1875, 3.9375); (7, 3) -> (-2.8125, 0.9375)
    np.testing.assert_allclose(offsets[:, 2, 3], [2.1875, 0.9375])
    np.testing.assert_allclose(offsets[:, 7, 3], [-2.8125, 0.9375])
    np.testing.assert_allclose(offsets[:, 10, 14], [1, -2])
    np.testing.assert_allclose(offsets[:, 17, 20], [-1, 2])  # crowd too
    assert (offsets[:, index < 0] == 0).all()

    center_weights = results['gt_center_weights']
    expected = np.ones((HEIGHT, WIDTH), dtype=np.float32)
    expected[:2] = 0  # void
    expected[index == 2] = 0  # crowd
    np.testing.assert_array_equal(center_weights, expected)

    offset_weights = results['gt_offset_weights']
    np.testing.assert_array_equal(offset_weights,
                                  np.isin(index, [0, 1]).astype(np.float32))

    semantic_weights = results['gt_semantic_weights']
    # instance 0 has 16 pixels (not < 16); 1 and the crowd have 15
    np.testing.assert_array_equal(semantic_weights,
                                  np.where(np.isin(index, [1, 2]), 3, 1))
    for key in PANOPTIC_DEEPLAB_TARGET_PAD_VALUES:
        assert results[key].dtype == np.float32
        assert results[key].shape[-2:] == (HEIGHT, WIDTH)
    # semantic map untouched by default
    np.testing.assert_array_equal(results['gt_seg_map'], semantic)


def test_options_crowd_and_stuff():
    index, labels, crowd, semantic = hand_built_instances()
    transform = GeneratePanopticDeepLabTargets(
        sigma=2,
        ignore_stuff_in_offset=False,
        small_instance_area=0,
        ignore_crowd_in_semantic=True,
        center_on_crowd=False)
    results = transform(make_results(index, labels, crowd, semantic))
    expected_semantic = semantic.copy()
    expected_semantic[index == 2] = VOID
    np.testing.assert_array_equal(results['gt_seg_map'], expected_semantic)
    # offset weights now also cover stuff: equal to the center weights
    np.testing.assert_array_equal(results['gt_offset_weights'],
                                  results['gt_center_weights'])
    assert results['gt_offset_weights'][5, 20] == 1  # stuff
    assert results['gt_offset_weights'][16, 22] == 0  # crowd
    assert results['gt_offset_weights'][0, 0] == 0  # void
    assert (results['gt_semantic_weights'] == 1).all()
    assert results['gt_center_heatmap'][0, 16, 22] < 1e-3  # no crowd peak
    assert (results['gt_center_heatmap'] == 1).sum() == 2


def test_default_sigma_window_and_border():
    """sigma 8: window of 51 pixels; a center at the border is clipped."""
    index = np.full((64, 64), -1, dtype=np.int64)
    index[29:32, 29:32] = 0  # center (30, 30)
    index[0:3, 61:64] = 1  # center (1, 62), window clipped by the border
    labels = np.array([0, 0])
    semantic = np.full((64, 64), STUFF, dtype=np.uint8)
    semantic[index >= 0] = 0
    results = GeneratePanopticDeepLabTargets()(
        make_results(index, labels, np.array([False, False]), semantic))
    heatmap = results['gt_center_heatmap'][0]
    assert heatmap[30, 30] == 1 and heatmap[1, 62] == 1
    assert heatmap[30, 5] == pytest.approx(np.exp(-625 / 128), rel=1e-6)
    assert heatmap[30, 4] == 0  # 26 columns away: outside the window
    np.testing.assert_allclose(
        heatmap, naive_heatmap((64, 64), [(30, 30), (1, 62)], 8), rtol=1e-6,
        atol=1e-7)
    # both have 9 pixels < 4096: weight 3
    assert (results['gt_semantic_weights'][index >= 0] == 3).all()
    assert (results['gt_semantic_weights'][index < 0] == 1).all()


def test_cropped_away_and_no_instances():
    index, labels, crowd, semantic = hand_built_instances()
    results = make_results(index, labels, crowd, semantic)
    # instance 1 cropped away: empty mask, no center, no weight
    masks = results['gt_masks'].masks.copy()
    masks[1] = 0
    results['gt_masks'] = BitmapMasks(masks, HEIGHT, WIDTH)
    results = GeneratePanopticDeepLabTargets(sigma=2)(results)
    assert (results['gt_center_heatmap'] == 1).sum() == 2
    assert results['gt_center_heatmap'][0, 11, 12] < 1

    empty = make_results(index[:0], labels[:0], crowd[:0],
                         np.full((5, 7), STUFF, dtype=np.uint8))
    empty['gt_masks'] = BitmapMasks(
        np.zeros((0, 5, 7), dtype=np.uint8), 5, 7)
    empty['gt_bboxes'] = HorizontalBoxes(np.zeros((0, 4), np.float32))
    empty = GeneratePanopticDeepLabTargets()(empty)
    assert (empty['gt_center_heatmap'] == 0).all()
    assert (empty['gt_offsets'] == 0).all()
    assert (empty['gt_center_weights'] == 1).all()
    assert (empty['gt_offset_weights'] == 0).all()
    assert (empty['gt_semantic_weights'] == 1).all()


def test_clear_errors():
    index, labels, crowd, semantic = hand_built_instances()
    results = make_results(index, labels, crowd, semantic)
    del results['gt_masks']
    with pytest.raises(KeyError, match='gt_masks.*LoadPanopticAnnotations'):
        GeneratePanopticDeepLabTargets()(results)
    results = make_results(index, labels, crowd, semantic)
    results['gt_seg_map'] = semantic[:-1]
    with pytest.raises(ValueError, match='do not match gt_seg_map'):
        GeneratePanopticDeepLabTargets()(results)
    results = make_results(index, labels, crowd, semantic)
    results['gt_ignore_flags'] = crowd[:2]
    with pytest.raises(ValueError, match='same instances'):
        GeneratePanopticDeepLabTargets()(results)
    with pytest.raises(ValueError, match='sigma'):
        GeneratePanopticDeepLabTargets(sigma=0)


def test_consistent_with_a_horizontal_flip():
    """Flip, then targets == targets, then flip (dx negated); the centers
    have no .5 column so rounding commutes with the flip."""
    index, labels, crowd, semantic = hand_built_instances()
    transform = GeneratePanopticDeepLabTargets(
        sigma=2, small_instance_area=16)
    plain = transform(make_results(index, labels, crowd, semantic))
    flip = TRANSFORMS.build(
        dict(type='RandomFlip', prob=1., direction='horizontal'))
    flipped = transform(flip(make_results(index, labels, crowd, semantic)))
    assert flipped['flip'] and flipped['flip_direction'] == 'horizontal'
    for key in ('gt_center_heatmap', 'gt_center_weights',
                'gt_offset_weights', 'gt_semantic_weights'):
        np.testing.assert_array_equal(flipped[key], plain[key][..., ::-1])
    np.testing.assert_allclose(flipped['gt_offsets'][0],
                               plain['gt_offsets'][0][:, ::-1])
    np.testing.assert_allclose(flipped['gt_offsets'][1],
                               -plain['gt_offsets'][1][:, ::-1])
    assert flipped['gt_center_heatmap'][0, 4, WIDTH - 1 - 4] == 1


def oracle_targets(panoptic, segments_info, num_things, sigma, small_area,
                   small_weight):
    """Per-segment targets from the raw id map, the reference algorithm's
    way (independent of gt_masks); defaults ignore_stuff_in_offset=True."""
    height, width = panoptic.shape
    ys, xs = np.mgrid[:height, :width]
    peaks = []
    offsets = np.zeros((2, height, width))
    center_weights = np.zeros((height, width))
    offset_weights = np.zeros((height, width))
    semantic_weights = np.ones((height, width))
    for segment in segments_info:
        mask = panoptic == segment['id']
        is_thing = segment['category'] < num_things
        if not segment['iscrowd']:
            center_weights[mask] = 1
            if is_thing:
                offset_weights[mask] = 1
        if not is_thing or not mask.any():
            continue
        if mask.sum() < small_area:
            semantic_weights[mask] = small_weight
        center_y, center_x = ys[mask].mean(), xs[mask].mean()
        peaks.append((round(center_y), round(center_x)))
        offsets[0][mask] = center_y - ys[mask]
        offsets[1][mask] = center_x - xs[mask]
    return peaks, offsets, center_weights, offset_weights, semantic_weights


def test_matches_per_segment_oracle_on_cityscapes_fixture(fixtures_dir):
    pipeline = [
        dict(type='LoadPanopticAnnotations'),
        dict(type='GeneratePanopticDeepLabTargets', sigma=8)
    ]
    root = fixtures_dir / 'cityscapes_panoptic_sample'
    dataset = DATASETS.build(
        dict(
            type='CityscapesPanopticDataset',
            data_root=str(root),
            ann_file='gtFine/cityscapes_panoptic_dummy_trainId.json',
            data_prefix=dict(
                img='leftImg8bit/',
                seg='gtFine/cityscapes_panoptic_dummy_trainId/'),
            img_name_template='{stem}_leftImg8bit.png',
            test_mode=True,
            pipeline=pipeline))
    results = dataset[0]
    num_things = len(dataset.metainfo['thing_classes'])
    segments = results['segments_info']
    assert any(s['iscrowd'] for s in segments)
    peaks, offsets, center_weights, offset_weights, semantic_weights = \
        oracle_targets(results['gt_panoptic_seg'], segments, num_things, 8,
                       4096, 3)
    assert len(peaks) >= 3
    # the oracle's peaks: checked through the maxima, and a naive paste
    # on a band around them (the full naive loop is too slow at 800x800)
    heatmap = results['gt_center_heatmap'][0]
    for peak in peaks:
        assert heatmap[peak] == 1
    expected = np.zeros_like(heatmap, dtype=np.float64)
    window = gaussian_window(8).astype(np.float64)
    for peak_y, peak_x in peaks:
        padded = np.zeros((heatmap.shape[0] + 50, heatmap.shape[1] + 50))
        padded[peak_y:peak_y + 51, peak_x:peak_x + 51] = window
        expected = np.maximum(expected, padded[25:-25, 25:-25])
    np.testing.assert_allclose(heatmap, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results['gt_offsets'], offsets, atol=1e-4)
    np.testing.assert_array_equal(results['gt_center_weights'],
                                  center_weights)
    np.testing.assert_array_equal(results['gt_offset_weights'],
                                  offset_weights)
    np.testing.assert_array_equal(results['gt_semantic_weights'],
                                  semantic_weights)
    assert (semantic_weights == 3).any() and (offset_weights == 1).any()


def test_repr_and_deepcopy():
    transform = GeneratePanopticDeepLabTargets(sigma=4)
    assert 'sigma=4' in repr(transform)
    assert copy.deepcopy(transform).window.shape == (27, 27)


def test_overlapping_masks_first_wins():
    """Augmentation may make masks overlap; the first instance keeps the
    shared pixels (its offsets point at its own center)."""
    semantic = np.full((6, 8), STUFF, dtype=np.uint8)
    masks = np.zeros((2, 6, 8), dtype=np.uint8)
    masks[0, 1:4, 1:4] = 1  # center (2, 2)
    masks[1, 3:6, 3:6] = 1  # shares (3, 3); the 8 others: center (33/8, 33/8)
    results = dict(
        gt_seg_map=semantic,
        gt_masks=BitmapMasks(masks, 6, 8),
        gt_bboxes_labels=np.array([0, 1]),
        gt_ignore_flags=np.array([False, False]))
    results = GeneratePanopticDeepLabTargets(sigma=1)(results)
    np.testing.assert_allclose(results['gt_offsets'][:, 3, 3], [-1, -1])
    np.testing.assert_allclose(results['gt_offsets'][:, 5, 5],
                               [33 / 8 - 5, 33 / 8 - 5])
    assert results['gt_center_heatmap'][0, 4, 4] == 1
