# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import List, Optional

import numpy as np
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.structures.mask import BitmapMasks

from mmpanoptic_plus.registry import TRANSFORMS
from mmpanoptic_plus.structures import (read_panoptic_ids,
                                        segment_areas_and_boxes)
from ..panoptic_utils import lookup_segments

IGNORE_LABEL = 255


@TRANSFORMS.register_module()
class LoadPanopticAnnotations(LoadAnnotations):
    """Load COCO-format panoptic annotations (id PNG + ``segments_info``).

    Same name as mmdet's transform on purpose: mmdet's needs panopticapi,
    which is not installable, so in the ``mmpanoptic_plus`` scope this one
    takes its place. Boxes and labels are read from ``instances`` with
    mmdet's :class:`LoadAnnotations` code; masks, the semantic map and the
    raw id map come from the PNG.

    Two ``results`` layouts are accepted:

    - ours (:class:`CocoPanopticFormatDataset`): every ``segments_info``
      entry has ``iscrowd`` and ``area``; ``is_thing`` follows the category;
      ``instances`` hold every thing segment (crowd ones with
      ``ignore_flag=1``) and name it by ``segment_id``. ``bbox`` may be
      missing (csCreatePanopticImgs JSONs stripped of boxes): it is then
      computed from the mask.
    - mmdet's ``CocoPanopticDataset.parse_data_info``: no ``iscrowd`` or
      ``area``; a crowd thing segment has ``is_thing=False`` and is not in
      ``instances``, which list the ``is_thing=True`` segments in order.
      ``iscrowd`` is inferred as "thing category but not ``is_thing``",
      which needs the number of thing classes
      (``results['num_thing_classes']``, ``len(results['thing_classes'])``
      or the ``num_thing_classes`` argument); ``area`` is the pixel count.

    The completed ``segments_info`` (copies) always carry ``id``,
    ``category``, ``is_thing`` (true for every segment of a thing category
    when the number of thing classes is known), ``iscrowd`` and ``area``.
    Ids listed in ``segments_info`` but absent from the PNG are kept, with
    an empty mask (and, if not given, area 0). Pixels whose id is 0 or not
    listed get the label 255.

    Required Keys:

    - seg_map_path (None: only boxes/labels of ``instances`` are loaded)
    - segments_info: list of dict with ``id``, ``category``, ``is_thing``
      and optionally ``iscrowd``, ``area``
    - instances: list of dict with ``bbox_label``, ``ignore_flag`` and
      optionally ``bbox`` (x1, y1, x2, y2) and ``segment_id``
    - ori_shape (optional, checked against the PNG size)

    Added Keys:

    - gt_bboxes (HorizontalBoxes[torch.float32], (N, 4))
    - gt_bboxes_labels (np.int64, (N, ))
    - gt_ignore_flags (bool, (N, )): True for crowd instances
    - gt_masks (BitmapMasks, (N, H, W))
    - gt_seg_map (np.uint8, (H, W)): contiguous label, 255 for void
    - gt_panoptic_seg (np.int64, (H, W)): raw segment ids of the PNG

    Modified Keys:

    - segments_info, instances (completed copies)

    ``gt_panoptic_seg`` is metric ground truth at the size of the PNG: mmdet's
    geometric transforms (flip, resize, crop, pad) do not know this key, so
    load it in test pipelines only (put geometric transforms *before* this
    one, as mmdet's panoptic test pipelines do) and set
    ``with_panoptic_seg=False`` in training pipelines. Target generators
    should derive instance ids from ``gt_masks``/``gt_seg_map``, which the
    transforms do update. :class:`PackPanopticInputs` refuses a
    ``gt_panoptic_seg`` that was flipped away from the other maps.

    Args:
        with_bbox (bool): Load ``gt_bboxes`` and ``gt_ignore_flags``.
            Defaults to True.
        with_label (bool): Load ``gt_bboxes_labels``. Defaults to True.
        with_mask (bool): Load ``gt_masks``. Defaults to True.
        with_seg (bool): Load ``gt_seg_map``. Defaults to True.
        with_panoptic_seg (bool): Keep ``gt_panoptic_seg``. Defaults to True.
        num_thing_classes (int, optional): Number of thing classes, used
            only to infer ``iscrowd`` (mmdet layout) when ``results`` does not
            say it. Defaults to None.
        box_type (str): Box type of ``gt_bboxes``. Defaults to 'hbox'.
        imdecode_backend (str): Kept for the signature of mmdet's
            :class:`LoadAnnotations`; the id PNG is always decoded with cv2
            by :func:`~mmpanoptic_plus.structures.read_panoptic_ids`.
            Defaults to 'cv2'.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = True,
                 with_seg: bool = True,
                 with_panoptic_seg: bool = True,
                 num_thing_classes: Optional[int] = None,
                 box_type: str = 'hbox',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            with_bbox=with_bbox,
            with_label=with_label,
            with_mask=with_mask,
            with_seg=with_seg,
            with_keypoints=False,
            box_type=box_type,
            imdecode_backend=imdecode_backend,
            backend_args=backend_args)
        self.with_panoptic_seg = with_panoptic_seg
        self.num_thing_classes = num_thing_classes

    def _read_id_map(self, seg_map_path: str) -> np.ndarray:
        """Read a panoptic PNG as an (H, W) int64 id map (the codec's cv2
        decoder; errors name the file)."""
        return read_panoptic_ids(
            seg_map_path, backend_args=self.backend_args).astype(np.int64)

    def _num_thing_classes(self, results: dict) -> Optional[int]:
        if results.get('num_thing_classes') is not None:
            return int(results['num_thing_classes'])
        if results.get('thing_classes') is not None:
            return len(results['thing_classes'])
        return self.num_thing_classes

    def _complete_segments_info(self, results: dict,
                                areas: np.ndarray) -> List[dict]:
        """Copies of ``segments_info`` with ``iscrowd``, ``area`` and a
        category-based ``is_thing``.

        Args:
            results (dict): The results dict.
            areas (np.ndarray): (K, ) pixel count of each segment.
        """
        num_things = self._num_thing_classes(results)
        completed = []
        for segment, area in zip(results['segments_info'], areas):
            segment = dict(segment)
            category = int(segment['category'])
            if 'iscrowd' not in segment:
                if num_things is None:
                    raise ValueError(
                        f'segments_info of "{results["seg_map_path"]}" have '
                        'no "iscrowd" (mmdet CocoPanopticDataset layout); '
                        'to infer it, LoadPanopticAnnotations needs the '
                        'number of thing classes: pass num_thing_classes=...')
                # mmdet marks a crowd thing segment with is_thing=False
                segment['iscrowd'] = bool(category < num_things
                                          and not segment['is_thing'])
            segment['iscrowd'] = bool(segment['iscrowd'])
            if num_things is not None:
                segment['is_thing'] = category < num_things
            segment['is_thing'] = bool(segment['is_thing'])
            if segment.get('area') is None:
                segment['area'] = int(area)
            completed.append(segment)
        return completed

    @staticmethod
    def _instance_segments(results: dict, segment_ids: np.ndarray) -> list:
        """Position in ``segments_info`` of each instance's segment."""
        instances = results.get('instances', [])
        with_ids = ['segment_id' in instance for instance in instances]
        if all(with_ids):
            position = {int(s): k for k, s in enumerate(segment_ids)}
            try:
                return [
                    position[int(instance['segment_id'])]
                    for instance in instances
                ]
            except KeyError as error:
                raise ValueError(
                    f'an instance of "{results["seg_map_path"]}" names '
                    f'segment {error.args[0]}, which is not in '
                    'segments_info') from None
        if any(with_ids):
            raise ValueError('either all or none of the instances may carry '
                             f'"segment_id" ("{results["seg_map_path"]}")')
        # mmdet layout: instances are the is_thing segments, in order
        thing_positions = [
            k for k, segment in enumerate(results['segments_info'])
            if segment.get('is_thing')
        ]
        if len(thing_positions) != len(instances):
            raise ValueError(
                f'"{results["seg_map_path"]}": {len(instances)} instances '
                f'but {len(thing_positions)} is_thing segments; without '
                '"segment_id" the instances must be the is_thing segments '
                'in order')
        return thing_positions

    def transform(self, results: dict) -> dict:
        """Load the panoptic annotations of one image.

        Args:
            results (dict): Result dict from the dataset.

        Returns:
            dict: ``results`` with the keys listed in the class docstring.
        """
        if results.get('seg_map_path') is None:
            # inference without ground truth
            if self.with_bbox:
                self._load_bboxes(results)
            if self.with_label:
                self._load_labels(results)
            return results

        id_map = self._read_id_map(results['seg_map_path'])
        height, width = id_map.shape
        if ('ori_shape' in results
                and tuple(results['ori_shape'][:2]) != (height, width)):
            raise ValueError(
                f'panoptic PNG "{results["seg_map_path"]}" is {height}x'
                f'{width} but the image "{results.get("img_path")}" is '
                f'{results["ori_shape"][0]}x{results["ori_shape"][1]}')

        segments_info = results.get('segments_info', [])
        segment_ids = np.array([s['id'] for s in segments_info],
                               dtype=np.int64)
        if np.unique(segment_ids).size != segment_ids.size:
            raise ValueError('segments_info of '
                             f'"{results["seg_map_path"]}" repeat a segment '
                             f'id: {segment_ids.tolist()}')
        labels = np.array([s['category'] for s in segments_info],
                          dtype=np.int64)
        # (H, W): position in segments_info, -1 for void / unknown ids
        segment_index = lookup_segments(id_map, segment_ids)
        areas = np.bincount(
            segment_index.ravel() + 1,
            minlength=len(segments_info) + 1)[1:]

        instance_segments = np.array(
            self._instance_segments(results, segment_ids), dtype=np.int64)
        instances = [dict(i) for i in results.get('instances', [])]
        if any('bbox' not in instance for instance in instances):
            # boxes of the JSON are missing (e.g. trimmed csCreatePanopticImgs
            # files): take the tight box of the mask
            _, boxes = segment_areas_and_boxes(segment_index,
                                               len(segments_info))
            for instance, k in zip(instances, instance_segments):
                if 'bbox' not in instance:
                    x, y, w, h = boxes[k].tolist()
                    instance['bbox'] = [x, y, x + w, y + h]
        results['instances'] = instances
        results['segments_info'] = self._complete_segments_info(
            results, areas)

        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        if self.with_mask:
            masks = (segment_index[None] == instance_segments[:, None, None])
            # bool and uint8 share the item size: view, no copy
            results['gt_masks'] = BitmapMasks(
                masks.view(np.uint8), height, width)
        if self.with_seg:
            # label lookup with a trailing 255 that index -1 picks
            label_table = np.append(labels, IGNORE_LABEL)
            if labels.size and (labels.min() < 0
                                or labels.max() >= IGNORE_LABEL):
                raise ValueError('segment categories must lie in [0, 254] '
                                 f'to fit a uint8 map, got {labels}')
            results['gt_seg_map'] = label_table[segment_index].astype(
                np.uint8)
        if self.with_panoptic_seg:
            results['gt_panoptic_seg'] = id_map
            # PackPanopticInputs checks that no flip happened since
            results['gt_panoptic_seg_flip'] = (
                bool(results.get('flip', False)),
                results.get('flip_direction'))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_bbox={self.with_bbox}, '
                f'with_label={self.with_label}, with_mask={self.with_mask}, '
                f'with_seg={self.with_seg}, '
                f'with_panoptic_seg={self.with_panoptic_seg}, '
                f'num_thing_classes={self.num_thing_classes}, '
                f'box_type={self.box_type}, '
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
