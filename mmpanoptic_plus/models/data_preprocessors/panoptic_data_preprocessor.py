# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, Optional, Sequence

import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmengine.structures import PixelData

from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class PanopticDataPreprocessor(DetDataPreprocessor):
    """mmdet's :class:`DetDataPreprocessor` that also pads method-specific
    dense targets.

    ``DetDataPreprocessor`` pads the images to the batch shape (bottom and
    right) and, with ``pad_seg=True``, ``gt_sem_seg``; dense targets packed
    by ``PackPanopticInputs(dense_target_keys=...)`` as
    ``data_sample.<key> = PixelData(data=(C, H, W))`` are left at their
    image size. This class pads each configured field the same way as the
    image (bottom/right, to ``batch_input_shape``) with its own value, so
    that a head can stack them into a (B, C, H_pad, W_pad) tensor aligned
    with the network input.

    Args:
        dense_target_pad_values (dict, optional): ``{field name: pad
            value}``, e.g. :data:`~mmpanoptic_plus.datasets.transforms.
            panoptic_deeplab_targets.PANOPTIC_DEEPLAB_TARGET_PAD_VALUES`.
            Fields missing from a data sample (e.g. at test time) are
            skipped. Defaults to None (nothing extra is padded).
        *args, **kwargs: Arguments of :class:`DetDataPreprocessor`.
    """

    def __init__(self,
                 *args,
                 dense_target_pad_values: Optional[Dict[str, float]] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dense_target_pad_values = dict(dense_target_pad_values or {})

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalize and pad the images, then pad the dense targets.

        Args:
            data (dict): Data sampled from the dataloader.
            training (bool): Whether training-time augmentation is on.

        Returns:
            dict: ``inputs`` (B, C, H_pad, W_pad) and ``data_samples`` with
            each configured dense target padded to (C, H_pad, W_pad).
        """
        data = super().forward(data=data, training=training)
        if data['data_samples'] is not None:
            self.pad_dense_targets(data['data_samples'])
        return data

    def pad_dense_targets(self,
                          batch_data_samples: Sequence[DetDataSample]) -> None:
        """Pad every configured dense target to ``batch_input_shape``.

        Args:
            batch_data_samples (Sequence[DetDataSample]): Samples carrying
                ``batch_input_shape`` in their metainfo; modified in place.
        """
        for data_sample in batch_data_samples:
            pad_h, pad_w = data_sample.batch_input_shape
            for key, pad_value in self.dense_target_pad_values.items():
                if key not in data_sample:
                    continue
                target = data_sample.get(key).data
                if target.dim() != 3:
                    raise ValueError(
                        f'dense target "{key}" must be PixelData with data of '
                        f'shape (C, H, W), got {tuple(target.shape)}')
                height, width = target.shape[-2:]
                if height > pad_h or width > pad_w:
                    raise ValueError(
                        f'dense target "{key}" of size {(height, width)} is '
                        f'larger than the padded batch {(pad_h, pad_w)}: '
                        'it no longer matches its image')
                padded = F.pad(
                    target, (0, pad_w - width, 0, pad_h - height),
                    mode='constant',
                    value=float(pad_value))
                setattr(data_sample, key, PixelData(data=padded))
