# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic FPN + PISR: initial and final losses (also without things),
gamma, gradients of every PISR parameter, predict, K above the number of
detections and zero detections, mask pasting against hand-computed values
and a naive loop, and the configs."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import PanopticFPNPISR
from mmpanoptic_plus.models.layers import PISREncoder
from mmpanoptic_plus.models.layers.paste_masks import (paste_masks_in_grid,
                                                       topk_instance_heatmaps)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
REPO_ROOT = Path(__file__).resolve().parents[3]
NUM_THINGS, NUM_STUFF = 2, 2
CHANNELS = 16
K = 4

TINY_MODEL = dict(
    type='PanopticFPNPISR',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=8,
        stem_channels=8,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN',
        in_channels=[8, 16, 32, 64],
        out_channels=CHANNELS,
        num_outs=5),
    rpn_head=dict(
        type='RPNHead',
        in_channels=CHANNELS,
        feat_channels=CHANNELS,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=CHANNELS,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=CHANNELS,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=NUM_THINGS,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=CHANNELS,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=1,
            in_channels=CHANNELS,
            conv_out_channels=CHANNELS,
            num_classes=NUM_THINGS,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    semantic_head=dict(
        type='PanopticFPNHead',
        num_things_classes=NUM_THINGS,
        num_stuff_classes=NUM_STUFF,
        in_channels=CHANNELS,
        inner_channels=8,
        start_level=0,
        end_level=4,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        loss_seg=dict(
            type='CrossEntropyLoss', ignore_index=255, loss_weight=0.5)),
    panoptic_fusion_head=dict(
        type='HeuristicFusionHead',
        num_things_classes=NUM_THINGS,
        num_stuff_classes=NUM_STUFF),
    pisr=dict(type='PISREncoder', num_instances=K, channels=8),
    gamma=0.5,
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=64,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=200,
            max_per_img=50,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=32,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=100,
            max_per_img=20,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            # low: a random-init model must still produce thing segments
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
            max_per_img=10,
            mask_thr_binary=0.5),
        panoptic=dict(mask_overlap=0.5, stuff_area_limit=1)))

#: Losses every step must report (initial ones already times gamma).
INITIAL_LOSSES = ('loss_seg_init', 'loss_cls_init', 'loss_bbox_init',
                  'loss_mask_init')
FINAL_LOSSES = ('loss_seg', 'loss_cls', 'loss_bbox', 'loss_mask')


def build_model(**overrides):
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def data_sample(height, width, boxes, labels):
    """A sample with rectangular things ``boxes`` (x1, y1, x2, y2) of
    ``labels`` on two stuff halves (labels 2 top, 3 bottom)."""
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))
    masks = np.zeros((len(boxes), height, width), np.uint8)
    sem = torch.full((1, height, width), NUM_THINGS, dtype=torch.long)
    sem[:, height // 2:] = NUM_THINGS + 1
    for i, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        masks[i, y1:y2, x1:x2] = 1
        sem[0, y1:y2, x1:x2] = label
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, height, width))
    sample.ignored_instances = InstanceData(
        bboxes=torch.zeros((0, 4)), labels=torch.zeros((0, ), dtype=torch.long))
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


def preprocess(model, samples, training):
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, ) + s.metainfo['img_shape'],
                      generator=gen).to(torch.uint8) for s in samples
    ]
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training)


def things_and_no_things():
    return [
        data_sample(64, 64, [[4, 6, 30, 34], [36, 30, 60, 58]], [0, 1]),
        data_sample(64, 64, [], [])
    ]


def compute_losses(model, samples, seed=0):
    data = preprocess(model, samples, True)
    torch.manual_seed(seed)  # the RoI samplers draw at random
    return model(**data, mode='loss')


def test_built_modules_are_the_intended_classes():
    model = build_model()
    assert isinstance(model, PanopticFPNPISR)
    assert isinstance(model.pisr, PISREncoder)
    # N = stuff + the semantic head's one "things" class
    assert model.pisr.num_semantic == NUM_STUFF + 1
    assert model.pisr.num_instances == K
    assert model.pisr.in_channels == 8  # semantic_head.inner_channels
    assert model.final_roi_head is not model.roi_head
    assert type(model.final_roi_head) is type(model.roi_head)
    assert model.num_enhanced_levels == 4
    assert model.instance_cfg.max_per_img == K
    with pytest.raises(ValueError, match='num_instances'):
        build_model(pisr=dict(type='PISREncoder', channels=8))
    with pytest.raises(ValueError, match='in_channels'):
        build_model(
            pisr=dict(
                type='PISREncoder', num_instances=K, in_channels=3))


@pytest.mark.parametrize('with_things', [True, False])
def test_loss_has_initial_and_final_terms_and_is_finite(with_things):
    model = build_model().train()
    samples = things_and_no_things() if with_things else [
        data_sample(64, 64, [], [])
    ]
    losses = compute_losses(model, samples)
    for key in INITIAL_LOSSES + FINAL_LOSSES + ('loss_rpn_cls',
                                                'loss_rpn_bbox'):
        assert key in losses, key
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    for key, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), key


def test_initial_losses_are_scaled_by_gamma():
    model = build_model(gamma=1.0).train()
    samples = things_and_no_things()
    reference = compute_losses(model, samples)
    model.gamma = 0.25
    scaled = compute_losses(model, samples)
    for key in INITIAL_LOSSES:
        torch.testing.assert_close(scaled[key], 0.25 * reference[key])
    for key in FINAL_LOSSES:
        torch.testing.assert_close(scaled[key], reference[key])
    # accuracies are reported, not weighted
    torch.testing.assert_close(scaled['acc_init'], reference['acc_init'])


def test_gradient_reaches_every_pisr_parameter():
    # RoIs go to FPN level floor(log2(sqrt(area) / finest_scale)): with
    # finest_scale 4 the four things (sides ~6, 12, 24, 42) are pooled from
    # the four enhanced levels, so every level projection is used
    final_roi_head = copy.deepcopy(TINY_MODEL['roi_head'])
    final_roi_head['bbox_roi_extractor']['finest_scale'] = 4
    final_roi_head['mask_roi_extractor']['finest_scale'] = 4
    model = build_model(gamma=0.0, final_roi_head=final_roi_head).train()
    samples = [
        data_sample(64, 64, [[0, 0, 6, 6], [8, 0, 20, 12], [40, 0, 64, 24],
                             [0, 24, 44, 64]], [0, 1, 0, 1]),
        data_sample(64, 64, [], [])
    ]
    losses = compute_losses(model, samples)
    total, _ = model.parse_losses(losses)
    total.backward()
    pisr_modules = dict(
        pisr=model.pisr,
        final_semantic_logits=model.final_semantic_logits,
        level_projections=model.level_projections,
        final_roi_head=model.final_roi_head)
    for prefix, module in pisr_modules.items():
        for name, param in module.named_parameters():
            assert param.grad is not None, f'{prefix}.{name}'
            assert torch.isfinite(param.grad).all(), f'{prefix}.{name}'
            assert param.grad.abs().sum() > 0, f'{prefix}.{name}'
    # gamma = 0: the initial mask head learns only through the mask
    # probabilities of I, which keep their gradient
    mask_logits = model.roi_head.mask_head.conv_logits.weight
    assert mask_logits.grad is not None and mask_logits.grad.abs().sum() > 0
    # ... while the initial box classifier (discrete selection) gets none
    cls_grad = model.roi_head.bbox_head.fc_cls.weight.grad
    assert cls_grad is None or cls_grad.abs().sum() == 0


def test_enhanced_levels_values():
    model = build_model()
    levels = tuple(
        torch.zeros((1, CHANNELS, size, size)) for size in (16, 8, 4, 2, 1))
    pan_feats = torch.rand((1, 8, 16, 16))
    # zero-initialised projections: the final RoI head starts on plain FPN
    for plain, enhanced in zip(levels, model.enhance_levels(levels,
                                                            pan_feats)):
        torch.testing.assert_close(enhanced, plain)
    # all-ones projections: level l gets the channel sum of F_pan averaged
    # over 2^l x 2^l blocks; P6 (not pooled by the RoI extractors) is kept
    for projection in model.level_projections:
        torch.nn.init.ones_(projection.weight)
        torch.nn.init.zeros_(projection.bias)
    with torch.no_grad():
        enhanced = model.enhance_levels(levels, pan_feats)
    summed = pan_feats.sum(dim=1)[0]
    for level in range(4):
        block = 2**level
        size = 16 // block
        expected = summed.reshape(size, block, size, block).mean((1, 3))
        torch.testing.assert_close(
            enhanced[level][0], expected.expand(CHANNELS, size, size))
    assert (enhanced[4] == 0).all()


def check_panoptic(pan, shape):
    assert pan.shape == (1, ) + shape
    labels = pan % INSTANCE_OFFSET
    ids = pan // INSTANCE_OFFSET
    num_classes = NUM_THINGS + NUM_STUFF
    assert ((labels >= 0) & (labels <= num_classes)).all()
    # stuff (and void) segments have instance id 0, instances are things
    assert (ids[labels >= NUM_THINGS] == 0).all()
    assert (labels[ids > 0] < NUM_THINGS).all()


def test_predict_gives_valid_panoptic_maps():
    model = build_model().eval()
    samples = [
        data_sample(64, 64, [[4, 6, 30, 34]], [0]),
        data_sample(48, 56, [], [])
    ]
    data = preprocess(model, samples, False)
    assert data['inputs'].shape == (2, 3, 64, 64)
    with torch.no_grad():
        results = model(**data, mode='predict')
        raw = model(**data, mode='tensor')
    for result, shape in zip(results, [(64, 64), (48, 56)]):
        check_panoptic(result.pred_panoptic_seg.sem_seg, shape)
    assert raw[-1].shape == (2, NUM_STUFF + 1, 16, 16)
    # the random-init detector keeps some things at score_thr 0.05
    pan = results[0].pred_panoptic_seg.sem_seg
    assert (pan // INSTANCE_OFFSET > 0).any()


def test_more_slots_than_detections_and_no_detection():
    model = build_model(pisr=dict(
        type='PISREncoder', num_instances=50, channels=8)).train()
    samples = things_and_no_things()
    data = preprocess(model, samples, True)
    x = model.extract_feat(data['inputs'])
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        proposals = model.rpn_head.predict(x, data['data_samples'])
    heatmaps, valid = model.initial_instance_heatmaps(
        x, metas, proposals, (16, 16))
    assert heatmaps.shape == (2, 50, 16, 16) and valid.shape == (2, 50)
    counts = valid.sum(dim=1)
    assert (counts > 0).all() and (counts < 50).all()
    for img in range(2):  # valid slots first, padding all zeros
        assert valid[img, :counts[img]].all()
        assert (heatmaps[img, counts[img]:] == 0).all()
    assert ((heatmaps >= 0) & (heatmaps <= 1)).all()
    losses = compute_losses(model, samples)
    assert torch.isfinite(model.parse_losses(losses)[0])

    # no detection at all: an impossible score threshold
    model.instance_cfg.score_thr = 2.0
    heatmaps, valid = model.initial_instance_heatmaps(
        x, metas, proposals, (16, 16))
    assert not valid.any() and (heatmaps == 0).all()
    losses = compute_losses(model, samples)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    for name, param in model.pisr.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name
    model.eval()
    with torch.no_grad():
        results = model(**preprocess(model, samples, False), mode='predict')
    for result in results:
        check_panoptic(result.pred_panoptic_seg.sem_seg, (64, 64))


def test_paste_hand_computed():
    # one mask row of two texels (values 1, 3) over the box x in [8, 24),
    # y in [0, 4): texels 8 px wide, 4 px high. Grid stride 4: cell j
    # samples x = 4 j + 2, i.e. texel coordinate (x - 8) / 8 - 0.5, with
    # zeros beyond the mask (bilinear, zero padding).
    masks = torch.tensor([[[1., 3.]]])
    boxes = torch.tensor([[8., 0., 24., 4.]])
    pasted = paste_masks_in_grid(masks, boxes, (2, 8), stride=4)
    expected = torch.tensor([[0., .25, .75, 1.5, 2.5, 2.25, .75, 0.],
                             [0., 0., 0., 0., 0., 0., 0., 0.]])
    torch.testing.assert_close(pasted[0], expected)


def naive_paste(masks, boxes, grid_shape, stride):
    """Per detection and cell: bilinear sample of the mask at the cell
    center, texel (u, v) covering x1 + [u, u + 1) * box_w / w, zero outside
    the mask."""
    num, mask_h, mask_w = masks.shape
    out = np.zeros((num, ) + tuple(grid_shape))
    for n in range(num):
        x1, y1, x2, y2 = boxes[n].tolist()
        box_w, box_h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
        for i in range(grid_shape[0]):
            for j in range(grid_shape[1]):
                tx = ((j + 0.5) * stride - x1) / box_w * mask_w - 0.5
                ty = ((i + 0.5) * stride - y1) / box_h * mask_h - 0.5
                u0, v0 = int(np.floor(tx)), int(np.floor(ty))
                value = 0.
                for v in (v0, v0 + 1):
                    for u in (u0, u0 + 1):
                        if 0 <= u < mask_w and 0 <= v < mask_h:
                            weight = (1 - abs(tx - u)) * (1 - abs(ty - v))
                            value += weight * masks[n, v, u].item()
                out[n, i, j] = value
    return torch.from_numpy(out).float()


def test_paste_matches_naive_loop():
    gen = torch.Generator().manual_seed(1)
    masks = torch.rand((4, 5, 6), generator=gen)
    boxes = torch.tensor([
        [3.3, 5.1, 27.8, 20.6],  # fractional
        [-6.0, 10.0, 14.0, 40.0],  # partly outside the grid
        [20.0, 2.0, 20.0, 30.0],  # zero width: nothing
        [0.0, 0.0, 40.0, 36.0],  # the whole grid
    ])
    pasted = paste_masks_in_grid(masks, boxes, (9, 10), stride=4)
    torch.testing.assert_close(
        pasted, naive_paste(masks, boxes, (9, 10), 4), atol=1e-5, rtol=0)
    assert (pasted[2] == 0).all()


def test_topk_heatmaps_order_padding_and_gradient():
    masks = [
        torch.ones((3, 2, 2), requires_grad=True),
        torch.zeros((0, 2, 2)),
        torch.ones((1, 2, 2))
    ]
    boxes = [
        torch.tensor([[0., 0., 4., 4.], [4., 4., 8., 8.], [0., 4., 4., 8.]]),
        torch.zeros((0, 4)),
        torch.tensor([[4., 0., 8., 4.]])
    ]
    scores = [torch.tensor([0.2, 0.9, 0.5]), torch.zeros(0),
              torch.tensor([0.3])]
    heatmaps, valid = topk_instance_heatmaps(masks, boxes, scores, 2, (2, 2),
                                             stride=4)
    # image 0: the two best (0.9 at the bottom right, then 0.5 bottom left)
    expected = torch.zeros((3, 2, 2, 2))
    expected[0, 0, 1, 1] = 1
    expected[0, 1, 1, 0] = 1
    expected[2, 0, 0, 1] = 1
    torch.testing.assert_close(heatmaps, expected)
    assert valid.tolist() == [[True, True], [False, False], [True, False]]
    heatmaps.sum().backward()
    # the dropped third-best detection gets no gradient, the kept ones do
    assert masks[0].grad[0].abs().sum() == 0
    assert masks[0].grad[1:].abs().sum() > 0


def test_r50_coco_config_builds():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/pisr/pfpn_r50_coco.py'))
    model = MODELS.build(cfg.model)
    assert isinstance(model, PanopticFPNPISR)
    assert isinstance(model.pisr, PISREncoder)
    assert model.pisr.num_semantic == 53 + 1
    assert model.pisr.in_channels == 128
    assert model.final_roi_head.bbox_head.num_classes == 80
    assert model.final_roi_head.mask_head.num_classes == 80
    assert model.num_enhanced_levels == 4


def test_synthetic_config_builds():
    cfg = Config.fromfile(
        str(REPO_ROOT / 'configs/pisr/pfpn_r18_synthetic.py'))
    model = MODELS.build(cfg.model)
    assert isinstance(model, PanopticFPNPISR)
    assert model.pisr.num_semantic == 2 + 1
    assert model.final_roi_head.bbox_head.num_classes == 3
    assert cfg.train_cfg.max_iters == Config.fromfile(
        str(REPO_ROOT /
            'configs/panoptic_fpn/panoptic-fpn_r18_synthetic.py')
    ).train_cfg.max_iters
