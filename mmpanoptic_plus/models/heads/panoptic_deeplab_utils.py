# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Helpers shared by the Panoptic-DeepLab heads and detector."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmdet.utils import ConfigType
from mmseg.models.utils import resize
from torch import Tensor

from mmpanoptic_plus.registry import MODELS


def build_optional_decoder(
        decoder: Optional[ConfigType],
        in_channels: Optional[int]) -> Tuple[Optional[nn.Module], int]:
    """Build a head's decoder, or none for a prediction-only head.

    Args:
        decoder (dict, optional): Decoder config (with ``decoder_channels``
            on the built module), or None.
        in_channels (int, optional): Channels fed to the head convs when
            ``decoder`` is None; must be None otherwise.

    Returns:
        tuple[nn.Module | None, int]: The decoder (or None) and the
        channels of the features the head convs take.
    """
    if decoder is None:
        if in_channels is None:
            raise ValueError('a head without decoder needs in_channels (the '
                             'channels of the decoded features it takes)')
        return None, in_channels
    if in_channels is not None:
        raise ValueError('give either a decoder or in_channels, not both: '
                         'the decoder sets the head input channels')
    decoder = MODELS.build(decoder)
    return decoder, decoder.decoder_channels


def stack_dense_targets(batch_data_samples: SampleList, key: str,
                        attr: str = 'data') -> Tensor:
    """Stack one padded dense field of every data sample.

    Args:
        batch_data_samples (list[DetDataSample]): Samples whose ``key`` is a
            ``PixelData`` padded to the batch shape (see
            ``PanopticDataPreprocessor``).
        key (str): Field name, e.g. ``'gt_center_heatmap'``.
        attr (str): Attribute of the PixelData. Defaults to ``'data'``.

    Returns:
        Tensor: (B, C, H, W).
    """
    fields = []
    for data_sample in batch_data_samples:
        if key not in data_sample:
            raise KeyError(
                f'data sample has no "{key}": pack it with '
                f'PackPanopticInputs(dense_target_keys=[..., "{key}"]) after '
                'the transform that generates it')
        fields.append(getattr(data_sample.get(key), attr))
    shapes = {tuple(field.shape) for field in fields}
    if len(shapes) != 1:
        raise ValueError(
            f'"{key}" has different shapes {sorted(shapes)} in one batch: '
            'pad it in the data preprocessor (dense_target_pad_values)')
    return torch.stack(fields)


def resize_center_and_offsets(center: Tensor,
                              offsets: Tensor,
                              size: Tuple[int, int],
                              align_corners: bool = False
                              ) -> Tuple[Tensor, Tensor]:
    """Bilinearly resize a center heatmap and offsets to ``size``.

    The offsets are displacements in pixels of the map they live in, so
    each axis is also multiplied by its resize ratio (dy by ``H' / H``, dx by
    ``W' / W``); x4 upsampling of stride-4 outputs scales them by 4, as the
    reference does.

    Args:
        center (Tensor): (B, 1, H, W) heatmap.
        offsets (Tensor): (B, 2, H, W) (dy, dx) offsets.
        size (tuple[int, int]): Output (H', W').
        align_corners (bool): Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: (B, 1, H', W') heatmap and (B, 2, H', W')
        offsets.
    """
    height, width = offsets.shape[-2:]
    if (height, width) == tuple(size):
        return center, offsets
    center = resize(
        center, size=size, mode='bilinear', align_corners=align_corners)
    offsets = resize(
        offsets, size=size, mode='bilinear', align_corners=align_corners)
    ratio = offsets.new_tensor([size[0] / height,
                                size[1] / width]).view(1, 2, 1, 1)
    return center, offsets * ratio


def crop_and_resize(maps: Sequence[Tensor], img_shape: Tuple[int, int],
                    out_shape: Tuple[int, int],
                    align_corners: bool = False) -> Tuple[Tensor, ...]:
    """Crop the bottom/right padding off (1, C, H_pad, W_pad) maps and
    resize them bilinearly to ``out_shape`` (the last map must be the
    offsets, which are rescaled, see :func:`resize_center_and_offsets`).

    Args:
        maps (Sequence[Tensor]): ``(sem_logits, center, offsets)``, each
            (1, C, H_pad, W_pad).
        img_shape (tuple[int, int]): Unpadded input size.
        out_shape (tuple[int, int]): Output size (e.g. ``ori_shape``).
        align_corners (bool): Defaults to False.

    Returns:
        tuple[Tensor, ...]: The maps at ``out_shape``.
    """
    sem_logits, center, offsets = [
        m[..., :img_shape[0], :img_shape[1]] for m in maps
    ]
    if tuple(out_shape) != tuple(img_shape):
        sem_logits = resize(
            sem_logits,
            size=out_shape,
            mode='bilinear',
            align_corners=align_corners)
        center, offsets = resize_center_and_offsets(center, offsets,
                                                    out_shape, align_corners)
    return sem_logits, center, offsets
