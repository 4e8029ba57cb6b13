# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""init_panoptic_model / inference_panoptic / load_image on a tiny model,
and panoptic_to_coco_segments against a naive computation."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmpanoptic_plus.apis import (build_inference_pipeline,
                                  inference_panoptic, init_panoptic_model,
                                  load_image, panoptic_to_coco_segments)

TINY_CONFIG = Path(__file__).parent / 'data' / 'tiny_panoptic_fpn.py'
CLASSES = ('disc', 'box', 'sky', 'ground')


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_panoptic_model(str(TINY_CONFIG))


def check_prediction(sample, height, width, num_classes=4):
    pan = sample.pred_panoptic_seg.sem_seg
    assert tuple(pan.shape) == (1, height, width)
    labels = pan % 1000
    assert int(labels.min()) >= 0 and int(labels.max()) <= num_classes
    assert tuple(sample.ori_shape) == (height, width)


class TestLoadImage:

    def test_grayscale_rgba_and_16_bit_files(self, tmp_path):
        rng = np.random.default_rng(0)
        gray = rng.integers(0, 256, size=(9, 7), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / 'gray.png'), gray)
        loaded = load_image(tmp_path / 'gray.png')
        assert loaded.shape == (9, 7, 3) and loaded.dtype == np.uint8
        for channel in range(3):
            np.testing.assert_array_equal(loaded[..., channel], gray)

        bgra = rng.integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / 'rgba.png'), bgra)
        np.testing.assert_array_equal(
            load_image(str(tmp_path / 'rgba.png')), bgra[..., :3])

        deep = (rng.integers(0, 256, size=(4, 4, 3)) * 257).astype(np.uint16)
        cv2.imwrite(str(tmp_path / 'deep.png'), deep)
        np.testing.assert_array_equal(
            load_image(tmp_path / 'deep.png'), (deep // 257).astype(np.uint8))

    def test_arrays(self):
        gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
        np.testing.assert_array_equal(
            load_image(gray), np.repeat(gray[..., None], 3, axis=2))
        np.testing.assert_array_equal(
            load_image(gray[..., None]), np.repeat(gray[..., None], 3, 2))
        bgra = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
        np.testing.assert_array_equal(load_image(bgra), bgra[..., :3])
        floats = np.array([[[-5.0, 12.4, 300.0]]])
        np.testing.assert_array_equal(load_image(floats), [[[0, 12, 255]]])

    def test_clear_errors(self, tmp_path):
        with pytest.raises(FileNotFoundError, match='not found'):
            load_image(tmp_path / 'missing.jpg')
        (tmp_path / 'text.jpg').write_text('not an image at all')
        with pytest.raises(ValueError, match='Cannot decode'):
            load_image(tmp_path / 'text.jpg')
        (tmp_path / 'empty.png').write_bytes(b'')
        with pytest.raises(ValueError, match='empty'):
            load_image(tmp_path / 'empty.png')
        with pytest.raises(ValueError, match='folder'):
            load_image(tmp_path)
        with pytest.raises(ValueError, match='empty'):
            load_image(np.zeros((0, 5, 3), dtype=np.uint8))
        with pytest.raises(ValueError, match='shape'):
            load_image(np.zeros((4, 4, 2), dtype=np.uint8))
        with pytest.raises(TypeError):
            load_image(42)


class TestInference:

    def test_model_meta_from_config(self, model):
        assert list(model.dataset_meta['classes']) == list(CLASSES)
        assert not model.training
        assert model.cfg.model.backbone.init_cfg is None

    def test_pipeline_has_no_gt_steps(self, model):
        pipeline = build_inference_pipeline(model.cfg)
        names = [type(t).__name__ for t in pipeline.transforms]
        assert names == ['LoadImageFromNDArray', 'PackPanopticInputs']
        pack = pipeline.transforms[-1]
        assert 'segments_info' not in pack.meta_keys
        assert 'seg_map_path' not in pack.meta_keys
        assert 'img_path' in pack.meta_keys

    def test_gray_rgba_and_tiny_files(self, model, tmp_path):
        rng = np.random.default_rng(1)
        files = {
            'gray.png': rng.integers(0, 256, (30, 41), dtype=np.uint8),
            'rgba.png': rng.integers(0, 256, (33, 27, 4), dtype=np.uint8),
            'tiny.png': rng.integers(0, 256, (20, 20, 3), dtype=np.uint8),
        }
        for name, array in files.items():
            cv2.imwrite(str(tmp_path / name), array)
        paths = [str(tmp_path / name) for name in files]
        samples = inference_panoptic(model, paths)
        assert isinstance(samples, list) and len(samples) == 3
        for path, sample, array in zip(paths, samples, files.values()):
            check_prediction(sample, *array.shape[:2])
            assert sample.img_path == path
        # the 20x20 image reaches the network padded to the stride (32),
        # which is what lets Panoptic FPN's levels line up
        assert tuple(samples[2].batch_input_shape) == (32, 32)

    def test_arrays_and_single_input(self, model):
        rng = np.random.default_rng(2)
        gray = rng.integers(0, 256, (20, 20), dtype=np.uint8)
        sample = inference_panoptic(model, gray)
        check_prediction(sample, 20, 20)
        assert sample.img_path is None
        # a gray array and its 3-channel copy give the same prediction
        same = inference_panoptic(model, np.repeat(gray[..., None], 3, 2))
        torch.testing.assert_close(same.pred_panoptic_seg.sem_seg,
                                   sample.pred_panoptic_seg.sem_seg)
        rgba = rng.integers(0, 256, (17, 23, 4), dtype=np.uint8)
        check_prediction(inference_panoptic(model, rgba), 17, 23)

    def test_missing_and_unreadable_files(self, model, tmp_path):
        with pytest.raises(FileNotFoundError, match='missing.png'):
            inference_panoptic(model, str(tmp_path / 'missing.png'))
        (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8\xff garbage')
        with pytest.raises(ValueError, match='Cannot decode'):
            inference_panoptic(model, [str(tmp_path / 'broken.jpg')])

    def test_checkpoint_meta_wins_and_errors(self, model, tmp_path):
        meta = dict(
            classes=('a', 'b', 'c', 'd'),
            thing_classes=('a', 'b'),
            stuff_classes=('c', 'd'))
        checkpoint = tmp_path / 'tiny.pth'
        torch.save(
            dict(
                state_dict=model.state_dict(),
                meta=dict(dataset_meta=meta)), str(checkpoint))
        loaded = init_panoptic_model(str(TINY_CONFIG), str(checkpoint))
        assert tuple(loaded.dataset_meta['classes']) == meta['classes']
        for name, value in model.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[name], value)

        with pytest.raises(FileNotFoundError, match='Checkpoint'):
            init_panoptic_model(str(TINY_CONFIG), str(tmp_path / 'no.pth'))
        with pytest.raises(FileNotFoundError, match='Config'):
            init_panoptic_model(str(tmp_path / 'no_config.py'))
        # class count of the meta and of the model disagree
        cfg = Config.fromfile(str(TINY_CONFIG))
        cfg.test_dataloader.dataset.metainfo = dict(classes=('x', 'y'))
        with pytest.raises(ValueError, match='predicts 4 classes'):
            init_panoptic_model(cfg)


def naive_segments(pan, num_classes, num_things):
    """Area and [x, y, w, h] per non-void value, with Python loops."""
    result = {}
    height, width = pan.shape
    for value in sorted(set(pan.ravel().tolist())):
        if value % 1000 == num_classes:
            continue
        ys, xs = [], []
        for y in range(height):
            for x in range(width):
                if pan[y, x] == value:
                    ys.append(y)
                    xs.append(x)
        result[value] = dict(
            label=value % 1000,
            isthing=value % 1000 < num_things,
            area=len(ys),
            bbox=[min(xs), min(ys),
                  max(xs) - min(xs) + 1,
                  max(ys) - min(ys) + 1])
    return result


class TestPanopticToCocoSegments:

    def test_round_trip(self):
        rng = np.random.default_rng(3)
        pan = rng.choice(
            np.array([0 + 1000, 0 + 2000, 1 + 3000, 2, 3, 4]), size=(9, 11))
        id_png, segments_info = panoptic_to_coco_segments(
            torch.from_numpy(pan)[None], CLASSES, CLASSES[:2])
        assert id_png.shape == (9, 11, 3) and id_png.dtype == np.uint8
        rgb = id_png.astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        assert [s['id'] for s in segments_info] == \
            list(range(1, len(segments_info) + 1))
        np.testing.assert_array_equal(ids == 0, pan == 4)  # void

        expected = naive_segments(pan, 4, 2)
        assert len(segments_info) == len(expected)
        for info in segments_info:
            mask = ids == info['id']
            values = np.unique(pan[mask])
            assert len(values) == 1  # one predicted segment per id
            reference = expected[int(values[0])]
            assert info['area'] == reference['area'] == mask.sum()
            assert info['bbox'] == reference['bbox']
            assert info['label'] == reference['label']
            assert info['category_id'] == reference['label']
            assert info['category_name'] == CLASSES[reference['label']]
            assert info['isthing'] == reference['isthing']
            assert info['iscrowd'] == 0

    def test_png_file_round_trip_and_category_ids(self, tmp_path):
        # ids above 255 use the G channel: check through a real PNG file
        num = 300
        pan = (np.arange(num) * 1000 + 1000).reshape(15, 20)  # class 0
        id_png, info = panoptic_to_coco_segments(
            pan, CLASSES, CLASSES[:2], category_ids=[11, 12, 13, 14])
        cv2.imwrite(str(tmp_path / 'ids.png'), id_png[..., ::-1])
        rgb = cv2.imread(str(tmp_path / 'ids.png'))[..., ::-1].astype(int)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        np.testing.assert_array_equal(ids.ravel(), np.arange(1, num + 1))
        assert {s['category_id'] for s in info} == {11}
        assert all(s['area'] == 1 and s['bbox'][2:] == [1, 1] for s in info)

    def test_empty_and_bad_input(self):
        id_png, info = panoptic_to_coco_segments(
            np.full((3, 3), 4), CLASSES, CLASSES[:2])
        assert info == [] and not id_png.any()
        with pytest.raises(ValueError, match='thing classes first'):
            panoptic_to_coco_segments(np.zeros((2, 2), np.int64), CLASSES,
                                      ('sky', ))
        with pytest.raises(ValueError, match='only 4 classes'):
            panoptic_to_coco_segments(np.full((2, 2), 7), CLASSES,
                                      CLASSES[:2])
