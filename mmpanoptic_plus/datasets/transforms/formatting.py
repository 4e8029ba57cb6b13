# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmengine.structures import InstanceData, PixelData

from mmpanoptic_plus.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction', 'seg_map_path',
                     'segments_info')


@TRANSFORMS.register_module()
class PackPanopticInputs(PackDetInputs):
    """mmdet's :class:`PackDetInputs` plus the panoptic ground truth the
    metric needs.

    Besides what :class:`PackDetInputs` packs (``gt_instances``,
    ``ignored_instances`` for crowd, ``gt_sem_seg``), sets
    ``data_sample.gt_panoptic_seg = PixelData(sem_seg=int64 tensor (1, H, W))``
    holding the raw segment ids of the panoptic PNG when ``results`` has
    ``gt_panoptic_seg`` (see :class:`LoadPanopticAnnotations`), and by
    default keeps ``seg_map_path`` and ``segments_info`` in the metainfo.

    Method-specific dense targets (e.g. those of
    ``GeneratePanopticDeepLabTargets``) listed in ``dense_target_keys`` are
    packed as ``data_sample.<key> = PixelData(data=float32 tensor (C, H,
    W))``, or int64 for integer and bool arrays (e.g. ``gt_segment_ids``
    of ``GeneratePanopticSegmentIds``); an (H, W) array gains a leading
    axis. Pad them in the data preprocessor
    (``PanopticDataPreprocessor(dense_target_pad_values=...)``).

    When ``results`` has ``gt_segment_labels`` (and ``gt_segment_is_thing``,
    from ``GeneratePanopticSegmentIds``), they are packed as
    ``data_sample.gt_segments = InstanceData(labels=int64 (S,),
    is_thing=bool (S,))``.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied to the data
            sample's metainfo. Defaults to mmdet's keys plus
            ``'seg_map_path', 'segments_info'``.
        dense_target_keys (Sequence[str]): Keys of ``results`` holding
            (H, W) or (C, H, W) arrays to pack as float PixelData fields of
            the same name. Defaults to () (none).
    """

    def __init__(self,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS,
                 dense_target_keys: Sequence[str] = ()) -> None:
        super().__init__(meta_keys=meta_keys)
        if isinstance(dense_target_keys, str):
            dense_target_keys = (dense_target_keys, )
        self.dense_target_keys = tuple(dense_target_keys)

    @staticmethod
    def _check_panoptic_aligned(results: dict) -> None:
        """Refuse a ``gt_panoptic_seg`` that geometric transforms left
        behind (they update ``gt_seg_map`` but not this key)."""
        panoptic = results['gt_panoptic_seg']
        semantic = results.get('gt_seg_map')
        flip_now = (bool(results.get('flip', False)),
                    results.get('flip_direction'))
        flip_at_load = results.get('gt_panoptic_seg_flip', flip_now)
        if (semantic is not None and semantic.shape != panoptic.shape) or \
                tuple(flip_at_load) != flip_now:
            raise ValueError(
                'gt_panoptic_seg no longer matches the other annotations: a '
                'flip/resize/crop/pad ran after LoadPanopticAnnotations and '
                'those transforms do not update gt_panoptic_seg. Set '
                'with_panoptic_seg=False in LoadPanopticAnnotations of this '
                '(training) pipeline, or load annotations after the '
                'geometric transforms.')

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``inputs`` and a ``DetDataSample``.

        Args:
            results (dict): Result dict from the data pipeline.

        Returns:
            dict: ``inputs`` (torch.Tensor (C, H, W)) and ``data_samples``
            (DetDataSample).
        """
        packed = super().transform(results)
        if results.get('gt_panoptic_seg') is not None:
            self._check_panoptic_aligned(results)
            panoptic = np.asarray(results['gt_panoptic_seg'], dtype=np.int64)
            packed['data_samples'].gt_panoptic_seg = PixelData(
                sem_seg=torch.from_numpy(panoptic[None].copy()))
        for key in self.dense_target_keys:
            if results.get(key) is None:
                raise KeyError(
                    f'PackPanopticInputs: dense target "{key}" is not in the '
                    'results; add the transform that writes it (e.g. '
                    'GeneratePanopticDeepLabTargets) before packing, or drop '
                    'it from dense_target_keys')
            target = np.asarray(results[key])
            # ids stay exact integers; everything else is float32 as before
            dtype = np.int64 if (np.issubdtype(target.dtype, np.integer)
                                 or target.dtype == bool) else np.float32
            target = target.astype(dtype, copy=False)
            if target.ndim == 2:
                target = target[None]
            if target.ndim != 3:
                raise ValueError(
                    f'dense target "{key}" must be (H, W) or (C, H, W), got '
                    f'shape {target.shape}')
            packed['data_samples'].set_field(
                PixelData(data=torch.from_numpy(
                    np.ascontiguousarray(target))), key)
        if results.get('gt_segment_labels') is not None:
            packed['data_samples'].gt_segments = self._pack_segments(results)
        return packed

    @staticmethod
    def _pack_segments(results: dict) -> InstanceData:
        """``InstanceData(labels, is_thing)`` of the ground-truth segments
        (their ids are the values of ``gt_segment_ids``)."""
        labels = np.asarray(results['gt_segment_labels'], dtype=np.int64)
        is_thing = results.get('gt_segment_is_thing')
        if is_thing is None:
            raise KeyError('PackPanopticInputs: gt_segment_labels without '
                           'gt_segment_is_thing (GeneratePanopticSegmentIds '
                           'writes both)')
        is_thing = np.asarray(is_thing, dtype=bool)
        if labels.ndim != 1 or is_thing.shape != labels.shape:
            raise ValueError(
                f'gt_segment_labels {labels.shape} and gt_segment_is_thing '
                f'{is_thing.shape} must be one (S,) shape')
        return InstanceData(
            labels=torch.from_numpy(labels.copy()),
            is_thing=torch.from_numpy(is_thing.copy()))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'dense_target_keys={self.dense_target_keys})')
