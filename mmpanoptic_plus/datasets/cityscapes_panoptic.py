# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import os.path as osp
from typing import List, Optional

from mmpanoptic_plus.registry import DATASETS
from .coco_panoptic_format import CocoPanopticFormatDataset

# (name, Cityscapes label id, train id, colour), things first. The values
# are those of cityscapesscripts.helpers.labels (a test checks them); they
# are written out so that the dataset does not need cityscapesscripts.
CITYSCAPES_CLASSES = (
    ('person', 24, 11, (220, 20, 60)),
    ('rider', 25, 12, (255, 0, 0)),
    ('car', 26, 13, (0, 0, 142)),
    ('truck', 27, 14, (0, 0, 70)),
    ('bus', 28, 15, (0, 60, 100)),
    ('train', 31, 16, (0, 80, 100)),
    ('motorcycle', 32, 17, (0, 0, 230)),
    ('bicycle', 33, 18, (119, 11, 32)),
    ('road', 7, 0, (128, 64, 128)),
    ('sidewalk', 8, 1, (244, 35, 232)),
    ('building', 11, 2, (70, 70, 70)),
    ('wall', 12, 3, (102, 102, 156)),
    ('fence', 13, 4, (190, 153, 153)),
    ('pole', 17, 5, (153, 153, 153)),
    ('traffic light', 19, 6, (250, 170, 30)),
    ('traffic sign', 20, 7, (220, 220, 0)),
    ('vegetation', 21, 8, (107, 142, 35)),
    ('terrain', 22, 9, (152, 251, 152)),
    ('sky', 23, 10, (70, 130, 180)),
)
NUM_CITYSCAPES_THINGS = 8


@DATASETS.register_module()
class CityscapesPanopticDataset(CocoPanopticFormatDataset):
    """Cityscapes panoptic, as written by cityscapesscripts'
    ``csCreatePanopticImgs``.

    Both JSON variants work: ``--use-train-id`` (category ids are train ids,
    ``cityscapes_panoptic_<split>_trainId.json``) and the default (label
    ids); categories are matched by name. If the JSON has no
    ``categories`` (trimmed files), the ids are taken as train ids when the
    annotation file name contains ``trainId`` and as label ids otherwise,
    unless ``category_id_type`` says which.

    The image path is derived from the annotation file name
    ``<city>_<seq>_<frame>_gtFine_panoptic.png`` (the ``images`` entries of
    csCreatePanopticImgs name a non-existent ``..._gtFine_leftImg8bit.png``):
    ``data_prefix['img']`` joined with ``img_name_template`` formatted with
    ``city`` and ``stem`` (``<city>_<seq>_<frame>``). The default follows
    the Cityscapes layout ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png``
    (with ``data_prefix['img'] = 'leftImg8bit/<split>/'``); use
    ``img_name_template='{stem}_leftImg8bit.png'`` for a flat folder.

    ``metainfo['label_ids']`` and ``metainfo['train_ids']`` give the
    Cityscapes label id and train id of each class (the test server wants
    label ids).

    Args:
        img_name_template (str): Image path relative to
            ``data_prefix['img']``. Defaults to
            ``'{city}/{stem}_leftImg8bit.png'``.
        seg_suffix (str): Suffix of the panoptic PNG names.
            Defaults to ``'_gtFine_panoptic.png'``.
        category_id_type (str): ``'auto'``, ``'train_id'`` or ``'label_id'``;
            only used when the JSON has no categories. Defaults to 'auto'.
        **kwargs: Arguments of :class:`CocoPanopticFormatDataset`.
    """

    METAINFO = {
        'classes': tuple(c[0] for c in CITYSCAPES_CLASSES),
        'thing_classes':
        tuple(c[0] for c in CITYSCAPES_CLASSES[:NUM_CITYSCAPES_THINGS]),
        'stuff_classes':
        tuple(c[0] for c in CITYSCAPES_CLASSES[NUM_CITYSCAPES_THINGS:]),
        'palette': [c[3] for c in CITYSCAPES_CLASSES],
        'label_ids': [c[1] for c in CITYSCAPES_CLASSES],
        'train_ids': [c[2] for c in CITYSCAPES_CLASSES],
    }

    def __init__(self,
                 *args,
                 img_name_template: str = '{city}/{stem}_leftImg8bit.png',
                 seg_suffix: str = '_gtFine_panoptic.png',
                 category_id_type: str = 'auto',
                 **kwargs) -> None:
        if category_id_type not in ('auto', 'train_id', 'label_id'):
            raise ValueError('category_id_type must be "auto", "train_id" or '
                             f'"label_id", got "{category_id_type}"')
        # set before super().__init__, which loads the annotations
        self.img_name_template = img_name_template
        self.seg_suffix = seg_suffix
        self.category_id_type = category_id_type
        super().__init__(*args, **kwargs)

    def default_categories(self, raw: dict) -> Optional[List[dict]]:
        """The 19 evaluated Cityscapes categories, with train ids or label
        ids (see the class docstring)."""
        id_type = self.category_id_type
        if id_type == 'auto':
            id_type = ('train_id' if 'trainId' in osp.basename(self.ann_file)
                       else 'label_id')
        return [
            dict(
                id=train_id if id_type == 'train_id' else label_id,
                name=name,
                color=list(color),
                isthing=int(i < NUM_CITYSCAPES_THINGS))
            for i, (name, label_id, train_id,
                    color) in enumerate(CITYSCAPES_CLASSES)
        ]

    def _stem(self, annotation: dict) -> str:
        file_name = annotation['file_name']
        if not file_name.endswith(self.seg_suffix):
            raise ValueError(
                f'"{self.ann_file}": annotation file name "{file_name}" does '
                f'not end with "{self.seg_suffix}"')
        return file_name[:-len(self.seg_suffix)]

    def image_file_from_annotation(self, annotation: dict) -> str:
        stem = self._stem(annotation)
        return self.img_name_template.format(
            city=stem.split('_')[0], stem=stem)

    def get_img_path(self, img_info: dict, annotation: Optional[dict]) -> str:
        if annotation is None:
            # unannotated image (test split): trust the images entry
            return super().get_img_path(img_info, annotation)
        return osp.join(self.data_prefix.get('img', '') or '',
                        self.image_file_from_annotation(annotation))
