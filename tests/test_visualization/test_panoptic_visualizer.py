# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic colouring, outlines, label points and the local visualizer."""
import itertools
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

from mmpanoptic_plus.utils import register_all_modules
from mmpanoptic_plus.visualization import (PanopticLocalVisualizer,
                                           panoptic_boundaries,
                                           panoptic_to_rgb,
                                           segment_ids_to_panoptic,
                                           segment_label_points)
from mmpanoptic_plus.visualization.panoptic_drawing import (
    INSTANCE_COLOR_OFFSETS, NUM_INSTANCE_COLORS, panoptic_segment_colors)

OFFSET = 1000
CLASSES = ('disc', 'box', 'sky', 'ground')  # 2 things, 2 stuff
PALETTE = [(220, 20, 60), (0, 0, 142), (70, 130, 180), (152, 251, 152)]
VOID = len(CLASSES)


def hand_map() -> np.ndarray:
    """6x8 map: sky (top rows), ground, two discs, one box, void."""
    pan = np.full((6, 8), 2, dtype=np.int64)  # sky
    pan[3:, :] = 3  # ground
    pan[1:3, 1:3] = 0 + 1 * OFFSET  # disc #1
    pan[3:5, 1:3] = 0 + 2 * OFFSET  # disc #2, touches disc #1
    pan[1:3, 5:7] = 1 + 3 * OFFSET  # box
    pan[5, 6:] = VOID
    return pan


def naive_boundaries(pan: np.ndarray) -> np.ndarray:
    height, width = pan.shape
    expected = np.zeros(pan.shape, dtype=bool)
    for y, x in itertools.product(range(height), range(width)):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < height and 0 <= nx < width and \
                    pan[ny, nx] != pan[y, x]:
                expected[y, x] = True
    return expected


class TestPanopticToRgb:

    def test_hand_built_map(self):
        pan = hand_map()
        rgb = panoptic_to_rgb(pan, len(CLASSES), PALETTE,
                              void_color=(1, 2, 3))
        assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
        # stuff: exactly the class colour
        assert (rgb[pan == 2] == PALETTE[2]).all()
        assert (rgb[pan == 3] == PALETTE[3]).all()
        # void
        assert (rgb[pan == VOID] == (1, 2, 3)).all()
        # first instance of a class keeps the class colour, the second not
        disc1 = rgb[pan == 1000]
        disc2 = rgb[pan == 2000]
        assert (disc1 == PALETTE[0]).all()
        assert (disc2 == disc2[0]).all()
        assert not np.array_equal(disc1[0], disc2[0])
        # the second is the class colour shifted by the second offset row,
        # reflected where it would leave [0, 255]
        offset = INSTANCE_COLOR_OFFSETS[1]
        base = np.array(PALETTE[0])
        expected = np.where((base + offset < 0) | (base + offset > 255),
                            base - offset, base + offset)
        assert (disc2[0] == expected).all()
        # a single instance of another class: its class colour
        assert (rgb[pan == 1 + 3 * OFFSET] == PALETTE[1]).all()

    def test_tensor_input_and_determinism(self):
        pan = hand_map()
        rgb = panoptic_to_rgb(pan, 4, PALETTE)
        from_tensor = panoptic_to_rgb(torch.from_numpy(pan)[None].int(), 4,
                                      PALETTE)
        np.testing.assert_array_equal(rgb, from_tensor)
        # instance colours depend on the rank within the class, not on the
        # pixel layout: the same segments cropped keep their colours
        crop = pan[:, :4]
        np.testing.assert_array_equal(
            panoptic_to_rgb(crop, 4, PALETTE), rgb[:, :4])

    def test_instances_of_a_class_get_distinct_colors(self):
        values = np.arange(1, NUM_INSTANCE_COLORS + 1) * OFFSET  # class 0
        for color in [(0, 0, 0), (255, 255, 255), (128, 128, 128),
                      (255, 0, 0), (30, 240, 10)] + PALETTE:
            colors = panoptic_segment_colors(values, 1, [color])
            assert len({tuple(c) for c in colors}) == NUM_INSTANCE_COLORS

    def test_stuff_only_and_void_only(self):
        stuff = np.array([[2, 2, 3], [3, 3, VOID]])
        rgb = panoptic_to_rgb(stuff, 4, PALETTE)
        assert (rgb[0, 0] == PALETTE[2]).all()
        assert (rgb[1, 2] == 0).all()
        void = np.full((3, 3), VOID)
        assert (panoptic_to_rgb(void, 4, PALETTE) == 0).all()

    def test_default_palette_is_deterministic(self):
        pan = hand_map()
        np.testing.assert_array_equal(
            panoptic_to_rgb(pan, 4, None), panoptic_to_rgb(pan, 4, None))

    def test_bad_input(self):
        with pytest.raises(ValueError, match='only 4 classes'):
            panoptic_to_rgb(np.array([[5, 1]]), 4, PALETTE)
        with pytest.raises(ValueError, match='>= 0'):
            panoptic_to_rgb(np.array([[-1, 1]]), 4, PALETTE)
        with pytest.raises(ValueError, match='palette has 2 colours'):
            panoptic_to_rgb(np.array([[0, 1]]), 4, PALETTE[:2])
        with pytest.raises(ValueError, match='shape'):
            panoptic_to_rgb(np.zeros((2, 2, 2), dtype=np.int64), 4, PALETTE)


class TestBoundariesAndLabelPoints:

    def test_outlines_exactly_on_boundaries(self):
        pan = hand_map()
        boundary = panoptic_boundaries(pan)
        np.testing.assert_array_equal(boundary, naive_boundaries(pan))
        # a hand-checked case: two halves, the two middle columns only
        halves = np.zeros((4, 6), dtype=np.int64)
        halves[:, 3:] = 7
        expected = np.zeros((4, 6), dtype=bool)
        expected[:, 2:4] = True
        np.testing.assert_array_equal(panoptic_boundaries(halves), expected)
        assert not panoptic_boundaries(np.ones((3, 4), np.int64)).any()

    def test_random_maps_match_naive(self):
        rng = np.random.default_rng(0)
        for _ in range(3):
            pan = rng.integers(0, 3, size=(7, 9))
            np.testing.assert_array_equal(
                panoptic_boundaries(pan), naive_boundaries(pan))

    def test_label_point_is_deepest_pixel(self):
        pan = np.zeros((11, 13), dtype=np.int64)
        pan[3:8, 4:9] = 1000  # 5x5 square centred at (x=6, y=5)
        values, points, areas = segment_label_points(pan)
        np.testing.assert_array_equal(values, [0, 1000])
        np.testing.assert_array_equal(areas, [11 * 13 - 25, 25])
        assert tuple(points[1]) == (6, 5)
        # every point lies in its own segment
        pan = hand_map()
        values, points, areas = segment_label_points(pan)
        assert (pan[points[:, 1], points[:, 0]] == values).all()
        np.testing.assert_array_equal(
            areas, [(pan == v).sum() for v in values])


def test_segment_ids_to_panoptic():
    ids = np.array([[0, 5, 5], [9, 9, 7], [11, 7, 3]])
    segments_info = [
        dict(id=5, category=2, is_thing=False, iscrowd=False),
        dict(id=9, category=0, is_thing=True, iscrowd=False),
        dict(id=7, category=0, is_thing=True, iscrowd=False),
        dict(id=11, category=1, is_thing=True, iscrowd=True),
    ]
    encoded = segment_ids_to_panoptic(ids, segments_info, 4)
    expected = np.array([[4, 2, 2], [1000, 1000, 2000], [1, 2000, 4]])
    np.testing.assert_array_equal(encoded, expected)
    with pytest.raises(ValueError, match='category 9'):
        segment_ids_to_panoptic(ids, [dict(id=5, category=9)], 4)


@pytest.fixture
def visualizer(request):
    vis = PanopticLocalVisualizer(
        name=f'vis_{request.node.name}', draw_labels=False, alpha=0.5)
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    return vis


def test_registered_and_built_from_config():
    register_all_modules()
    from mmpanoptic_plus.registry import VISUALIZERS
    vis = VISUALIZERS.build(
        dict(type='PanopticLocalVisualizer', name='built_from_cfg'))
    assert type(vis) is PanopticLocalVisualizer


class TestVisualizer:

    @staticmethod
    def image(shape=(6, 8)):
        rng = np.random.default_rng(1)
        return rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)

    def test_pred_pixels(self, visualizer, tmp_path):
        pan = hand_map()
        image = self.image()
        sample = DetDataSample()
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(pan)[None].int())
        out_file = osp.join(tmp_path, 'pred.png')
        visualizer.add_datasample('img', image, sample, out_file=out_file)
        drawn = cv2.imread(out_file)[..., ::-1]  # RGB
        np.testing.assert_array_equal(drawn, visualizer.get_image())

        colors = panoptic_to_rgb(pan, 4, PALETTE)
        boundary = panoptic_boundaries(pan)
        blend = np.round(image * 0.5 + colors * 0.5).astype(np.uint8)
        void = pan == VOID
        inside = ~boundary & ~void
        assert (np.abs(drawn[inside].astype(int) - blend[inside]) <= 1).all()
        # void is left as it is (outside the outline), outlines are white
        np.testing.assert_array_equal(drawn[void & ~boundary],
                                      image[void & ~boundary])
        assert (drawn[boundary] == 255).all()

    def test_gt_and_pred_side_by_side(self, visualizer):
        # raw segment ids + segments_info, as PackPanopticInputs packs them
        seg_ids = np.array([[0, 3, 3, 3], [8, 8, 3, 5], [8, 8, 5, 5]])
        segments_info = [
            dict(id=3, category=2, is_thing=False, iscrowd=False, area=4),
            dict(id=8, category=0, is_thing=True, iscrowd=False, area=4),
            dict(id=5, category=1, is_thing=True, iscrowd=False, area=3),
        ]
        pred = np.array([[2, 2, 2, 2], [1000, 1000, 2, 3], [3, 3, 3, 3]])
        sample = DetDataSample(metainfo=dict(segments_info=segments_info))
        sample.gt_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(seg_ids)[None])
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(pred)[None].int())
        image = self.image((3, 4))
        visualizer.add_datasample('img', image, sample, out_file=None)
        drawn = visualizer.get_image()
        assert drawn.shape == (3, 8, 3)
        gt_encoded = segment_ids_to_panoptic(seg_ids, segments_info, 4)
        np.testing.assert_array_equal(
            drawn[:, :4],
            visualizer.draw_panoptic_map(image, gt_encoded, CLASSES,
                                         PALETTE))
        np.testing.assert_array_equal(
            drawn[:, 4:],
            visualizer.draw_panoptic_map(image, pred, CLASSES, PALETTE))
        # pred only
        visualizer.add_datasample('img', image, sample, draw_gt=False)
        assert visualizer.get_image().shape == (3, 4, 3)

    def test_labels_stuff_only_and_thing_stuff_meta(self, request):
        vis = PanopticLocalVisualizer(name=f'labels_{request.node.name}')
        # no 'classes' key: built from thing_classes + stuff_classes
        vis.dataset_meta = dict(
            thing_classes=CLASSES[:2], stuff_classes=CLASSES[2:])
        pan = np.full((64, 64), 2, dtype=np.int64)
        pan[32:] = 3
        pan[:4] = VOID
        image = np.zeros((64, 64, 3), dtype=np.uint8)
        sample = DetDataSample()
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(pan)[None])
        vis.add_datasample('img', image, sample)
        with_labels = vis.get_image()
        vis.draw_labels = False
        vis.add_datasample('img', image, sample)
        without = vis.get_image()
        changed = np.any(with_labels != without, axis=2)
        # text went near the label points of the two stuff segments
        ys, xs = np.nonzero(changed)
        assert changed.any() and ys.min() > 4 and xs.min() > 0

    def test_void_only_and_missing_classes(self, visualizer, request):
        image = self.image((5, 5))
        sample = DetDataSample()
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.full((1, 5, 5), VOID))
        visualizer.add_datasample('img', image, sample)
        np.testing.assert_array_equal(visualizer.get_image(), image)

        bare = PanopticLocalVisualizer(name=f'bare_{request.node.name}')
        with pytest.raises(ValueError, match='no class names'):
            bare.add_datasample('img', image, sample)

    def test_saves_to_backend(self, tmp_path, request):
        vis = PanopticLocalVisualizer(
            name=f'backend_{request.node.name}',
            vis_backends=[dict(type='LocalVisBackend')],
            save_dir=str(tmp_path))
        vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
        sample = DetDataSample()
        sample.pred_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(hand_map())[None])
        vis.add_datasample('val_img', self.image(), sample, step=3)
        saved = list(tmp_path.rglob('val_img_3.png'))
        assert len(saved) == 1
        assert cv2.imread(str(saved[0])).shape == (6, 8, 3)


def test_draws_ground_truth_of_real_coco_sample(fixtures_dir, request):
    """GT of a COCO photo as our loader packs it: every pixel inside a
    segment (off the outlines) is the blend of the photo and the colour
    that segment's encoded value gets."""
    register_all_modules()
    from mmpanoptic_plus.registry import DATASETS
    root = fixtures_dir / 'coco_panoptic_sample'
    dataset = DATASETS.build(
        dict(
            type='CocoPanopticFormatDataset',
            data_root=str(root),
            ann_file='panoptic_examples.json',
            data_prefix=dict(img='input_images/', seg='panoptic_examples/'),
            test_mode=True,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticAnnotations'),
                dict(type='PackPanopticInputs')
            ]))
    sample = dataset[0]['data_samples']
    vis = PanopticLocalVisualizer(
        name=f'coco_{request.node.name}', draw_labels=False)
    vis.dataset_meta = dataset.metainfo
    image = cv2.imread(sample.img_path)[..., ::-1]
    vis.add_datasample('gt', image, sample)
    drawn = vis.get_image()
    assert drawn.shape == image.shape  # GT only: there is no prediction

    classes = dataset.metainfo['classes']
    seg_ids = sample.gt_panoptic_seg.sem_seg[0].numpy()
    encoded = segment_ids_to_panoptic(seg_ids, sample.segments_info,
                                      len(classes))
    # one encoded value per segment: instances of a class stay apart
    segments = [s for s in sample.segments_info if s['id'] in seg_ids]
    assert len(np.unique(encoded[encoded != len(classes)])) == len(segments)
    colors = panoptic_to_rgb(encoded, len(classes),
                             dataset.metainfo['palette'])
    inside = ~panoptic_boundaries(encoded) & (encoded != len(classes))
    expected = np.round(image * 0.5 + colors * 0.5)
    assert np.abs(drawn[inside] - expected[inside]).max() <= 1
    void = (encoded == len(classes)) & ~panoptic_boundaries(encoded)
    np.testing.assert_array_equal(drawn[void], image[void])
