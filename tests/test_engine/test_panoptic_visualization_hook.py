# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PanopticVisualizationHook: test-mode files and val-mode backend logging."""
import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

from mmpanoptic_plus.engine.hooks import PanopticVisualizationHook
from mmpanoptic_plus.utils import register_all_modules
from mmpanoptic_plus.visualization import PanopticLocalVisualizer

CLASSES = ('disc', 'box', 'sky', 'ground')
PALETTE = [(220, 20, 60), (0, 0, 142), (70, 130, 180), (152, 251, 152)]


def write_image(path, seed, shape=(12, 16)):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return image[..., ::-1]  # RGB


def make_sample(img_path, shape=(12, 16), with_gt=False):
    pred = np.full(shape, 2, dtype=np.int64)
    pred[shape[0] // 2:] = 3
    pred[2:5, 3:7] = 0 + 1000
    pred[0, :] = len(CLASSES)  # void
    sample = DetDataSample(metainfo=dict(img_path=str(img_path)))
    sample.pred_panoptic_seg = PixelData(
        sem_seg=torch.from_numpy(pred)[None].int())
    if with_gt:
        seg_ids = np.where(pred == 1000, 5, 7)
        sample.set_metainfo(
            dict(segments_info=[
                dict(id=5, category=0, is_thing=True, iscrowd=False),
                dict(id=7, category=3, is_thing=False, iscrowd=False)
            ]))
        sample.gt_panoptic_seg = PixelData(
            sem_seg=torch.from_numpy(seg_ids)[None])
    return sample


def make_visualizer(name, **kwargs):
    # the hook takes the latest visualizer created with get_instance
    vis = PanopticLocalVisualizer.get_instance(name, **kwargs)
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    return vis


def test_registered():
    register_all_modules()
    from mmpanoptic_plus.registry import HOOKS
    make_visualizer('hook_registered')
    hook = HOOKS.build(dict(type='PanopticVisualizationHook', draw=True))
    assert type(hook) is PanopticVisualizationHook


def test_test_mode_writes_one_png_per_image(tmp_path):
    images = {}
    samples = []
    for index, ext in enumerate(['jpg', 'png', 'bmp']):
        path = tmp_path / f'img{index}.{ext}'
        images[f'img{index}'] = write_image(path, index)
        samples.append(make_sample(path, with_gt=index == 0))
    vis = make_visualizer('hook_test_mode', draw_labels=False)
    runner = SimpleNamespace(
        work_dir=str(tmp_path / 'work'), timestamp='20240101_000000', iter=0)
    hook = PanopticVisualizationHook(draw=True, test_out_dir='vis')
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, samples[:2])
    hook.after_test_iter(runner, 1, {}, samples[2:])

    out_dir = tmp_path / 'work' / '20240101_000000' / 'vis'
    assert sorted(os.listdir(out_dir)) == ['img0.png', 'img1.png', 'img2.png']
    # no folder nested inside the output folder (mmdet 3.3 re-joins it)
    assert all((out_dir / name).is_file() for name in os.listdir(out_dir))
    for stem, image in images.items():
        written = cv2.imread(str(out_dir / f'{stem}.png'))[..., ::-1]
        sample = samples[int(stem[-1])]
        # JPEG input: compare with what the hook read, not what we wrote
        read = cv2.imread(sample.img_path)[..., ::-1]
        pred = vis.draw_panoptic_map(read, sample.pred_panoptic_seg.sem_seg,
                                     CLASSES, PALETTE)
        if stem == 'img0':  # GT left, prediction right
            assert written.shape == (12, 32, 3)
            np.testing.assert_array_equal(written[:, 16:], pred)
        else:
            np.testing.assert_array_equal(written, pred)

    # draw=False: nothing
    quiet = PanopticVisualizationHook(draw=False, test_out_dir='quiet')
    quiet.before_test(runner)
    quiet.after_test_iter(runner, 0, {}, samples)
    assert not (tmp_path / 'work' / '20240101_000000' / 'quiet').exists()


def test_val_mode_logs_every_interval(tmp_path):
    path = tmp_path / 'val.png'
    write_image(path, 0)
    vis_dir = tmp_path / 'vis_data'
    make_visualizer(
        'hook_val_mode',
        vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(vis_dir))
    hook = PanopticVisualizationHook(draw=True, interval=2)
    runner = SimpleNamespace(
        work_dir=str(tmp_path), timestamp='ts', iter=100)
    for batch_idx in range(5):
        hook.after_val_iter(runner, batch_idx, {},
                            [make_sample(path, with_gt=True)])
    saved = sorted(p.name for p in vis_dir.rglob('*.png'))
    # steps 100 + batch_idx that are multiples of 2
    assert saved == ['val_img_100.png', 'val_img_102.png', 'val_img_104.png']
    drawn = cv2.imread(str(next(vis_dir.rglob('val_img_100.png'))))
    assert drawn.shape == (12, 32, 3)  # GT | prediction

    with pytest.raises(ValueError, match='interval'):
        PanopticVisualizationHook(draw=True, interval=0)


def test_runner_test_loop_writes_drawings(tmp_path, synthetic_root):
    """End to end: Runner.test on the synthetic val set with a tiny random
    Panoptic FPN; the hook from the config writes one drawing per image."""
    from pathlib import Path

    from mmengine.config import Config
    from mmengine.runner import Runner

    register_all_modules()
    config_path = Path(__file__).resolve().parents[1] / 'test_apis' / \
        'data' / 'tiny_panoptic_fpn.py'
    cfg = Config.fromfile(str(config_path))
    things = 3  # the synthetic set: disc, square, triangle | sky, ground
    cfg.model.roi_head.bbox_head.num_classes = things
    cfg.model.roi_head.mask_head.num_classes = things
    cfg.model.semantic_head.num_things_classes = things
    cfg.model.panoptic_fusion_head.num_things_classes = things
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        # mmdet's mask head reads scale_factor, set by Resize
        dict(type='Resize', scale=(64, 64), keep_ratio=True),
        dict(type='LoadPanopticAnnotations'),
        dict(type='PackPanopticInputs')
    ]
    runner = Runner(
        model=cfg.model,
        work_dir=str(tmp_path / 'work'),
        test_dataloader=dict(
            batch_size=2,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='SyntheticPanopticDataset',
                data_root=str(synthetic_root),
                ann_file='annotations/panoptic_val.json',
                data_prefix=dict(
                    img='val/', seg='annotations/panoptic_val/'),
                test_mode=True,
                pipeline=test_pipeline)),
        test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='PanopticQualityMetric'),
        default_hooks=dict(
            visualization=dict(
                type='PanopticVisualizationHook',
                draw=True,
                test_out_dir='vis')),
        visualizer=dict(
            type='PanopticLocalVisualizer', name='runner_e2e_visualizer'),
        default_scope='mmpanoptic_plus')
    runner.test()
    out_dir = tmp_path / 'work' / runner.timestamp / 'vis'
    names = sorted(p.name for p in out_dir.iterdir())
    val_images = sorted(p.stem for p in (synthetic_root / 'val').iterdir())
    assert names == [f'{stem}.png' for stem in val_images]
    for name in names:
        # GT | prediction at the original 64x64 size
        assert cv2.imread(str(out_dir / name)).shape == (64, 128, 3)


def test_hook_draws_with_the_runners_visualizer():
    """Not with whichever visualizer the process created last."""
    from types import SimpleNamespace

    from mmengine.visualization import Visualizer
    runners_visualizer = make_visualizer('hook_runner_own')
    hook = PanopticVisualizationHook(draw=True)
    Visualizer.get_instance('hook_some_later_plain_visualizer')
    assert Visualizer.get_current_instance() is not runners_visualizer
    hook.before_run(SimpleNamespace(visualizer=runners_visualizer))
    assert hook._visualizer is runners_visualizer
