# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ONNX export of RealTimePanoptic (mmpanoptic_plus.deployment and
tools/deployment/pytorch2onnx.py): onnxruntime against PyTorch on every
output, the panoptic map against ``model.predict``, the metadata, and the
CLI. The query selection the graph holds is tested against mmdet/mmcv's in
tests/test_models/test_postprocess/test_rtp_query_selection.py, its NMS
operator in test_exportable_nms.py there."""
import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
import onnx
import onnxruntime
from mmdet.structures import DetDataSample

from mmpanoptic_plus.deployment import (RTP_ONNX_OUTPUTS, RTPExportWrapper,
                                        export_rtp_onnx,
                                        onnx_outputs_to_panoptic,
                                        read_rtp_onnx_metadata)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

# the TorchScript-based exporter (the one that exports autograd functions
# with a symbolic, such as the NMS) warns that it is legacy, the tracer about
# every constant
pytestmark = [
    pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

register_all_modules()
REPO_ROOT = Path(__file__).resolve().parents[2]

# 3 things + 2 stuff, R18 with 16 base channels, 32 FPN channels
TINY_RTP = dict(
    type='RealTimePanoptic',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN',
        in_channels=[16, 32, 64, 128],
        out_channels=32,
        start_level=1,
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='RTPHead',
        num_things=3,
        num_stuff=2,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        loss_mask=dict(type='RTPMaskLoss', max_queries_per_img=8)),
    # a low mask threshold: the untrained semantic probabilities are ~1/5
    test_cfg=dict(max_per_img=10, stuff_area_limit=16, mask_thr=0.1))

# not a multiple of 32: the graph pads to 96 x 128 as the preprocessor does
HEIGHT, WIDTH = 80, 112


def build_tiny_rtp() -> torch.nn.Module:
    """The tiny RTP with PyTorch's default init (no ``init_weights``: its
    focal-loss prior makes every score ~0.01, below ``score_thr``), class
    biases at 0 (probabilities ~0.5: queries survive) and box biases at 2
    strides (boxes wide enough for masks)."""
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(TINY_RTP))
    torch.nn.init.constant_(model.bbox_head.conv_cls.bias, 0.0)
    torch.nn.init.constant_(model.bbox_head.conv_reg.bias, 2.0)
    return model.eval()


def random_image(height=HEIGHT, width=WIDTH, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, 256, (3, height, width), generator=generator).to(torch.uint8)


def predict(model, image, ori_shape=None, scale_factor=(1.0, 1.0)):
    """``model.predict`` through the data preprocessor, as the test loop
    runs it."""
    img_shape = tuple(image.shape[-2:])
    sample = DetDataSample(
        metainfo=dict(
            img_shape=img_shape,
            ori_shape=ori_shape or img_shape,
            scale_factor=scale_factor))
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False)
    with torch.no_grad():
        return model(**data, mode='predict')[0]


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """The tiny model, its ONNX file (80 x 112), the metadata and, on one
    image, the outputs of onnxruntime and of the PyTorch wrapper."""
    model = build_tiny_rtp()
    path = str(tmp_path_factory.mktemp('onnx') / 'rtp.onnx')
    meta = export_rtp_onnx(model, path, (HEIGHT, WIDTH), opset=17)
    image = random_image()
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    onnx_outputs = session.run(None, {'image': image[None].float().numpy()})
    with torch.no_grad():
        torch_outputs = RTPExportWrapper(model)(image[None].float())
    return dict(
        model=model,
        path=path,
        meta=meta,
        image=image,
        session=session,
        onnx_outputs=onnx_outputs,
        torch_outputs=torch_outputs)


def test_onnxruntime_matches_pytorch_on_every_output(exported):
    onnx_outputs = exported['onnx_outputs']
    torch_outputs = exported['torch_outputs']
    assert [o.name for o in exported['session'].get_outputs()
            ] == list(RTP_ONNX_OUTPUTS)
    boxes, scores, labels, mask_probs, sem_logits, num_valid = torch_outputs
    # fixed shapes: N = max_per_img slots, stride-4 maps of the padded input
    assert boxes.shape == (10, 4) and scores.shape == (10, )
    assert labels.shape == (10, ) and labels.dtype == torch.int64
    assert mask_probs.shape == (10, 24, 32)
    assert sem_logits.shape == (5, 24, 32)
    assert num_valid.shape == () and num_valid.dtype == torch.int64
    count = int(num_valid)
    # the mask construction is exercised: queries and non-zero soft masks
    assert 0 < count <= 10
    assert (mask_probs[:count].flatten(1).max(1).values > 0.1).any()
    # padding slots
    assert (labels[count:] == -1).all() and (scores[count:] == 0).all()
    assert (mask_probs[count:] == 0).all() and (boxes[count:] == 0).all()
    assert (labels[:count] >= 0).all() and (labels[:count] < 3).all()
    assert (scores[:count].diff() <= 0).all()  # by decreasing score
    for name, ours, theirs in zip(RTP_ONNX_OUTPUTS, onnx_outputs,
                                  torch_outputs):
        assert ours.shape == tuple(theirs.shape), name
        if theirs.dtype == torch.int64:
            np.testing.assert_array_equal(ours, theirs.numpy(), err_msg=name)
        else:
            np.testing.assert_allclose(
                ours, theirs.numpy(), atol=1e-4, rtol=0, err_msg=name)


def test_panoptic_from_onnx_outputs_equals_model_predict(exported):
    model, image = exported['model'], exported['image']
    postprocess = exported['meta']['postprocess']
    reference = predict(model, image)
    ref_pan = reference.pred_panoptic_seg.sem_seg
    # the map has thing segments, stuff and void: fusion is exercised
    ids = torch.unique(ref_pan)
    assert (ids >= INSTANCE_OFFSET).any() and (ids == 5).any()
    assert ((ids % INSTANCE_OFFSET >= 3) & (ids < 5)).any()
    for outputs in (exported['onnx_outputs'], exported['torch_outputs']):
        result = onnx_outputs_to_panoptic(outputs, **postprocess)
        assert torch.equal(result['pan_results'].sem_seg, ref_pan)
        instances = result['ins_results']
        expected = reference.pred_instances
        assert torch.equal(instances.labels, expected.labels)
        torch.testing.assert_close(
            instances.scores, expected.scores, atol=1e-6, rtol=0)
        torch.testing.assert_close(
            instances.bboxes, expected.bboxes, atol=1e-4, rtol=0)
        assert torch.equal(instances.masks.to_dense(), expected.masks)
    # the same outputs mapped back to an original image half the size, as
    # predict does with ori_shape / scale_factor
    small = predict(
        model, image, ori_shape=(40, 56), scale_factor=(2.0, 2.0))
    result = onnx_outputs_to_panoptic(
        exported['onnx_outputs'], **postprocess, out_shape=(40, 56))
    assert torch.equal(result['pan_results'].sem_seg,
                       small.pred_panoptic_seg.sem_seg)
    torch.testing.assert_close(
        result['ins_results'].bboxes,
        small.pred_instances.bboxes,
        atol=1e-4,
        rtol=0)
    # dict input by output name
    named = dict(zip(RTP_ONNX_OUTPUTS, exported['onnx_outputs']))
    assert torch.equal(
        onnx_outputs_to_panoptic(named, **postprocess)
        ['pan_results'].sem_seg, ref_pan)


def test_wrapper_on_preprocessed_input_equals_raw_input(exported):
    model, image = exported['model'], exported['image']
    wrapper = RTPExportWrapper(model, preprocess=False,
                               img_shape=(HEIGHT, WIDTH))
    sample = DetDataSample(metainfo=dict(img_shape=(HEIGHT, WIDTH)))
    inputs = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False)['inputs']
    assert inputs.shape == (1, 3, 96, 128)
    with torch.no_grad():
        outputs = wrapper(inputs)
    for name, ours, theirs in zip(RTP_ONNX_OUTPUTS, outputs,
                                  exported['torch_outputs']):
        torch.testing.assert_close(
            ours, theirs, atol=1e-5, rtol=0, msg=name)


def test_metadata_round_trip(exported):
    meta = read_rtp_onnx_metadata(exported['path'])
    assert meta['outputs'] == list(RTP_ONNX_OUTPUTS)
    assert meta['input']['shape'] == [1, 3, HEIGHT, WIDTH]
    assert meta['input']['channel_conversion'] is True
    assert meta['input']['mean'] == pytest.approx([123.675, 116.28, 103.53])
    post = meta['postprocess']
    assert (post['num_things'], post['num_stuff'], post['stride']) == (3, 2,
                                                                       4)
    assert post['img_shape'] == [HEIGHT, WIDTH]
    # the model's test_cfg over the defaults
    assert post['test_cfg']['max_per_img'] == 10
    assert post['test_cfg']['mask_thr'] == 0.1
    assert post['test_cfg']['nms'] == dict(type='nms', iou_threshold=0.6)
    graph_ops = {node.op_type for node in onnx.load(
        exported['path']).graph.node}
    assert {'NonMaxSuppression', 'TopK', 'GridSample'} <= graph_ops


def test_export_errors(tmp_path):
    model = build_tiny_rtp()
    with pytest.raises(ValueError, match='GridSample'):
        export_rtp_onnx(model, str(tmp_path / 'a.onnx'), (64, 64), opset=15)
    with pytest.raises(ValueError, match='iou_threshold'):
        RTPExportWrapper(model, test_cfg=dict(nms=dict(type='soft_nms')))
    with pytest.raises(KeyError, match='unknown RTP test_cfg'):
        RTPExportWrapper(model, test_cfg=dict(mask_threshold=0.3))
    with pytest.raises(TypeError, match='RealTimePanoptic'):
        RTPExportWrapper(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match='one image'):
        RTPExportWrapper(model)(torch.zeros(2, 3, 64, 64))
    plain = str(tmp_path / 'plain.onnx')
    torch.onnx.export(
        torch.nn.Conv2d(3, 3, 1), (torch.zeros(1, 3, 4, 4), ),
        plain,
        dynamo=False)
    with pytest.raises(KeyError, match='no .*metadata'):
        read_rtp_onnx_metadata(plain)


def _load_cli():
    path = REPO_ROOT / 'tools' / 'deployment' / 'pytorch2onnx.py'
    spec = importlib.util.spec_from_file_location('tool_pytorch2onnx',
                                                  str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_exports_and_verifies(tmp_path, capsys):
    cli = _load_cli()
    config = tmp_path / 'rtp_tiny.py'
    config.write_text(f"default_scope = 'mmpanoptic_plus'\n"
                      f'model = {TINY_RTP!r}\n')
    checkpoint = tmp_path / 'rtp_tiny.pth'
    model = build_tiny_rtp()
    torch.save(dict(state_dict=model.state_dict()), str(checkpoint))

    out = tmp_path / 'cli.onnx'
    assert cli.main([
        str(config),
        str(checkpoint), '--out',
        str(out), '--shape', '64', '96', '--verify', '--cfg-options',
        'model.test_cfg.max_per_img=5'
    ]) == 0
    printed = capsys.readouterr().out
    assert 'verification passed' in printed
    assert 'max abs difference mask_probs' in printed
    meta = read_rtp_onnx_metadata(str(out))
    assert meta['postprocess']['test_cfg']['max_per_img'] == 5
    # the checkpoint's weights were exported: same outputs as the model
    image = random_image(64, 96, seed=3)
    session = onnxruntime.InferenceSession(
        str(out), providers=['CPUExecutionProvider'])
    onnx_outputs = session.run(None, {'image': image[None].float().numpy()})
    with torch.no_grad():
        torch_outputs = RTPExportWrapper(
            model, test_cfg=dict(max_per_img=5))(image[None].float())
    assert int(torch_outputs[-1]) > 0
    for ours, theirs in zip(onnx_outputs, torch_outputs):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-4, rtol=0)

    # random weights: CHECKPOINT "none"
    assert cli.main([
        str(config), 'none', '--out',
        str(tmp_path / 'random.onnx'), '--shape', '32', '32'
    ]) == 0
    assert read_rtp_onnx_metadata(str(tmp_path / 'random.onnx'))[
        'input']['shape'] == [1, 3, 32, 32]


def test_cli_benchmark_times_both_paths(tmp_path, capsys):
    cli = _load_cli()
    config = tmp_path / 'rtp_tiny.py'
    config.write_text(f"default_scope = 'mmpanoptic_plus'\n"
                      f'model = {TINY_RTP!r}\n')
    assert cli.main([
        str(config), 'none', '--out',
        str(tmp_path / 'bench.onnx'), '--shape', '64', '96', '--benchmark',
        '2', '--threads', '1'
    ]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    record = json.loads(lines[-1])
    assert record['shape'] == [64, 96]
    assert record['repeat'] == 2 and record['threads'] == 1
    assert record['onnxruntime_s'] > 0 and record['pytorch_eager_s'] > 0
    assert record['ratio'] == pytest.approx(
        record['onnxruntime_s'] / record['pytorch_eager_s'])
    assert 'ms/img' in lines[-2]
    with pytest.raises(ValueError, match='N >= 1'):
        cli.benchmark(str(tmp_path / 'bench.onnx'), None, None, None, 0)
