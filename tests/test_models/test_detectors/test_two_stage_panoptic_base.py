# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""TwoStagePanopticBase: its pieces reassembled give mmdet's Panoptic FPN
losses and predictions exactly (RPN loss and proposals, RoI loss, semantic
loss and predict on given logits); test-mode detections carry mask
probabilities of their label that keep their gradient, checked one
detection at a time; no detection at all."""
import copy

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.models.detectors import TwoStagePanopticBase
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()
NUM_THINGS, NUM_STUFF, CHANNELS = 2, 2, 16


def _rpn_train_cfg():
    return dict(
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
        debug=False)


def _roi_extractor(size):
    return dict(
        type='SingleRoIExtractor',
        roi_layer=dict(type='RoIAlign', output_size=size, sampling_ratio=0),
        out_channels=CHANNELS,
        featmap_strides=[4, 8, 16, 32])


TINY = dict(
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=8,
        stem_channels=8,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
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
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss')),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=_roi_extractor(7),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=CHANNELS,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=NUM_THINGS,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss'),
            loss_bbox=dict(type='L1Loss')),
        mask_roi_extractor=_roi_extractor(14),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=1,
            in_channels=CHANNELS,
            conv_out_channels=CHANNELS,
            num_classes=NUM_THINGS,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True))),
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
    train_cfg=dict(
        rpn=_rpn_train_cfg(),
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
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
            max_per_img=10,
            mask_thr_binary=0.5),
        panoptic=dict(mask_overlap=0.5, stuff_area_limit=1)))

#: Detections of a random-init model: every proposal kept.
ALL_DETECTIONS = ConfigDict(
    score_thr=0.0, nms=dict(type='nms', iou_threshold=1.0), max_per_img=6)


def build_base(**overrides):
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = TwoStagePanopticBase(**cfg)
    model.init_weights()
    return model


def _sample(height, width, boxes, labels):
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height + 8, width - 8),
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
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


def _batch(model, training):
    samples = [
        _sample(64, 64, [[4, 6, 30, 34], [36, 30, 60, 58]], [0, 1]),
        _sample(56, 64, [], [])
    ]
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, ) + s.metainfo['img_shape'],
                      generator=gen).to(torch.uint8) for s in samples
    ]
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training)


def test_not_registered_and_needs_a_mask_head():
    from mmpanoptic_plus.registry import MODELS
    assert MODELS.get('TwoStagePanopticBase') is None
    roi_head = copy.deepcopy(TINY['roi_head'])
    for key in ('mask_roi_extractor', 'mask_head'):
        roi_head.pop(key)
    with pytest.raises(ValueError, match='mask head'):
        build_base(roi_head=roi_head)
    with pytest.raises(ValueError, match='needs a semantic_head'):
        build_base(semantic_head=None)


def test_pieces_reassemble_mmdet_panoptic_fpn_losses():
    model = build_base().train()
    data = _batch(model, True)
    inputs, samples = data['inputs'], data['data_samples']
    labels_before = [s.gt_instances.labels.clone() for s in samples]
    torch.manual_seed(1)  # the RPN and RoI samplers draw at random
    # the base does not override loss: this is mmdet's Panoptic FPN loss
    reference = model.loss(inputs, samples)

    torch.manual_seed(1)
    x = model.extract_feat(inputs)
    losses, proposals = model.rpn_loss_and_proposals(x, samples)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    for sample, labels in zip(samples, labels_before):  # not modified
        assert torch.equal(sample.gt_instances.labels, labels)
    bboxes_before = [p.bboxes.clone() for p in proposals]
    losses.update(model.roi_head_loss(x, proposals, samples))
    for prop, bboxes in zip(proposals, bboxes_before):  # not renamed
        assert torch.equal(prop.bboxes, bboxes)
    seg_logits = model.semantic_head(x)['seg_preds']
    losses['loss_seg'] = model.semantic_loss(seg_logits, samples)

    assert set(losses) == set(reference)
    for key, value in reference.items():
        values = value if isinstance(value, list) else [value]
        got = losses[key] if isinstance(value, list) else [losses[key]]
        for a, b in zip(got, values):
            assert torch.equal(a, b), key


@pytest.mark.parametrize('stride', [4, 1])
def test_semantic_loss_equals_the_heads_loss_on_hand_built_logits(
        stride, monkeypatch):
    model = build_base()
    samples = _batch(model, True)['data_samples']
    height, width = samples[0].metainfo['batch_input_shape']
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, NUM_STUFF + 1, height // stride, width // stride,
                         generator=gen)
    head = model.semantic_head
    monkeypatch.setattr(head, 'forward', lambda x: dict(seg_preds=logits))
    expected = head.loss(None, samples)['loss_seg']
    assert torch.equal(model.semantic_loss(logits, samples), expected)


@pytest.mark.parametrize('rescale', [True, False])
def test_semantic_predict_equals_the_heads_predict(rescale, monkeypatch):
    model = build_base().eval()
    metas = [s.metainfo for s in _batch(model, False)['data_samples']]
    height, width = metas[0]['batch_input_shape']
    logits = torch.randn(2, NUM_STUFF + 1, height // 4, width // 4)
    head = model.semantic_head
    monkeypatch.setattr(head, 'forward', lambda x: dict(seg_preds=logits))
    expected = head.predict(None, metas, rescale)
    got = model.semantic_predict(logits, metas, rescale)
    for meta, a, b in zip(metas, got, expected):
        assert torch.equal(a, b)
        size = meta['ori_shape'] if rescale else meta['batch_input_shape']
        assert a.shape == (NUM_STUFF + 1, ) + tuple(size)


def test_pieces_reassemble_mmdet_panoptic_fpn_predict():
    model = build_base().eval()
    data = _batch(model, False)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        reference = model.predict(inputs, copy.deepcopy(samples))
        x = model.extract_feat(inputs)
        proposals = model.predict_proposals(x, samples)
        results = model.roi_head.predict(x, proposals, samples, rescale=True)
        seg_preds = model.semantic_predict(
            model.semantic_head(x)['seg_preds'],
            [s.metainfo for s in samples], True)
        panoptic = model.panoptic_fusion_head.predict(results, seg_preds)
    for ref, got in zip(reference, panoptic):
        assert torch.equal(ref.pred_panoptic_seg.sem_seg, got.sem_seg)
    # pre-defined proposals are used as they are
    for sample, prop in zip(samples, proposals):
        sample.proposals = prop
    assert model.predict_proposals(x, samples)[1] is proposals[1]


def test_detections_carry_differentiable_mask_probs_of_their_label():
    model = build_base().train()
    data = _batch(model, True)
    metas = [s.metainfo for s in data['data_samples']]
    x = model.extract_feat(data['inputs'])
    proposals = model.predict_proposals(x, data['data_samples'])
    detections = model.detections_with_mask_probs(x, metas, proposals,
                                                  ALL_DETECTIONS)
    with torch.no_grad():
        expected = model.roi_head.predict_bbox(
            x, metas, proposals, rcnn_test_cfg=ALL_DETECTIONS, rescale=False)
    assert len(detections) == 2
    assert sum(len(d) for d in detections) > 0
    for det, ref in zip(detections, expected):
        assert torch.equal(det.bboxes, ref.bboxes)
        assert torch.equal(det.scores, ref.scores)
        assert torch.equal(det.labels, ref.labels)
        assert not det.bboxes.requires_grad and not det.scores.requires_grad
        assert det.mask_probs.shape == (len(ref), 28, 28)
        assert torch.equal(det.mask_probs, det.mask_logits.sigmoid())
    # naive reference: one detection at a time, channel of its label
    for img_id, det in enumerate(detections):
        for i in range(len(det)):
            rois = bbox2roi([det.bboxes[i:i + 1]])
            rois[:, 0] = img_id
            logits = model.roi_head._mask_forward(x, rois)['mask_preds']
            single = logits[0, int(det.labels[i])].sigmoid()
            torch.testing.assert_close(det.mask_probs[i], single)
    # the probabilities keep their gradient back to the mask head
    total = sum(d.mask_probs.sum() for d in detections)
    total.backward()
    weight = model.roi_head.mask_head.conv_logits.weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert model.roi_head.bbox_head.fc_cls.weight.grad is None


def test_no_detection_at_all():
    model = build_base().eval()
    data = _batch(model, False)
    metas = [s.metainfo for s in data['data_samples']]
    x = model.extract_feat(data['inputs'])
    proposals = model.predict_proposals(x, data['data_samples'])
    none = ConfigDict(score_thr=1.1, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=5)
    detections = model.detections_with_mask_probs(x, metas, proposals, none)
    assert [len(d) for d in detections] == [0, 0]
    for det in detections:
        assert det.bboxes.shape == (0, 4)
        assert det.mask_probs.shape == (0, 1, 1)
