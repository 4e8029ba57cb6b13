# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Unified's argmax inference at image resolution (Li et al., "Unifying
Training and Inference for Panoptic Segmentation", CVPR 2020, Sec. 3.4).

Eq. 2 defines the masks ``M`` at image resolution ("resized to their actual
dimensions and pasted ... in image"), while ``V`` (Sec. 3.2) and the
affinity features ``Q`` (Sec. 3.4.2) live on a grid of stride d = 4.
Training evaluates everything on the grid (the loss is read at cell
centres). At inference these functions evaluate ``P`` of Eq. 4 at every
output pixel instead of upsampling the grid's ``P``:

- ``Psi`` (Eq. 1-2) at the pixel: ``V`` resampled bilinearly, the box test
  on the pixel centre, the mask pasted at image resolution;
- the affinity term ``phi0(Q) (phi1(Q)^T Psi)`` (computed on the grid from
  the grid's ``Psi``, as in training) resampled bilinearly;
- the argmax over the ``D + N_st`` channels, nothing else.

Small things (a few cells wide) keep their mask's outline instead of a
4x-upsampled blur. Rows are processed in bands so that memory stays
``O(band x W x K)``, and each band pastes only the detections whose boxes
reach it.
"""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from mmpanoptic_plus.models.layers.paste_masks import paste_masks_in_grid
from mmpanoptic_plus.models.utils import resample_to_output

#: Floats of one band's (K, rows, W) logits: 16 M (64 MB in fp32).
BAND_ELEMENTS = 2**24


def unified_argmax_at_image_resolution(
        sem_probs: Tensor,
        affinity_term: Optional[Tensor],
        boxes: Tensor,
        scores: Tensor,
        labels: Tensor,
        mask_probs: Optional[Tensor],
        potential: Callable[..., Tensor],
        grid_stride: int,
        input_shape: Tuple[int, int],
        output_shape: Tuple[int, int],
        band_elements: int = BAND_ELEMENTS) -> Tensor:
    """Channel of the argmax of ``P`` (Eq. 4) at every output pixel.

    Args:
        sem_probs (Tensor): (N_th + N_st, h, w) ``V`` on the image's cells.
        affinity_term (Tensor, optional): (D + N_st, h, w) ``phi0(Q)
            (phi1(Q)^T Psi)`` on the same cells; None without the affinity
            head (``P = Psi``, models A and C).
        boxes (Tensor): (D, 4) detection boxes x1y1x2y2 in input pixels.
        scores (Tensor): (D, ) scores ``s``.
        labels (Tensor): (D, ) thing classes.
        mask_probs (Tensor, optional): (D, m_h, m_w) RoI mask
            probabilities; None for a mask-free detector (Eq. 1).
        potential (callable): The dynamic potential head
            (:class:`UnifiedDynamicPotentialHead`), called with
            ``stride=1``.
        grid_stride (int): Input pixels per cell of ``sem_probs``.
        input_shape (tuple[int, int]): (H_in, W_in), the network input's
            image region (``img_shape``).
        output_shape (tuple[int, int]): (H_out, W_out), e.g. ``ori_shape``.
        band_elements (int): Floats of one band's logits.

    Returns:
        Tensor: (H_out, W_out) int64 channel index: ``k < D`` detection
        ``k``, ``D + j`` stuff class ``j``.
    """
    num_dets = boxes.shape[0]
    num_channels = num_dets + potential.num_stuff_classes
    out_h, out_w = output_shape
    scale_x = out_w / input_shape[1]
    scale_y = out_h / input_shape[0]
    boxes = boxes.to(sem_probs) * boxes.new_tensor(
        [scale_x, scale_y, scale_x, scale_y]).to(sem_probs)
    stuff_channels = torch.arange(
        num_dets, num_channels, device=sem_probs.device)
    rows = max(1, band_elements // max(num_channels * out_w, 1))
    index = torch.empty((out_h, out_w),
                        dtype=torch.long,
                        device=sem_probs.device)
    # a loop over bands of rows (a handful per image), not over pixels
    for top in range(0, out_h, rows):
        bottom = min(top + rows, out_h)
        # V and the affinity term sampled at the band's pixel centres (one
        # bilinear map from the grid to the output, as for every other
        # method's stride-4 maps)
        probs = resample_to_output(sem_probs, input_shape, output_shape,
                                   grid_stride, (top, bottom))
        if affinity_term is not None:
            logits = resample_to_output(
                affinity_term.to(probs), input_shape, output_shape,
                grid_stride, (top, bottom))
        else:
            logits = probs.new_zeros((num_channels, bottom - top, out_w))
        # only boxes that reach the band add a non-zero Psi there
        hit = (boxes[:, 3] > top) & (boxes[:, 1] < bottom)
        band_boxes = boxes[hit] - boxes.new_tensor([0, top, 0, top])
        masks = None
        if mask_probs is not None:
            masks = paste_masks_in_grid(mask_probs[hit], band_boxes,
                                        (bottom - top, out_w))
        psi = potential(
            probs, band_boxes, scores[hit], labels[hit], masks, stride=1)
        channels = torch.cat([hit.nonzero()[:, 0], stuff_channels])
        logits.index_add_(0, channels, psi.to(logits))
        index[top:bottom] = logits.argmax(dim=0)
    return index
