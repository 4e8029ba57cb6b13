# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import io
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

from mmdet.datasets import CocoPanopticDataset
from mmengine.fileio import get, load
from PIL import Image

from mmpanoptic_plus.registry import DATASETS


@DATASETS.register_module()
class CocoPanopticFormatDataset(CocoPanopticDataset):
    """A dataset in COCO panoptic format (JSON + id PNGs), read our way.

    Differences from mmdet's :class:`CocoPanopticDataset` (whose METAINFO,
    the 133 COCO classes, this class keeps as default):

    - JSON categories are mapped to labels by *name*, in the order of
      ``metainfo['classes']`` (mmdet's ``get_cat_ids`` follows the JSON
      order, which is wrong when the JSON lists stuff first, as
      Cityscapes' does). The JSON category id of each class, in classes
      order, is stored in ``metainfo['cat_ids']`` so that a metric can
      write predictions with the dataset's own ids.
    - Every segment is kept in ``segments_info`` with ``iscrowd`` and
      ``area`` from the JSON (``area`` is left out when the JSON has none;
      the loader then counts pixels); ``is_thing`` follows the category.
      Thing segments become ``instances``, crowd ones with ``ignore_flag=1``,
      each naming its ``segment_id``; a thing segment whose JSON area is
      <= 0 or whose box is narrower than a pixel gets no instance (as in
      mmdet) but stays a segment.
    - The panoptic PNG path is the annotation's ``file_name`` under
      ``data_prefix['seg']`` (mmdet derives it from the image name).
    - A segment whose category id is not among the dataset's classes raises
      a ``ValueError`` naming image, segment and category id.

    The JSON may lack ``categories`` if :meth:`default_categories` supplies
    them, and ``images`` if :meth:`image_file_from_annotation` can name the
    image (height and width are then read from the PNG header).

    ``data_info`` per image: ``img_path``, ``img_id``, ``seg_map_path``,
    ``height``, ``width``, ``instances`` (``bbox`` x1y1x2y2 when the JSON
    has one, ``bbox_label``, ``ignore_flag``, ``segment_id``) and
    ``segments_info`` (``id``, ``category``, ``is_thing``, ``iscrowd``,
    ``area``). Arguments are those of :class:`CocoPanopticDataset`.
    """

    # ---------------------------------------------------------------- hooks
    def default_categories(self, raw: dict) -> Optional[List[dict]]:
        """Categories to use when the JSON has none (None: it must have
        them).

        Args:
            raw (dict): The loaded annotation JSON.
        """
        return None

    def image_file_from_annotation(self, annotation: dict) -> str:
        """Image file name (relative to ``data_prefix['img']``) of an
        annotation, used when the JSON has no ``images``."""
        raise ValueError(f'"{self.ann_file}" has no "images" list; '
                         f'{type(self).__name__} cannot name the image of '
                         f'annotation "{annotation.get("file_name")}"')

    def get_img_path(self, img_info: dict, annotation: Optional[dict]) -> str:
        """Path of the image of ``img_info``."""
        return osp.join(self.data_prefix.get('img', '') or '',
                        img_info['file_name'])

    # -------------------------------------------------------------- loading
    def _match_categories(self, categories: List[dict]) -> List[int]:
        """JSON category id of each class, in ``metainfo['classes']``
        order, matched by name."""
        classes = list(self.metainfo['classes'])
        thing_classes = list(self.metainfo.get('thing_classes', []))
        if classes[:len(thing_classes)] != thing_classes:
            raise ValueError(
                f'{type(self).__name__}: metainfo "classes" must list the '
                f'thing classes first, in "thing_classes" order; got '
                f'classes={classes}, thing_classes={thing_classes}')
        by_name: Dict[str, dict] = {}
        for category in categories:
            if category['name'] in by_name:
                raise ValueError(f'"{self.ann_file}" has two categories '
                                 f'named "{category["name"]}"')
            by_name[category['name']] = category
        missing = [name for name in classes if name not in by_name]
        if missing:
            raise ValueError(
                f'classes {missing} are not among the categories of '
                f'"{self.ann_file}" ({sorted(by_name)})')
        for label, name in enumerate(classes):
            is_thing = label < len(thing_classes)
            if 'isthing' in by_name[name] and \
                    bool(by_name[name]['isthing']) != is_thing:
                raise ValueError(
                    f'category "{name}" of "{self.ann_file}" has isthing='
                    f'{by_name[name]["isthing"]} but the dataset lists it as '
                    f'a {"thing" if is_thing else "stuff"} class')
        return [by_name[name]['id'] for name in classes]

    def _read_png_size(self, seg_map_path: str) -> tuple:
        """(height, width) of a PNG, reading only its header."""
        try:
            png_bytes = get(seg_map_path, backend_args=self.backend_args)
        except (FileNotFoundError, OSError) as error:
            raise FileNotFoundError('cannot read the panoptic annotation '
                                    f'PNG "{seg_map_path}": {error}') from None
        width, height = Image.open(io.BytesIO(png_bytes)).size
        return height, width

    def load_data_list(self) -> List[dict]:
        """Load the annotation JSON.

        mmdet's :class:`COCOPanoptic` index is not used: it needs
        ``images`` and ``categories`` in the JSON, and its category lookup is
        the JSON-ordered one this class replaces.

        Returns:
            list[dict]: One ``data_info`` per image.
        """
        try:
            raw = load(
                self.ann_file, file_format='json',
                backend_args=self.backend_args)
        except (FileNotFoundError, OSError) as error:
            raise FileNotFoundError('cannot read the annotation file '
                                    f'"{self.ann_file}": {error}') from None
        if 'annotations' not in raw and 'images' not in raw:
            raise ValueError(f'"{self.ann_file}" has neither "annotations" '
                             'nor "images": not a COCO panoptic JSON')
        # image-info-only files (test-dev) have no annotations
        raw_annotations = raw.get('annotations', [])
        categories = raw.get('categories') or self.default_categories(raw)
        if not categories:
            raise ValueError(f'"{self.ann_file}" has no "categories"')
        self.cat_ids = self._match_categories(categories)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self._metainfo['cat_ids'] = list(self.cat_ids)

        annotations = {ann['image_id']: ann for ann in raw_annotations}
        if 'images' in raw:
            images = raw['images']
        else:
            images = []
            for ann in raw_annotations:
                file_name = self.image_file_from_annotation(ann)
                height, width = self._read_png_size(
                    osp.join(self.data_prefix.get('seg', '') or '',
                             ann['file_name']))
                images.append(
                    dict(
                        id=ann['image_id'],
                        file_name=file_name,
                        height=height,
                        width=width))

        self.cat_img_map = defaultdict(list)
        data_list = []
        for img_info in images:
            img_info = dict(img_info, img_id=img_info['id'])
            annotation = annotations.get(img_info['id'])
            data_info = self.parse_data_info(
                dict(raw_img_info=img_info, raw_ann_info=annotation))
            for segment in data_info['segments_info']:
                self.cat_img_map[self.cat_ids[segment['category']]].append(
                    img_info['id'])
            data_list.append(data_info)
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Parse one image's JSON entries.

        Args:
            raw_data_info (dict): ``raw_img_info`` (the ``images`` entry,
                with ``img_id``) and ``raw_ann_info`` (the whole
                ``annotations`` entry of the image, or None). Unlike mmdet's,
                ``raw_ann_info`` is the annotation dict, not a list of
                segments.

        Returns:
            dict: The ``data_info`` described in the class docstring.
        """
        img_info = raw_data_info['raw_img_info']
        annotation = raw_data_info['raw_ann_info']
        seg_prefix = self.data_prefix.get('seg', None)
        data_info = dict(
            img_path=self.get_img_path(img_info, annotation),
            img_id=img_info['img_id'],
            seg_map_path=(osp.join(seg_prefix, annotation['file_name'])
                          if annotation is not None and seg_prefix else None),
            height=img_info['height'],
            width=img_info['width'])
        if self.return_classes:
            data_info['text'] = self.metainfo['thing_classes']
            data_info['stuff_text'] = self.metainfo['stuff_classes']
            data_info['custom_entities'] = True

        num_things = len(self.metainfo['thing_classes'])
        instances, segments_info = [], []
        segments = annotation['segments_info'] if annotation else []
        for segment in segments:
            category_id = segment['category_id']
            if category_id not in self.cat2label:
                raise ValueError(
                    f'"{self.ann_file}": image {img_info["img_id"]!r}, '
                    f'segment {segment["id"]} has category_id {category_id}, '
                    "which is not among the dataset's classes (category ids "
                    f'{self.cat_ids})')
            label = self.cat2label[category_id]
            is_thing = label < num_things
            iscrowd = bool(segment.get('iscrowd', 0))
            area = segment.get('area')
            segment_info = dict(
                id=int(segment['id']),
                category=label,
                is_thing=is_thing,
                iscrowd=iscrowd)
            if area is not None:  # else the loader counts pixels
                segment_info['area'] = int(area)
            segments_info.append(segment_info)
            if not is_thing or (area is not None and area <= 0):
                continue
            instance = dict(
                bbox_label=label,
                ignore_flag=int(iscrowd),
                segment_id=int(segment['id']))
            if 'bbox' in segment:
                x, y, w, h = segment['bbox']
                if w < 1 or h < 1:
                    continue
                instance['bbox'] = [x, y, x + w, y + h]
            instances.append(instance)
        data_info['instances'] = instances
        data_info['segments_info'] = segments_info
        return data_info

    def filter_data(self) -> List[dict]:
        """Filter images smaller than ``filter_cfg['min_size']`` and, with
        ``filter_empty_gt``, images without a non-crowd thing instance.

        Returns:
            list[dict]: The kept ``data_info``.
        """
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for data_info in self.data_list:
            if filter_empty_gt and not any(
                    instance['ignore_flag'] == 0
                    for instance in data_info['instances']):
                continue
            if min(data_info['width'], data_info['height']) >= min_size:
                kept.append(data_info)
        return kept
