# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""IoU / smoothed GIoU between query boxes and dense boxes: hand values and
a naive pairwise loop (empty and degenerate boxes included)."""
import pytest
import torch

from mmpanoptic_plus.models.utils import box_iou_map


def naive_iou(a, b, iou_type):
    inter = max(0., min(a[2], b[2]) - max(a[0], b[0])) * max(
        0., min(a[3], b[3]) - max(a[1], b[1]))
    area_a = max(0., a[2] - a[0]) * max(0., a[3] - a[1])
    area_b = max(0., b[2] - b[0]) * max(0., b[3] - b[1])
    union = area_a + area_b - inter
    if iou_type == 'iou':
        return inter / max(union, 1e-6)
    enclose = max(0., max(a[2], b[2]) - min(a[0], b[0])) * max(
        0., max(a[3], b[3]) - min(a[1], b[1]))
    return (inter + 1) / (union + 1) - (enclose - union) / (enclose + 1e-6)


def test_hand_values():
    query = torch.tensor([[0., 0., 4., 4.]])
    dense = torch.tensor([[2., 2., 6., 6.], [10., 0., 12., 4.],
                          [0., 0., 4., 4.]]).T
    # overlaps 2x2 = 4 of a 16 + 16 - 4 = 28 union; disjoint; identical
    torch.testing.assert_close(
        box_iou_map(query, dense, 'iou'), torch.tensor([[4 / 28, 0., 1.]]))
    # enclosing boxes 6x6 = 36 and 12x4 = 48
    torch.testing.assert_close(
        box_iou_map(query, dense, 'giou'),
        torch.tensor([[5 / 29 - 8 / 36, 1 / 25 - 24 / 48, 1.0]]))
    with pytest.raises(ValueError, match='iou_type'):
        box_iou_map(query, dense, 'diou')


@pytest.mark.parametrize('iou_type', ['iou', 'giou'])
def test_matches_naive_loop(iou_type):
    gen = torch.Generator().manual_seed(2)
    xy = torch.rand(6, 2, generator=gen) * 40
    query = torch.cat([xy, xy + torch.rand(6, 2, generator=gen) * 25], 1)
    xy = torch.rand(30, 2, generator=gen) * 40
    dense = torch.cat([xy, xy + torch.rand(30, 2, generator=gen) * 25], 1)
    dense[3] = torch.tensor([5., 5., 5., 9.])  # empty (zero width)
    dense[4] = torch.tensor([8., 8., 2., 2.])  # inverted: empty
    got = box_iou_map(query.double(), dense.double().T, iou_type)
    expected = torch.tensor(
        [[naive_iou(q, d, iou_type) for d in dense.double().tolist()]
         for q in query.double().tolist()],
        dtype=torch.float64)
    torch.testing.assert_close(got, expected)
