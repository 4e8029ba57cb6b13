# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from mmpanoptic_plus.registry import DATASETS
from .coco_panoptic_format import CocoPanopticFormatDataset
from .synthetic import SYNTHETIC_CATEGORIES


@DATASETS.register_module()
class SyntheticPanopticDataset(CocoPanopticFormatDataset):
    """The synthetic panoptic set written by
    :func:`mmpanoptic_plus.datasets.synthetic.generate_synthetic_panoptic`
    (``tools/dataset_converters/make_synthetic.py``).

    Classes: disc, square, triangle (things), sky, ground (stuff). Layout
    under ``data_root``: ``annotations/panoptic_<split>.json``, images in
    ``<split>/`` (``data_prefix['img']``) and id PNGs in
    ``annotations/panoptic_<split>/`` (``data_prefix['seg']``).
    """

    METAINFO = {
        'classes': tuple(c['name'] for c in SYNTHETIC_CATEGORIES),
        'thing_classes':
        tuple(c['name'] for c in SYNTHETIC_CATEGORIES if c['isthing']),
        'stuff_classes':
        tuple(c['name'] for c in SYNTHETIC_CATEGORIES if not c['isthing']),
        'palette': [tuple(c['color']) for c in SYNTHETIC_CATEGORIES],
    }
