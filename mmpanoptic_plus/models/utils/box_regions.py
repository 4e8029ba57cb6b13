# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Boxes of segments and the pixels inside (expanded) boxes: the geometry of
CIAE's remote instance filtering (Gao et al., "Learning Category- and
Instance-Aware Pixel Embedding for Fast Panoptic Segmentation", Sec. IV-B),
shared by its loss (ground-truth boxes of the segments, expanded) and its
inference (predicted boxes)."""
import torch
from torch import Tensor


def segment_boxes(segment_ids: Tensor, num_segments: int) -> Tensor:
    """Tight x1y1x2y2 box of every segment of a segment-id map (``x2 = max
    x + 1``, the convention of mask boxes), zeros for a segment without
    pixels; ids outside ``[0, num_segments)`` are ignored. One
    ``scatter_reduce`` per coordinate, no loop over segments.

    Args:
        segment_ids (Tensor): (B, H, W) integer ids.
        num_segments (int): S.

    Returns:
        Tensor: (B, S, 4) float boxes in pixels.
    """
    batch, height, width = segment_ids.shape
    device = segment_ids.device
    ids = segment_ids.flatten(1).long()
    valid = (ids >= 0) & (ids < num_segments)
    num_bins = batch * num_segments
    offsets = torch.arange(batch, device=device)[:, None] * num_segments
    # one bin per (image, segment), a last one for ignored pixels
    bins = torch.where(valid, ids + offsets,
                       torch.full_like(ids, num_bins)).flatten()
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing='ij')
    coords = (xs.flatten().repeat(batch), ys.flatten().repeat(batch))
    lows = [
        torch.full((num_bins + 1, ), size, device=device).scatter_reduce(
            0, bins, c, 'amin') for c, size in zip(coords, (width, height))
    ]
    highs = [
        torch.full((num_bins + 1, ), -1, device=device).scatter_reduce(
            0, bins, c, 'amax') for c in coords
    ]
    boxes = torch.stack((lows[0], lows[1], highs[0] + 1, highs[1] + 1), 1)
    empty = highs[0] < 0
    boxes = torch.where(empty[:, None], torch.zeros_like(boxes), boxes)
    return boxes[:num_bins].view(batch, num_segments, 4).float()


def expand_boxes(boxes: Tensor, factor: float) -> Tensor:
    """(..., 4) x1y1x2y2 boxes scaled by ``factor`` about their centres
    (width and height times ``factor``; CIAE expands ground-truth boxes
    1.5x in training, Sec. IV-B / Table VI)."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    half = (boxes[..., 2:] - boxes[..., :2]) / 2 * factor
    return torch.cat((centre - half, centre + half), dim=-1)


def pixels_in_boxes(boxes: Tensor,
                    height: int,
                    width: int,
                    top: int = 0) -> Tensor:
    """(..., K, H, W) bool: the centre ``(x + 0.5, y + 0.5)`` of pixel ``(x,
    y)`` lies in box ``k`` (borders included).

    Args:
        boxes (Tensor): (..., K, 4) x1y1x2y2 in pixels.
        height (int): H, rows of the region.
        width (int): W.
        top (int): Row of the region's first row (a band of a larger
            image). Defaults to 0.
    """
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5
    ys = torch.arange(
        top, top + height, device=boxes.device, dtype=boxes.dtype) + 0.5
    in_x = (xs >= boxes[..., 0:1]) & (xs <= boxes[..., 2:3])  # (..., K, W)
    in_y = (ys >= boxes[..., 1:2]) & (ys <= boxes[..., 3:4])  # (..., K, H)
    return in_y[..., :, None] & in_x[..., None, :]
