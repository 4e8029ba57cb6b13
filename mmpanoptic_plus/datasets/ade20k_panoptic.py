# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ADE20K panoptic (SceneParse150 classes, 100 things + 50 stuff), as
written by ``tools/dataset_converters/ade20k_panoptic.py``."""
from typing import List, Optional, Union

import numpy as np
from mmdet.datasets.ade20k import ADE_PALETTE

from mmpanoptic_plus.registry import DATASETS
from .coco_panoptic_format import CocoPanopticFormatDataset

# The 150 SceneParse150 classes in the order of their ids 1..150 (the values
# of ADEChallengeData2016/annotations/*.png; 0 is "other", not evaluated).
# Names are those of MaskFormer's ADE20K panoptic JSON (its
# prepare_ade20k_pan_seg.py), so that a JSON written by it loads by name.
ADE20K_SCENE_PARSING_NAMES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road, route',
    'bed', 'window', 'grass', 'cabinet', 'sidewalk, pavement', 'person',
    'earth, ground', 'door', 'table', 'mountain, mount', 'plant', 'curtain',
    'chair', 'car', 'water', 'painting, picture', 'sofa', 'shelf', 'house',
    'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk',
    'rock, stone', 'wardrobe, closet, press', 'lamp', 'tub', 'rail',
    'cushion', 'base, pedestal, stand', 'box', 'column, pillar',
    'signboard, sign', 'chest of drawers, chest, bureau, dresser', 'counter',
    'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator, icebox',
    'grandstand, covered stand', 'path', 'stairs', 'runway',
    'case, display case, showcase, vitrine',
    'pool table, billiard table, snooker table', 'pillow',
    'screen door, screen', 'stairway, staircase', 'river', 'bridge, span',
    'bookcase', 'blind, screen', 'coffee table',
    'toilet, can, commode, crapper, pot, potty, stool, throne', 'flower',
    'book', 'hill', 'bench', 'countertop', 'stove', 'palm, palm tree',
    'kitchen island', 'computer', 'swivel chair', 'boat', 'bar',
    'arcade machine', 'hovel, hut, hutch, shack, shanty', 'bus', 'towel',
    'light', 'truck', 'tower', 'chandelier', 'awning, sunshade, sunblind',
    'street lamp', 'booth', 'tv', 'plane', 'dirt track', 'clothes', 'pole',
    'land, ground, soil',
    'bannister, banister, balustrade, balusters, handrail',
    'escalator, moving staircase, moving stairway',
    'ottoman, pouf, pouffe, puff, hassock', 'bottle',
    'buffet, counter, sideboard',
    'poster, posting, placard, notice, bill, card', 'stage', 'van', 'ship',
    'fountain',
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter',
    'canopy', 'washer, automatic washer, washing machine', 'plaything, toy',
    'pool', 'stool', 'barrel, cask', 'basket, handbasket', 'falls', 'tent',
    'bag', 'minibike, motorbike', 'cradle', 'oven', 'ball',
    'food, solid food', 'step, stair', 'tank, storage tank', 'trade name',
    'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen',
    'blanket, cover', 'sculpture', 'hood, exhaust hood', 'sconce', 'vase',
    'traffic light', 'tray', 'trash can', 'fan', 'pier', 'crt screen',
    'plate', 'monitor', 'bulletin board', 'shower', 'radiator',
    'glass, drinking glass', 'clock', 'flag')

# SceneParse150 id of each category of the instance track (Places Challenge
# 2017 "Instance100", the R channel of annotations_instance/*.png), in the
# order of its ids 1..100: the track's categoryMapping.txt. These 100 are the
# thing classes, the other 50 are stuff (the split MaskFormer uses).
ADE20K_INSTANCE_TO_SCENE_PARSING = (
    8, 9, 11, 13, 15, 16, 19, 20, 21, 23, 24, 25, 28, 31, 32, 33, 34, 36, 37,
    38, 39, 40, 42, 43, 44, 45, 46, 48, 50, 51, 54, 56, 57, 58, 59, 63, 65,
    66, 67, 68, 70, 71, 72, 73, 74, 75, 76, 77, 79, 81, 82, 83, 84, 86, 87,
    88, 89, 90, 91, 93, 94, 96, 98, 99, 103, 104, 105, 108, 109, 111, 112,
    113, 116, 117, 119, 120, 121, 122, 124, 125, 126, 127, 128, 130, 131,
    133, 134, 135, 136, 137, 138, 139, 140, 143, 144, 145, 147, 148, 149,
    150)


def _scene_parsing_palette() -> List[tuple]:
    """mmdet's ADE20K colours (SceneParse150 order), with skyscraper's
    made distinct from road's (both are (140, 140, 140) there; Mask2Former
    changed the skyscraper's the same way)."""
    palette = [tuple(color) for color in ADE_PALETTE]
    palette[ADE20K_SCENE_PARSING_NAMES.index('skyscraper')] = (140, 140, 200)
    return palette


def _ade20k_classes() -> tuple:
    """(name, SceneParse150 id, colour, is_thing) of each class, things
    first, each group in SceneParse150 order."""
    palette = _scene_parsing_palette()
    things = set(ADE20K_INSTANCE_TO_SCENE_PARSING)
    rows = [(name, sp_id, palette[sp_id - 1], sp_id in things)
            for sp_id, name in enumerate(ADE20K_SCENE_PARSING_NAMES, 1)]
    return tuple(row for row in rows if row[3]) + tuple(
        row for row in rows if not row[3])


#: (name, SceneParse150 id, colour, is_thing), things first.
ADE20K_CLASSES = _ade20k_classes()
NUM_ADE20K_THINGS = len(ADE20K_INSTANCE_TO_SCENE_PARSING)


def ade20k_category_id(
        scene_parsing_id: Union[int, np.ndarray]) -> Union[int, np.ndarray]:
    """JSON category id of a SceneParse150 class (or an array of them): its
    id minus one (0..149), as in MaskFormer's ADE20K panoptic JSON."""
    return scene_parsing_id - 1


def ade20k_categories() -> List[dict]:
    """The 150 COCO panoptic ``categories`` entries (``id``, ``name``,
    ``isthing``, ``color``), in SceneParse150 id order."""
    by_id = sorted(ADE20K_CLASSES, key=lambda row: row[1])
    return [
        dict(
            id=ade20k_category_id(sp_id),
            name=name,
            isthing=int(is_thing),
            color=list(color)) for name, sp_id, color, is_thing in by_id
    ]


@DATASETS.register_module()
class ADE20KPanopticDataset(CocoPanopticFormatDataset):
    """ADE20K panoptic: the 150 SceneParse150 classes, the 100 classes of
    the instance track as things and the other 50 as stuff (MaskFormer's
    split), in COCO panoptic format.

    Labels are things first, then stuff, each group in SceneParse150 order
    (``metainfo['classes']``). ``metainfo['scene_parsing_ids']`` gives each
    class's value in ``annotations/*.png`` (1..150) and
    ``metainfo['category_ids']`` its JSON category id (that value minus one,
    as in MaskFormer's JSON); after loading, ``metainfo['cat_ids']`` holds
    the ids the JSON actually uses, matched by name.

    Annotations come from ``tools/dataset_converters/ade20k_panoptic.py``;
    a JSON written by MaskFormer's ``prepare_ade20k_pan_seg.py`` loads too
    (its names are ours, one with a trailing space, which is ignored). A JSON
    without ``categories`` gets :func:`ade20k_categories`.

    Args:
        **kwargs: Arguments of :class:`CocoPanopticFormatDataset`.
    """

    METAINFO = {
        'classes': tuple(row[0] for row in ADE20K_CLASSES),
        'thing_classes':
        tuple(row[0] for row in ADE20K_CLASSES[:NUM_ADE20K_THINGS]),
        'stuff_classes':
        tuple(row[0] for row in ADE20K_CLASSES[NUM_ADE20K_THINGS:]),
        'palette': [row[2] for row in ADE20K_CLASSES],
        'scene_parsing_ids': [row[1] for row in ADE20K_CLASSES],
        'category_ids':
        [ade20k_category_id(row[1]) for row in ADE20K_CLASSES],
    }

    def default_categories(self, raw: dict) -> Optional[List[dict]]:
        """The converter's 150 categories (see :func:`ade20k_categories`)."""
        return ade20k_categories()

    def _match_categories(self, categories: List[dict]) -> List[int]:
        # MaskFormer's JSON names SceneParse150 class 9 "window " (trailing
        # space); names are compared without surrounding spaces.
        return super()._match_categories(
            [dict(category, name=category['name'].strip())
             for category in categories])
