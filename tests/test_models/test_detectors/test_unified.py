# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""UnifiedPanoptic: detections with differentiable scores, gradient paths,
no NaN without things, predict, the paper and ablation configs, and a Runner
smoke run of the synthetic config."""
import copy
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import UnifiedPanoptic
from mmpanoptic_plus.models.layers.paste_masks import paste_masks_in_grid
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
CONFIGS = Path(__file__).parents[3] / 'configs' / 'unified'


def _config(name):
    return Config.fromfile(str(CONFIGS / f'{name}.py'))


def _tiny_model(name='unified_r18_d2_synthetic', **overrides):
    cfg = copy.deepcopy(_config(name).model)
    cfg.backbone.base_channels = 16
    cfg.neck.in_channels = [16, 32, 64, 128]
    cfg.neck.out_channels = 16
    cfg.rpn_head.update(in_channels=16, feat_channels=16)
    cfg.roi_head.bbox_roi_extractor.out_channels = 16
    cfg.roi_head.bbox_head.update(in_channels=16, fc_out_channels=32)
    if cfg.roi_head.get('mask_head') is not None:
        cfg.roi_head.mask_roi_extractor.out_channels = 16
        cfg.roi_head.mask_head.update(in_channels=16, conv_out_channels=16)
    cfg.semantic_head.update(in_channels=16, feat_channels=8,
                             norm_cfg=dict(type='GN', num_groups=4))
    if cfg.get('affinity_head') is not None:
        cfg.affinity_head.extractor.update(
            in_channels=16, feat_channels=8,
            norm_cfg=dict(type='GN', num_groups=4))
    # keep low-score detections of the random model in the panoptic path
    cfg.detection_cfg.score_thr = 0.0
    if cfg.get('test_detection_cfg') is not None:
        cfg.test_detection_cfg.score_thr = 0.0
    cfg.test_cfg.rcnn.score_thr = 0.0
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _sample(with_things=True, size=64):
    """A 64x64 image: a class-1 square (segment 0), stuff 3 and 4."""
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
            batch_input_shape=(size, size),
            scale_factor=(1., 1.)))
    sem = torch.full((1, size, size), 3, dtype=torch.long)
    sem[:, size // 2:] = 4
    ids = torch.full((1, size, size), 0 if with_things else -1,
                     dtype=torch.long)
    ids[:, :size // 2] = 1 if with_things else 0
    ids[:, size // 2:] = 2 if with_things else 1
    if with_things:
        sem[:, 8:40, 8:40] = 1
        ids[:, 8:40, 8:40] = 0
        masks = torch.zeros(1, size, size, dtype=torch.bool)
        masks[:, 8:40, 8:40] = True
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[8., 8., 40., 40.]]),
            labels=torch.tensor([1]),
            masks=masks.numpy())
        sample.gt_segments = InstanceData(
            labels=torch.tensor([1, 3, 4]),
            is_thing=torch.tensor([True, False, False]))
    else:
        from mmdet.structures.mask import BitmapMasks
        sample.gt_instances = InstanceData(
            bboxes=torch.zeros(0, 4),
            labels=torch.zeros(0, dtype=torch.long),
            masks=BitmapMasks(np.zeros((0, size, size)), size, size))
        sample.gt_segments = InstanceData(
            labels=torch.tensor([3, 4]),
            is_thing=torch.tensor([False, False]))
    if with_things:
        from mmdet.structures.mask import BitmapMasks
        sample.gt_instances.masks = BitmapMasks(masks.numpy(), size, size)
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    sample.gt_segment_ids = PixelData(data=ids)
    return sample


def test_layout_and_switches():
    model = _tiny_model()
    assert isinstance(model, UnifiedPanoptic)
    assert model.top_se is not None and model.feat_stride == 4
    assert model.affinity_head is not None
    assert model.panoptic_loss is not None
    assert model.dynamic_potential.variant == 'B'
    a = _tiny_model('unified_r18_a_synthetic')
    assert a.affinity_head is None and a.panoptic_loss is None
    assert not a.roi_head.with_mask


def test_detections_equal_mmdet_predict_bbox_and_keep_score_grad():
    model = _tiny_model()
    images = torch.randn(1, 3, 64, 64)
    samples = [_sample()]
    metas = [s.metainfo for s in samples]
    x = model.extract_feat(images)
    proposals = model.predict_proposals(x, samples)
    dets = model.predicted_detections(x, metas, proposals)
    with torch.no_grad():
        ref = model.roi_head.predict_bbox(
            x, metas, proposals, rcnn_test_cfg=model.detection_cfg,
            rescale=False)
    assert len(dets[0]) > 0
    torch.testing.assert_close(dets[0].bboxes, ref[0].bboxes)
    torch.testing.assert_close(dets[0].scores.detach(), ref[0].scores)
    assert torch.equal(dets[0].labels, ref[0].labels)
    assert dets[0].scores.requires_grad
    assert dets[0].mask_probs.requires_grad


def test_loss_gradients_reach_semantic_affinity_and_score_path():
    model = _tiny_model()
    model.train()
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[_sample()])
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_rpn_cls', 'loss_cls', 'loss_mask', 'loss_seg',
            'loss_panoptic'} <= set(losses)
    assert torch.isfinite(losses['loss_panoptic'])
    model.zero_grad()
    losses['loss_panoptic'].backward()
    grads = {
        'semantic head': model.semantic_head.conv_logits.weight,
        'affinity extractor': model.affinity_head.extractor.conv_logits.weight,
        'phi1': model.affinity_head.phi1.weight,
        'box head scores': model.roi_head.bbox_head.fc_cls.weight,
        'mask head': model.roi_head.mask_head.conv_logits.weight,
        'SE block': model.top_se.conv1.conv.weight,
    }
    for name, weight in grads.items():
        assert weight.grad is not None and weight.grad.abs().sum() > 0, name
    # box regression is a discrete choice: no gradient from P
    reg = model.roi_head.bbox_head.fc_reg.weight.grad
    assert reg is None or reg.abs().sum() == 0


def test_detection_weight_scales_detection_losses():
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[_sample()])
    out = {}
    for weight in (1.0, 0.25):
        model = _tiny_model(detection_loss_weight=weight)
        model.train()
        torch.manual_seed(1)
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        out[weight] = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_rpn_cls', 'loss_mask'):
        a = out[1.0][key]
        b = out[0.25][key]
        a = sum(a) if isinstance(a, list) else a
        b = sum(b) if isinstance(b, list) else b
        torch.testing.assert_close(b, 0.25 * a)
    torch.testing.assert_close(out[0.25]['loss_seg'], out[1.0]['loss_seg'])


@pytest.mark.parametrize('name', ['unified_r18_d2_synthetic',
                                  'unified_r18_a_synthetic'])
def test_image_without_things_is_finite(name):
    model = _tiny_model(name)
    model.train()
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[_sample(with_things=False)])
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for p in model.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize('inference', ['argmax', 'heuristic'])
def test_predict(inference):
    overrides = {}
    if inference == 'heuristic':
        overrides = dict(
            inference='heuristic',
            panoptic_fusion_head=dict(
                type='HeuristicPanopticFusionHead',
                num_things_classes=3,
                num_stuff_classes=2,
                stuff_area_limit=0))
    model = _tiny_model(**overrides)
    model.eval()
    sample = _sample()
    # the image was resized x2 from 30x32 and padded to 64x64
    sample.set_metainfo(
        dict(ori_shape=(30, 32), img_shape=(60, 64), scale_factor=(2., 2.)))
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[sample])
    with torch.no_grad():
        out = model.test_step(batch)
    pan = out[0].pred_panoptic_seg.sem_seg
    assert pan.shape == (1, 30, 32)
    labels = pan % 1000
    assert ((labels >= 0) & (labels <= 5)).all()
    if inference == 'argmax':
        # argmax of P covers every pixel: no void
        assert (labels < 5).all()


@pytest.mark.parametrize('resolution', ['grid', 'image'])
def test_argmax_inference_is_the_argmax_of_p(resolution):
    model = _tiny_model(inference_resolution=resolution)
    model.eval()
    sample = _sample()
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[sample])
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        outs = model._forward(data['inputs'], data['data_samples'])
        pan = model.test_step(batch)[0].pred_panoptic_seg.sem_seg[0]
        x = model.extract_feat(data['inputs'])
        proposals = model.predict_proposals(x, data['data_samples'])
        dets = model.predicted_detections(
            x, [s.metainfo for s in data['data_samples']], proposals,
            model.test_detection_cfg)
    labels = model.channel_labels(dets)[0]
    assert len(dets[0]) > 0
    p = outs[1]
    if resolution == 'grid':
        up = F.interpolate(
            p[None], scale_factor=4, mode='bilinear', align_corners=False)[0]
    else:
        # Eq. 4 at every pixel: Psi from V upsampled and the masks pasted
        # at image resolution, plus the grid's affinity term upsampled
        with torch.no_grad():
            det = dets[0]
            probs = outs[0].softmax(dim=1)[0]
            upsample = partial(F.interpolate, scale_factor=4,
                               mode='bilinear', align_corners=False)
            masks = paste_masks_in_grid(det.mask_probs, det.bboxes, (64, 64))
            psi = model.dynamic_potential(
                upsample(probs[None])[0], det.bboxes, det.scores, det.labels,
                masks, stride=1)
            grid_psi = model.dynamic_potential(
                probs, det.bboxes, det.scores, det.labels,
                paste_masks_in_grid(det.mask_probs, det.bboxes, (16, 16),
                                    4))
            up = psi + upsample((p - grid_psi)[None])[0]
    channel = up.argmax(0)
    torch.testing.assert_close(pan % 1000, labels[channel])


def test_test_detection_cfg_is_used_at_inference_only():
    model = _tiny_model(
        test_detection_cfg=dict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.3, class_agnostic=True),
            max_per_img=1))
    assert model.detection_cfg.max_per_img == 20
    model.eval()
    batch = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[_sample()])
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        outs = model._forward(data['inputs'], data['data_samples'])
        pan = model.test_step(batch)[0].pred_panoptic_seg.sem_seg[0]
    assert outs[1].shape[0] == 1 + 2  # one detection, two stuff classes
    # at most one thing segment
    assert len((pan // 1000)[pan % 1000 < 3].unique()) <= 1
    # without it, inference uses detection_cfg (the paper's one head)
    plain = _tiny_model(test_detection_cfg=None)
    assert plain.test_detection_cfg is plain.detection_cfg


def test_bad_configs():
    with pytest.raises(ValueError):
        _tiny_model(inference='vote')
    with pytest.raises(ValueError, match='inference_resolution'):
        _tiny_model(inference_resolution='half')
    with pytest.raises(ValueError):  # heuristic needs the heuristic head
        _tiny_model(inference='heuristic')


@pytest.mark.parametrize('row,masks,affinity,e2e,inference', [
    ('a', False, False, False, 'argmax'),
    ('b', False, True, True, 'argmax'),
    ('c1', True, False, False, 'heuristic'),
    ('c2', True, False, False, 'argmax'),
    ('d1', True, True, True, 'heuristic'),
    ('d2', True, True, True, 'argmax'),
])
def test_table1_rows(row, masks, affinity, e2e, inference):
    cfg = _config(f'unified_r50_fpn_{row}_65k_cityscapes')
    model = cfg.model
    assert model.type == 'UnifiedPanoptic'
    assert (model.roi_head.get('mask_head') is not None) == masks
    assert (model.get('affinity_head') is not None) == affinity
    assert (model.get('panoptic_loss') is not None) == e2e
    assert model.inference == inference
    # Cityscapes: 8 + 11 classes, weights 0.25 / 1.0 / 1.0, 32 crops
    assert model.semantic_head.num_things_classes == 8
    assert model.semantic_head.num_stuff_classes == 11
    assert model.detection_loss_weight == 0.25
    assert model.semantic_head.loss_seg.loss_weight == 1.0
    if e2e:
        assert model.panoptic_loss.loss_weight == 1.0
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.train_cfg.max_iters == 65000
    assert model.matching_iou_thr == 0.5
    assert model.se_ratio == 16
    assert model.semantic_head.norm_cfg.type == 'GN'
    if affinity:
        assert model.affinity_head.channels == 128
    MODELS.build(model)  # builds (R50 random init, DCN)


def test_coco_config():
    cfg = _config('unified_r50_fpn_d2_200k_coco')
    model = cfg.model
    assert model.detection_loss_weight == 1.0
    assert model.semantic_head.loss_seg.loss_weight == 0.2
    assert model.panoptic_loss.loss_weight == 0.1
    assert (model.semantic_head.num_things_classes,
            model.semantic_head.num_stuff_classes) == (80, 53)
    assert cfg.train_cfg.max_iters == 200000
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.param_scheduler[1].milestones == [150000, 190000]
    assert cfg.train_dataloader.batch_size * 8 == 16


def test_synthetic_second_stage_configs():
    """The second stage of D2 and of A: each first stage's model and data,
    1000 iterations from its iter_2000.pth with the first stage's
    learning-rate shape (warmup 100, x0.1 at three quarters)."""
    for name, first_run in (('d2', 'unified_d2'), ('a', 'unified_a')):
        first = _config(f'unified_r18_{name}_synthetic')
        second = _config(f'unified_r18_{name}_synthetic_stage2')
        assert second.model == first.model, name
        assert second.train_dataloader == first.train_dataloader, name
        assert second.optim_wrapper == first.optim_wrapper, name
        assert second.load_from == f'work_dirs/{first_run}/iter_2000.pth'
        assert first.train_cfg.max_iters == 2000
        assert second.train_cfg.max_iters == 1000
        warmup, steps = second.param_scheduler
        assert (warmup.end, steps.end, steps.milestones) == (100, 1000,
                                                             [750])
        assert first.param_scheduler[1].milestones == [1500]
        assert [dict(p, end=None, milestones=None)
                for p in second.param_scheduler] == [
                    dict(p, end=None, milestones=None)
                    for p in first.param_scheduler], name


def test_synthetic_config_runs_through_runner(synthetic_root, tmp_path):
    """Three iterations of unified_r18_d2_synthetic.py: losses finite."""
    cfg = _config('unified_r18_d2_synthetic')
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(synthetic_root) + '/'
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=3)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1000, save_last=False)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train()
    finally:
        torch.set_num_threads(num_threads)
    scalars = runner.message_hub.log_scalars
    for name in ('loss_rpn_cls', 'loss_cls', 'loss_mask', 'loss_seg',
                 'loss_panoptic'):
        history = np.asarray(scalars[f'train/{name}'].data[0])
        assert len(history) == 3 and np.isfinite(history).all(), name
