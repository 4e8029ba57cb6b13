# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The exportable NMS (models/postprocess/exportable_nms.py) on a hand-made
case, in PyTorch (mmcv's kernel) and as ONNX NonMaxSuppression in
onnxruntime."""
import onnxruntime
import pytest
import torch

from mmpanoptic_plus.models.postprocess.exportable_nms import onnx_nms

# the TorchScript-based exporter (the one that exports autograd functions
# with a symbolic) warns that it is legacy
pytestmark = [
    pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]


class _NMSModule(torch.nn.Module):

    def forward(self, boxes, scores):
        return onnx_nms(boxes, scores, iou_threshold=0.5, max_output=3)


def test_onnx_nms_hand_case_in_pytorch_and_onnxruntime(tmp_path):
    boxes = torch.tensor([
        [0., 0., 10., 10.],  # kept (best)
        [0., 0., 10., 12.],  # IoU 100 / 120 with box 0: suppressed
        [20., 20., 30., 30.],  # kept
        [20., 20., 30., 31.],  # score 0: never a candidate
        [0., 5., 10., 15.],  # IoU 50 / 150 with box 0: kept
        [40., 40., 50., 50.],  # kept, but max_output = 3
    ])
    scores = torch.tensor([0.9, 0.95 * 0.9, 0.7, 0.0, 0.6, 0.5])
    expected = [0, 2, 4]
    assert onnx_nms(boxes, scores, 0.5, max_output=3).tolist() == expected
    assert onnx_nms(boxes, scores, 0.5).tolist() == [0, 2, 4, 5]
    # strictly above the threshold: IoU 100 / 120 = 0.8333 is kept at 0.84
    assert onnx_nms(boxes, scores, 0.84).tolist() == [0, 1, 2, 4, 5]
    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(
        _NMSModule(), (boxes, scores),
        path,
        dynamo=False,
        opset_version=17,
        input_names=['boxes', 'scores'])
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    (kept, ) = session.run(None, dict(boxes=boxes.numpy(),
                                      scores=scores.numpy()))
    assert kept.tolist() == expected
