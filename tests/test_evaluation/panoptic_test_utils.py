# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Shared helpers of the evaluation tests: small panoptic scenes, their
perturbations, writing COCO panoptic sets, and the reference oracle
(``cityscapesscripts.evaluation.evalPanopticSemanticLabeling``)."""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from cityscapesscripts.evaluation import \
    evalPanopticSemanticLabeling as reference
from PIL import Image

from mmpanoptic_plus.evaluation.functional import (pq_compute, pq_compute_stat)

# Things first, then stuff; COCO-like sparse ids.
CATEGORIES = [
    dict(id=1, name='person', isthing=1),
    dict(id=3, name='car', isthing=1),
    dict(id=7, name='road', isthing=0),
    dict(id=9, name='sky', isthing=0),
    dict(id=11, name='building', isthing=0),
]
PERSON, CAR, ROAD, SKY, BUILDING = 1, 3, 7, 9, 11
THING_IDS = (PERSON, CAR)
STUFF_IDS = (ROAD, SKY, BUILDING)


def segments_from_map(id_map: np.ndarray,
                      category_of_id: Dict[int, int],
                      crowd_ids: Sequence[int] = ()) -> List[dict]:
    """COCO ``segments_info`` of the ids in ``category_of_id`` (areas
    counted from the map), in the dict's order."""
    return [
        dict(
            id=int(seg_id),
            category_id=int(category),
            iscrowd=int(seg_id in crowd_ids),
            area=int((id_map == seg_id).sum()))
        for seg_id, category in category_of_id.items()
    ]


def make_scene(height: int = 40, width: int = 64) -> Tuple[np.ndarray, list]:
    """A street-like scene: sky / building / road bands, two persons, two
    cars, a crowd of cars and of persons, a VOID column and an area whose id
    (7777) is not annotated."""
    m = np.zeros((height, width), np.uint32)
    m[:10] = 9001  # sky
    m[10:20] = 11001  # building
    m[20:] = 7001  # road
    m[22:34, 4:10] = 101  # person
    m[22:34, 12:18] = 102  # person
    m[24:36, 24:40] = 301  # car
    m[25:36, 42:54] = 302  # car
    m[12:20, 30:46] = 350  # crowd of cars
    m[34:40, 2:20] = 150  # crowd of persons
    m[0:4, 0:6] = 7777  # not annotated: neither VOID nor a segment
    m[:, width - 4:] = 0  # VOID
    category_of_id = {
        101: PERSON,
        102: PERSON,
        150: PERSON,
        301: CAR,
        302: CAR,
        350: CAR,
        7001: ROAD,
        9001: SKY,
        11001: BUILDING
    }
    return m, segments_from_map(m, category_of_id, crowd_ids=(150, 350))


def write_png(path: str, id_map: np.ndarray) -> None:
    """Write ids as RGB with PIL (independent of the code under test)."""
    id_map = id_map.astype(np.uint32)
    rgb = np.stack([id_map & 255, (id_map >> 8) & 255, (id_map >> 16) & 255],
                   axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def write_set(folder: str,
              images: Sequence[Tuple[object, np.ndarray, list]],
              categories: Optional[list] = None) -> Tuple[dict, str]:
    """Write ``(image_id, id_map, segments_info)`` triples as a COCO
    panoptic set: PNGs in ``folder``; returns (json dict, folder)."""
    os.makedirs(folder, exist_ok=True)
    annotations = []
    for image_id, id_map, segments_info in images:
        file_name = f'{image_id}.png'
        write_png(osp.join(folder, file_name), id_map)
        annotations.append(
            dict(
                image_id=image_id,
                file_name=file_name,
                segments_info=copy.deepcopy(segments_info)))
    data = dict(annotations=annotations)
    if categories is not None:
        data['categories'] = copy.deepcopy(categories)
    with open(folder + '.json', 'w') as f:
        json.dump(data, f)
    return data, folder


def reference_pq(gt_json: dict, gt_folder: str, pred_json: dict,
                 pred_folder: str):
    """The oracle: reference statistics and averages (on copies, as the
    reference writes areas into the prediction JSON)."""
    categories = {el['id']: el for el in gt_json['categories']}
    predictions = {el['image_id']: el for el in pred_json['annotations']}
    pairs = [(copy.deepcopy(gt_ann),
              copy.deepcopy(predictions[gt_ann['image_id']]))
             for gt_ann in gt_json['annotations']]
    stat = reference.pq_compute_single_core(0, pairs, gt_folder, pred_folder,
                                            categories)
    return stat, reference.average_pq(stat, categories)


def assert_results_close(results: dict,
                         expected: dict,
                         tol: float = 1e-9) -> None:
    """Same structure and values (to ``tol``) as a reference result."""
    for group in ('All', 'Things', 'Stuff'):
        assert results[group]['n'] == expected[group]['n'], group
        for key in ('pq', 'sq', 'rq'):
            assert abs(results[group][key] -
                       expected[group][key]) <= tol, (group, key,
                                                      results[group][key],
                                                      expected[group][key])
    assert set(results['per_class']) == set(expected['per_class'])
    for cat_id, values in expected['per_class'].items():
        for key in ('pq', 'sq', 'rq'):
            assert abs(results['per_class'][cat_id][key] -
                       values[key]) <= tol, (cat_id, key)


def assert_same_as_reference(gt_json: dict,
                             gt_folder: str,
                             pred_json: dict,
                             pred_folder: str,
                             nproc: int = 1):
    """Compare per-category tp / fp / fn / IoU sums and the averages with
    the reference; returns (our results, our PQStat)."""
    ref_stat, ref_results = reference_pq(gt_json, gt_folder, pred_json,
                                         pred_folder)
    stat, category_ids, _ = pq_compute_stat(gt_json, gt_folder, pred_json,
                                            pred_folder, nproc)
    for slot, cat_id in enumerate(category_ids):
        expected = ref_stat.pq_per_cat[cat_id]
        got = (stat.tp[slot], stat.fp[slot], stat.fn[slot])
        assert got == (expected.tp, expected.fp, expected.fn), (cat_id, got)
        assert abs(stat.iou[slot] - expected.iou) <= 1e-9, cat_id
    results = pq_compute(gt_json, gt_folder, pred_json, pred_folder, nproc)
    assert_results_close(results, ref_results)
    return results, stat


def relabel_prediction(id_map: np.ndarray, category_of_id: Dict[int, int],
                       rng: np.random.Generator) -> Tuple[np.ndarray, list]:
    """Give the segments of a prediction map fresh random ids (so that
    prediction ids never coincide with gt ids by construction)."""
    present = [i for i in np.unique(id_map) if i != 0]
    new_ids = rng.choice(np.arange(1, 1 << 24), len(present), replace=False)
    lut = {int(old): int(new) for old, new in zip(present, new_ids)}
    out = np.zeros_like(id_map)
    for old, new in lut.items():
        out[id_map == old] = new
    segments = [
        dict(id=lut[int(old)], category_id=int(category_of_id[int(old)]))
        for old in present
    ]
    return out, segments


def random_prediction(gt_map: np.ndarray, gt_segments: list,
                      category_ids: Sequence[int],
                      rng: np.random.Generator) -> Tuple[np.ndarray, list]:
    """A randomly degraded copy of a gt map: segments dropped to VOID or
    merged into a neighbour, shifted, split, mis-classified, new blobs,
    VOID patches; crowd and unannotated regions become ordinary segments."""
    height, width = gt_map.shape
    pred = gt_map.astype(np.int64).copy()
    category_of_id = {s['id']: s['category_id'] for s in gt_segments}
    next_id = int(max(list(category_of_id) + [int(gt_map.max())])) + 1
    for ann_id in np.unique(gt_map):
        ann_id = int(ann_id)
        if ann_id not in category_of_id:
            if ann_id != 0:  # unannotated gt region: predict something
                category_of_id[ann_id] = int(rng.choice(category_ids))
            continue
        mask = pred == ann_id
        action = rng.random()
        if action < 0.1:  # dropped
            pred[mask] = 0
        elif action < 0.2:  # merged into another segment
            other = int(rng.choice(list(category_of_id)))
            pred[mask] = other
        elif action < 0.35:  # shifted
            dy, dx = rng.integers(-4, 5, size=2)
            if rng.random() < 0.5:
                pred[mask] = 0
            pred[np.roll(np.roll(mask, dy, 0), dx, 1)] = ann_id
        elif action < 0.45:  # split in two
            cols = np.nonzero(mask.any(axis=0))[0]
            if cols.size > 1:
                cut = int(rng.integers(cols[0], cols[-1] + 1))
                part = mask.copy()
                part[:, :cut] = False
                pred[part] = next_id
                category_of_id[next_id] = category_of_id[ann_id]
                next_id += 1
        elif action < 0.55:  # mis-classified
            category_of_id[ann_id] = int(rng.choice(category_ids))
    for _ in range(int(rng.integers(1, 4))):  # new blobs and VOID patches
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        y1 = y0 + rng.integers(1, max(2, height // 3))
        x1 = x0 + rng.integers(1, max(2, width // 3))
        if rng.random() < 0.5:
            pred[y0:y1, x0:x1] = 0
        else:
            pred[y0:y1, x0:x1] = next_id
            category_of_id[next_id] = int(rng.choice(category_ids))
            next_id += 1
    return relabel_prediction(pred, category_of_id, rng)


def cityscapes_categories() -> list:
    """Categories of the 19 Cityscapes train ids (the fixture's ids)."""
    from cityscapesscripts.helpers.labels import labels
    return [
        dict(
            id=label.trainId, name=label.name, isthing=int(label.hasInstances))
        for label in labels
        if 0 <= label.trainId < 255 and not label.ignoreInEval
    ]
