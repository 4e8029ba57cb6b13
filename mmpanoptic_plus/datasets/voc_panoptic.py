# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PASCAL VOC 2012 panoptic (20 things + background as the one stuff class),
as written by ``tools/dataset_converters/voc_panoptic.py``."""
from typing import List, Optional

from mmseg.datasets.voc import PascalVOCDataset

from mmpanoptic_plus.registry import DATASETS
from .coco_panoptic_format import CocoPanopticFormatDataset

# mmseg's table is the VOC label order: index i is the class whose value is
# i in SegmentationClass/*.png (0 background, 1..20 the objects) and its
# colour is the PNGs' palette entry i. Reused, not copied.
VOC_LABEL_NAMES = tuple(PascalVOCDataset.METAINFO['classes'])
VOC_LABEL_PALETTE = [
    tuple(color) for color in PascalVOCDataset.METAINFO['palette']
]
VOC_BACKGROUND = 0
#: value of the boundary band / "difficult" regions in the VOC PNGs: void
VOC_VOID = 255
NUM_VOC_THINGS = len(VOC_LABEL_NAMES) - 1  # 20

#: (name, VOC label value, colour, is_thing), things first (VOC order), then
#: background, the single stuff class.
VOC_PANOPTIC_CLASSES = tuple(
    (name, value, VOC_LABEL_PALETTE[value], True)
    for value, name in enumerate(VOC_LABEL_NAMES) if value != VOC_BACKGROUND
) + ((VOC_LABEL_NAMES[VOC_BACKGROUND], VOC_BACKGROUND,
      VOC_LABEL_PALETTE[VOC_BACKGROUND], False), )


def voc_panoptic_categories() -> List[dict]:
    """The 21 COCO panoptic ``categories`` entries (``id``, ``name``,
    ``isthing``, ``color``), things first; ``id`` is the class's VOC label
    value (things 1..20, background 0)."""
    return [
        dict(id=value, name=name, isthing=int(is_thing), color=list(color))
        for name, value, color, is_thing in VOC_PANOPTIC_CLASSES
    ]


@DATASETS.register_module()
class VOCPanopticDataset(CocoPanopticFormatDataset):
    """PASCAL VOC 2012 panoptic in COCO panoptic format: the 20 object
    classes are things (every one has instance labels), background is the
    one stuff class, VOC's 255 boundary band is void.

    Labels are things first in VOC order (``aeroplane`` 0 ..
    ``tvmonitor`` 19), then ``background`` 20 (``metainfo['classes']``).
    ``metainfo['category_ids']`` gives each class's JSON category id, its
    value in ``SegmentationClass/*.png`` (1..20, background 0); after
    loading, ``metainfo['cat_ids']`` holds the ids the JSON actually uses,
    matched by name. A JSON without ``categories`` gets
    :func:`voc_panoptic_categories`.

    Args:
        **kwargs: Arguments of :class:`CocoPanopticFormatDataset`.
    """

    METAINFO = {
        'classes': tuple(row[0] for row in VOC_PANOPTIC_CLASSES),
        'thing_classes':
        tuple(row[0] for row in VOC_PANOPTIC_CLASSES[:NUM_VOC_THINGS]),
        'stuff_classes':
        tuple(row[0] for row in VOC_PANOPTIC_CLASSES[NUM_VOC_THINGS:]),
        'palette': [row[2] for row in VOC_PANOPTIC_CLASSES],
        'category_ids': [row[1] for row in VOC_PANOPTIC_CLASSES],
    }

    def default_categories(self, raw: dict) -> Optional[List[dict]]:
        """The converter's 21 categories (see
        :func:`voc_panoptic_categories`)."""
        return voc_panoptic_categories()
