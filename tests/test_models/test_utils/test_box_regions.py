# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Segment boxes, box expansion and pixels in boxes (CIAE's remote
filtering) against loops and hand-computed values."""
import torch

from mmpanoptic_plus.models.utils import (expand_boxes, pixels_in_boxes,
                                          segment_boxes)


def test_segment_boxes_against_loop():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(-1, 4, (2, 7, 9), generator=gen)
    ids[1][ids[1] == 2] = 0  # segment 2 empty in image 1
    boxes = segment_boxes(ids, 5)
    assert boxes.shape == (2, 5, 4)
    for b in range(2):
        for s in range(5):
            ys, xs = torch.nonzero(ids[b] == s, as_tuple=True)
            if len(ys) == 0:
                assert boxes[b, s].tolist() == [0, 0, 0, 0]
            else:
                assert boxes[b, s].tolist() == [
                    xs.min().item(), ys.min().item(),
                    xs.max().item() + 1, ys.max().item() + 1
                ]


def test_expand_boxes_by_hand():
    boxes = torch.tensor([[10., 20., 30., 60.]])
    assert expand_boxes(boxes, 1.5).tolist() == [[5., 10., 35., 70.]]
    assert expand_boxes(boxes, 1.0).tolist() == boxes.tolist()
    assert expand_boxes(boxes[None], 2.0).shape == (1, 1, 4)


def test_pixels_in_boxes_against_loop_and_band_offset():
    boxes = torch.tensor([[[1.0, 2.0, 4.0, 5.0], [0.0, 0.0, 0.4, 9.0]]])
    inside = pixels_in_boxes(boxes, 6, 7)
    assert inside.shape == (1, 2, 6, 7)
    for k in range(2):
        x1, y1, x2, y2 = boxes[0, k].tolist()
        for y in range(6):
            for x in range(7):
                expected = x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2
                assert bool(inside[0, k, y, x]) == expected
    # a band of rows 3..5 of the same image
    band = pixels_in_boxes(boxes, 3, 7, top=3)
    assert torch.equal(band, inside[..., 3:, :])
