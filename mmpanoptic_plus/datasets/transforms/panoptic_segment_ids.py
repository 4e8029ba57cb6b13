# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmpanoptic_plus.models.utils import instance_index_map
from mmpanoptic_plus.registry import TRANSFORMS
from .panoptic_target_inputs import read_semantic_and_instances
from .panoptic_deeplab_targets import IGNORE_LABEL

#: Value of ``gt_segment_ids`` on pixels of no segment (void, crowd, thing
#: pixels of no instance) unless the transform is told otherwise.
SEGMENT_ID_IGNORE = -1

#: ``results`` key of the dense map written by
#: :class:`GeneratePanopticSegmentIds` and the value to pad it with in
#: ``PanopticDataPreprocessor(dense_target_pad_values=...)`` (padding is no
#: segment). Use the transform's ``ignore_index`` if you change it.
PANOPTIC_SEGMENT_ID_PAD_VALUES: Dict[str, float] = {
    'gt_segment_ids': SEGMENT_ID_IGNORE
}


@TRANSFORMS.register_module()
class GeneratePanopticSegmentIds(BaseTransform):
    """Per-pixel ground-truth segment ids: every thing instance and every
    stuff class of the image one segment, numbered ``0 .. S-1``.

    The target of methods that learn pixel-to-segment assignments: CIAE's
    segment ids ``s_i`` and classes ``c_i`` (pixel embedding loss), PSS's
    SegSort instance labels, Unified's matching of predicted and ground
    truth segments.

    Run it after ``LoadPanopticAnnotations`` and the geometric augmentation
    (it reads ``gt_masks`` and ``gt_seg_map``, which flip, resize, crop and
    pad keep aligned; ``gt_panoptic_seg`` is not used, as those transforms
    leave it behind) and before ``PackPanopticInputs``.

    Segments, in this order:

    1. the non-crowd thing instances (``gt_ignore_flags`` False) that still
       own a pixel, in ``gt_masks`` order (a pixel of overlapping masks
       belongs to the first, as in ``GeneratePanopticDeepLabTargets``),
       class ``gt_bboxes_labels``;
    2. the stuff classes (``num_thing_classes <= label < 255`` in
       ``gt_seg_map``) on pixels of no instance, one segment per class
       however many regions it has, in increasing class order.

    Pixels of crowd instances, void pixels (255) and thing-class pixels of
    no instance get ``ignore_index``.

    Required Keys:

    - gt_seg_map (np.uint8, (H, W)): semantic labels, 255 for void
    - gt_masks (BitmapMasks, (N, H, W)): thing instances, crowd included
    - gt_ignore_flags (bool, (N, )): True for crowd instances
    - gt_bboxes_labels (np.int64, (N, )): instance classes

    Added Keys:

    - gt_segment_ids (np.int64, (H, W)): segment of each pixel or
      ``ignore_index``; pack it with ``PackPanopticInputs(
      dense_target_keys=['gt_segment_ids'])`` (int64 ``PixelData``) and pad
      it with ``ignore_index`` (:data:`PANOPTIC_SEGMENT_ID_PAD_VALUES`)
    - gt_segment_labels (np.int64, (S, )): class of each segment
    - gt_segment_is_thing (bool, (S, )): True for instance segments (the
      first ones); ``PackPanopticInputs`` packs both as
      ``data_sample.gt_segments = InstanceData(labels, is_thing)``

    Args:
        num_thing_classes (int, optional): Number of thing classes (labels
            ``0 .. num_thing_classes - 1``). None: taken from
            ``results['num_thing_classes']`` or ``results['thing_classes']``.
            Defaults to None.
        ignore_index (int): Id of pixels of no segment; negative, so that it
            cannot be a segment. Defaults to -1.
    """

    def __init__(self,
                 num_thing_classes: Optional[int] = None,
                 ignore_index: int = SEGMENT_ID_IGNORE) -> None:
        if ignore_index >= 0:
            raise ValueError(f'ignore_index must be negative (segment ids '
                             f'are 0..S-1), got {ignore_index}')
        if num_thing_classes is not None and num_thing_classes < 0:
            raise ValueError('num_thing_classes must be non-negative, got '
                             f'{num_thing_classes}')
        self.num_thing_classes = num_thing_classes
        self.ignore_index = ignore_index

    def _num_things(self, results: dict) -> int:
        if self.num_thing_classes is not None:
            return self.num_thing_classes
        if results.get('num_thing_classes') is not None:
            return int(results['num_thing_classes'])
        if results.get('thing_classes') is not None:
            return len(results['thing_classes'])
        raise KeyError('GeneratePanopticSegmentIds needs the number of thing '
                       'classes: pass num_thing_classes=...')

    @staticmethod
    def _check_inputs(
        results: dict
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        semantic, masks, crowd = read_semantic_and_instances(
            results, 'GeneratePanopticSegmentIds',
            ('gt_seg_map', 'gt_masks', 'gt_ignore_flags', 'gt_bboxes_labels'),
            'with_seg, with_mask, with_bbox, with_label')
        labels = np.asarray(results['gt_bboxes_labels'], dtype=np.int64)
        if not masks.shape[0] == len(crowd) == len(labels):
            raise ValueError(
                f'{masks.shape[0]} masks, {len(crowd)} ignore flags and '
                f'{len(labels)} labels: they must describe the same '
                f'instances ({results.get("img_path")})')
        return semantic, masks, crowd, labels

    def transform(self, results: dict) -> dict:
        """Add the segment ids, classes and thing flags of one image.

        Args:
            results (dict): Result dict with the required keys.

        Returns:
            dict: ``results`` with the added keys of the class docstring.
        """
        semantic, masks, crowd, instance_labels = self._check_inputs(results)
        num_things = self._num_things(results)
        num_instances = masks.shape[0]
        # 1 + index of the instance owning each pixel, 0 for none (the
        # shared helper the Panoptic-DeepLab generator uses: same
        # first-mask-wins rule)
        owner = instance_index_map(masks).numpy()

        # instance k -> segment id through a table indexed by ``owner``
        owns_pixels = np.bincount(
            owner.ravel(), minlength=num_instances + 1)[1:] > 0
        is_segment = owns_pixels & ~crowd
        num_thing_segments = int(is_segment.sum())
        instance_table = np.full(
            num_instances + 1, self.ignore_index, dtype=np.int64)
        instance_table[1:][is_segment] = np.arange(num_thing_segments)

        # stuff classes present on pixels of no instance, in class order
        semantic = semantic.astype(np.int64)
        stuff_pixels = (owner == 0) & (semantic >= num_things) & (
            semantic != IGNORE_LABEL)
        stuff_classes = np.unique(semantic[stuff_pixels])
        stuff_ids = num_thing_segments + np.arange(len(stuff_classes))
        # position of each pixel's class in stuff_classes (exact match is
        # guaranteed under stuff_pixels, the only place it is used)
        stuff_rank = np.searchsorted(stuff_classes, semantic)
        stuff_rank = np.minimum(stuff_rank, max(len(stuff_classes) - 1, 0))

        segment_ids = np.where(owner > 0, instance_table[owner],
                               self.ignore_index)
        if len(stuff_classes):
            segment_ids = np.where(stuff_pixels, stuff_ids[stuff_rank],
                                   segment_ids)
        results['gt_segment_ids'] = segment_ids.astype(np.int64)
        results['gt_segment_labels'] = np.concatenate(
            [instance_labels[is_segment], stuff_classes]).astype(np.int64)
        results['gt_segment_is_thing'] = np.arange(
            num_thing_segments + len(stuff_classes)) < num_thing_segments
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'num_thing_classes={self.num_thing_classes}, '
                f'ignore_index={self.ignore_index})')
