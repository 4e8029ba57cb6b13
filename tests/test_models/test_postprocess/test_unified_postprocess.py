# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.heads import UnifiedDynamicPotentialHead
from mmpanoptic_plus.models.layers.paste_masks import paste_masks_in_grid
from mmpanoptic_plus.models.postprocess import \
    unified_argmax_at_image_resolution
from mmpanoptic_plus.models.utils import resample_to_output


@pytest.mark.parametrize('top,bottom', [(0, 24), (0, 5), (7, 19), (23, 24)])
def test_resample_rows_equal_interpolate_at_input_size(top, bottom):
    torch.manual_seed(0)
    grid = torch.rand(3, 6, 5)
    full = F.interpolate(
        grid[None], scale_factor=4, mode='bilinear',
        align_corners=False)[0, :, :23, :18]  # image 23x18 on 6x5 cells
    rows = resample_to_output(grid, (23, 18), (23, 18), 4,
                              (top, min(bottom, 23)))
    torch.testing.assert_close(rows, full[:, top:min(bottom, 23)])


def test_resample_to_another_size_by_hand():
    # input 4x4 on 2x2 cells of stride 2, output 2x2: output pixel (y, x)
    # is centred at input pixel (2x + 1, 2y + 1), i.e. at a cell centre
    grid = torch.tensor([[[1., 2.], [3., 4.]]])
    out = resample_to_output(grid, (4, 4), (2, 2), 2, (0, 2))
    torch.testing.assert_close(out, grid)
    # output 1x4: the row centre at input y = 2 is cell row 0.5 (the mean
    # of the rows: 2, 3); columns at x = 0.5, 1.5, 2.5, 3.5 are cell
    # columns -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    out = resample_to_output(grid, (4, 4), (1, 4), 2, (0, 1))
    torch.testing.assert_close(
        out, torch.tensor([[[2., 2.25, 2.75, 3.]]]))


def _head():
    return UnifiedDynamicPotentialHead(1, 1, variant='B', stride=4)


def test_small_box_keeps_its_outline():
    """One thing class, one stuff class, an 8x8 image on 2x2 cells of
    stride 4: V(thing) = 0.6, V(stuff) = 0.2 everywhere; one detection of
    box (0, 0, 2, 2), score 1, a 2x2 mask of ones. ``P`` of the detection
    is 0.6 at the 4 pixels of the box (the mask's texel centres) and 0
    elsewhere, so the argmax marks exactly those; on the grid the box test
    at the cell centre (2, 2) gives the whole first cell, upsampled to
    about 4x4 pixels. At twice the output size the 4x4 pixels of the box
    get 0.6 times the pasted mask (0.75 x 0.75 at its corners: texels
    fade into the zero padding, Mask R-CNN's convention), still above
    0.2."""
    sem = torch.tensor([0.6, 0.2])[:, None, None].expand(2, 2, 2)
    boxes = torch.tensor([[0., 0., 2., 2.]])
    index = unified_argmax_at_image_resolution(
        sem, None, boxes, torch.ones(1), torch.zeros(1, dtype=torch.long),
        torch.ones(1, 2, 2), _head(), 4, (8, 8), (8, 8))
    expected = torch.ones(8, 8, dtype=torch.long)
    expected[:2, :2] = 0
    torch.testing.assert_close(index, expected)
    # the same at twice the output size: the box covers 4x4 pixels
    index = unified_argmax_at_image_resolution(
        sem, None, boxes, torch.ones(1), torch.zeros(1, dtype=torch.long),
        torch.ones(1, 2, 2), _head(), 4, (8, 8), (16, 16))
    expected = torch.ones(16, 16, dtype=torch.long)
    expected[:4, :4] = 0
    torch.testing.assert_close(index, expected)


def _random_case(num_dets=5, with_masks=True):
    gen = torch.Generator().manual_seed(3)
    head = UnifiedDynamicPotentialHead(3, 2, variant='B', stride=4)
    sem = torch.rand(5, 6, 7, generator=gen).softmax(0)
    xy = torch.rand(num_dets, 2, generator=gen) * torch.tensor([20., 16.])
    wh = torch.rand(num_dets, 2, generator=gen) * 12 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(num_dets, generator=gen)
    labels = torch.randint(0, 3, (num_dets, ), generator=gen)
    masks = torch.rand(num_dets, 7, 7, generator=gen) if with_masks else None
    term = torch.randn(num_dets + 2, 6, 7, generator=gen) * 0.1
    return head, sem, boxes, scores, labels, masks, term


@pytest.mark.parametrize('with_masks', [True, False])
@pytest.mark.parametrize('output_shape', [(22, 27), (44, 54), (30, 20)])
def test_banded_argmax_equals_a_naive_full_image_argmax(
        with_masks, output_shape):
    head, sem, boxes, scores, labels, masks, term = _random_case(
        with_masks=with_masks)
    input_shape = (22, 27)  # 6x7 cells of stride 4
    out_h, out_w = output_shape
    scale = torch.tensor([out_w / 27, out_h / 22] * 2)
    # naive: the whole image at once, no band and no box selection
    sem_out = resample_to_output(sem, input_shape, output_shape, 4)
    pasted = None
    if masks is not None:
        pasted = paste_masks_in_grid(masks, boxes * scale, output_shape)
    logits = head(sem_out, boxes * scale, scores, labels, pasted, stride=1)
    logits = logits + resample_to_output(term, input_shape, output_shape, 4)
    expected = logits.argmax(0)
    for band_elements in (10**9, 7 * out_w * 3, 1):
        index = unified_argmax_at_image_resolution(
            sem, term, boxes, scores, labels, masks, head, 4, input_shape,
            output_shape, band_elements=band_elements)
        torch.testing.assert_close(index, expected)


def test_no_detection_gives_the_stuff_argmax():
    head, sem, _, _, _, _, _ = _random_case()
    index = unified_argmax_at_image_resolution(
        sem, None, torch.zeros(0, 4), torch.zeros(0),
        torch.zeros(0, dtype=torch.long), torch.zeros(0, 7, 7), head, 4,
        (22, 27), (22, 27))
    stuff = resample_to_output(sem[3:], (22, 27), (22, 27), 4)
    torch.testing.assert_close(index, stuff.argmax(0))
