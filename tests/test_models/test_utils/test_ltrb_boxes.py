# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ltrb decoding: hand values, clipping, gradients, and the ONNX-export
branch giving the eager values."""
import pytest
import torch

from mmpanoptic_plus.models.utils import decode_ltrb_boxes


def test_hand_values_and_batch_dims():
    points = torch.tensor([[10., 20.], [4., 4.]])
    ltrb = torch.tensor([[1., 2., 3., 4.], [5., 0., 0.5, 8.]])
    boxes = decode_ltrb_boxes(points, ltrb)
    assert boxes.tolist() == [[9., 18., 13., 24.], [-1., 4., 4.5, 12.]]
    batched = decode_ltrb_boxes(points[None].expand(3, 2, 2),
                                ltrb[None].expand(3, 2, 4))
    assert batched.shape == (3, 2, 4)
    assert torch.equal(batched[2], boxes)


def test_clipping_to_height_width():
    points = torch.tensor([[10., 20.], [4., 4.]])
    ltrb = torch.tensor([[1., 2., 30., 4.], [5., 10., 0.5, 8.]])
    # (H, W) = (22, 12): x in [0, 12], y in [0, 22]
    boxes = decode_ltrb_boxes(points, ltrb, (22, 12))
    assert boxes.tolist() == [[9., 18., 12., 22.], [0., 0., 4.5, 12.]]


def test_gradients_reach_points_and_distances():
    points = torch.tensor([[10., 20.]], requires_grad=True)
    ltrb = torch.tensor([[1., 2., 3., 4.]], requires_grad=True)
    weights = torch.tensor([[1., 2., 3., 4.]])
    (decode_ltrb_boxes(points, ltrb) * weights).sum().backward()
    # x1 = x - l, y1 = y - t, x2 = x + r, y2 = y + b
    assert ltrb.grad.tolist() == [[-1., -2., 3., 4.]]
    assert points.grad.tolist() == [[1. + 3., 2. + 4.]]


def test_export_branch_equals_eager(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(50, 2, generator=gen) * 64
    ltrb = torch.rand(50, 4, generator=gen) * 40
    eager = decode_ltrb_boxes(points, ltrb, (48, 56))
    assert (eager[:, 0::2] <= 56).all() and (eager[:, 1::2] <= 48).all()
    assert (eager >= 0).all()
    # mmdet's own export branch imports the mmdet 2.x mmdet.core.export
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    with pytest.raises(ImportError):
        from mmdet.structures.bbox import distance2bbox
        distance2bbox(points, ltrb, (48, 56))
    assert torch.equal(decode_ltrb_boxes(points, ltrb, (48, 56)), eager)
