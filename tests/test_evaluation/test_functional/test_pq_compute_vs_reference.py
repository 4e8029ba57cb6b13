# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""pq_compute against the reference (cityscapesscripts) on real samples and
on targeted perturbations of a synthetic scene."""
import copy
import json
import os.path as osp
import shutil

import cv2
import numpy as np
import panoptic_test_utils
import pytest
from panoptic_test_utils import (CAR, CATEGORIES, PERSON, ROAD, SKY,
                                 assert_results_close,
                                 assert_same_as_reference,
                                 cityscapes_categories, make_scene,
                                 random_prediction, reference_pq, write_set)

from mmpanoptic_plus.evaluation.functional import (parse_categories,
                                                   pq_compute,
                                                   pq_compute_stat,
                                                   pq_stat_single_file,
                                                   read_panoptic_ids)
from mmpanoptic_plus.structures import decode_png_id_runs

SCENE_CATEGORY_IDS = [c['id'] for c in CATEGORIES]


def write_case(tmp_path, gt_map, gt_segments, pred_map, pred_segments):
    gt_json, gt_folder = write_set(
        str(tmp_path / 'gt'), [('img', gt_map, gt_segments)], CATEGORIES)
    pred_json, pred_folder = write_set(
        str(tmp_path / 'pred'), [('img', pred_map, pred_segments)])
    return gt_json, gt_folder, pred_json, pred_folder


def pred_segments_of(pred_map, category_of_id):
    return [
        dict(id=int(i), category_id=category_of_id[int(i)])
        for i in np.unique(pred_map) if i != 0
    ]


def identity_prediction(gt_map, gt_segments):
    """The gt map as a prediction; the unannotated region becomes sky."""
    category_of_id = {s['id']: s['category_id'] for s in gt_segments}
    category_of_id[7777] = SKY
    return gt_map.astype(np.int64).copy(), category_of_id


# Each case edits the identity prediction: (pred_map, category_of_id) ->
# None, and states the (tp, fp, fn) of the category it targets.
def drop_person(pred, cats):
    pred[pred == 101] = 0


def merge_persons(pred, cats):
    # IoU of each person with the union of both is exactly 0.5: no match.
    pred[pred == 102] = 101


def split_car(pred, cats):
    part = (pred == 301)
    part[:, :30] = False  # 10 of 16 columns keep matching, 6 become a FP
    pred[part] = 990
    cats[990] = CAR


def shift_car(pred, cats):
    mask = pred == 302
    pred[mask] = 7001
    pred[np.roll(mask, 3, axis=1)] = 302


def misclassify_car(pred, cats):
    cats[301] = PERSON


def person_on_void(pred, cats):
    pred[0:10, 60:64] = 901  # entirely VOID: ignored
    cats[901] = PERSON


def car_half_on_void(pred, cats):
    pred[30:34, 56:64] = 902  # exactly half on VOID: not > 0.5, a FP
    cats[902] = CAR


def car_mostly_on_void(pred, cats):
    pred[36:40, 57:64] = 903  # 16 / 28 on VOID: ignored
    cats[903] = CAR


def car_on_car_crowd(pred, cats):
    pred[12:20, 30:46] = 904  # the whole car crowd: ignored
    cats[904] = CAR


def person_on_car_crowd(pred, cats):
    pred[12:20, 30:46] = 905  # crowd of another category: a FP
    cats[905] = PERSON


def car_partly_on_crowd_ignored(pred, cats):
    pred[12:20, 40:50] = 906  # 48 / 80 on the car crowd: ignored
    cats[906] = CAR


def car_partly_on_crowd_counted(pred, cats):
    pred[12:20, 42:52] = 907  # 32 / 80 on the car crowd: a FP
    cats[907] = CAR


def predict_unannotated_region(pred, cats):
    cats[7777] = PERSON  # the unannotated gt region is not VOID: a FP


# (case, category, expected (tp, fp, fn) of that category)
CASES = [
    (drop_person, PERSON, (1, 0, 1)),
    (merge_persons, PERSON, (0, 1, 2)),
    (split_car, CAR, (2, 1, 0)),
    (shift_car, CAR, (2, 0, 0)),
    (misclassify_car, CAR, (1, 0, 1)),
    (person_on_void, PERSON, (2, 0, 0)),
    (car_half_on_void, CAR, (2, 1, 0)),
    (car_mostly_on_void, CAR, (2, 0, 0)),
    (car_on_car_crowd, CAR, (2, 0, 0)),
    (person_on_car_crowd, PERSON, (2, 1, 0)),
    (car_partly_on_crowd_ignored, CAR, (2, 0, 0)),
    (car_partly_on_crowd_counted, CAR, (2, 1, 0)),
    (predict_unannotated_region, PERSON, (2, 1, 0)),
]


@pytest.mark.parametrize(
    'case,category,expected', CASES, ids=[c[0].__name__ for c in CASES])
def test_targeted_perturbations(tmp_path, case, category, expected):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    case(pred, cats)
    _, stat = assert_same_as_reference(*write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats)))
    slot = SCENE_CATEGORY_IDS.index(category)
    assert (stat.tp[slot], stat.fp[slot], stat.fn[slot]) == expected


def test_identity_prediction_of_scene_is_perfect(tmp_path):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    cats[7777] = SKY
    results, stat = assert_same_as_reference(*write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats)))
    # The sky prediction on the unannotated region is a FP of sky: PQ < 1.
    assert stat.fp.tolist() == [0, 0, 0, 1, 0, 0]
    pred[pred == 7777] = 0  # predicted as VOID instead
    results, _ = assert_same_as_reference(*write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats)))
    assert results['All'] == dict(pq=1.0, sq=1.0, rq=1.0, n=5)


@pytest.mark.parametrize('last_crowd_first', [False, True])
def test_last_crowd_segment_of_a_category_wins(tmp_path, last_crowd_first):
    gt_map, gt_segments = make_scene()
    gt_map[2:8, 40:50] = 351  # a second crowd of cars, over the sky
    crowd = dict(id=351, category_id=CAR, iscrowd=1, area=60)
    gt_segments = ([crowd] + gt_segments if last_crowd_first else gt_segments +
                   [crowd])
    pred, cats = identity_prediction(gt_map, gt_segments)
    pred[pred == 351] = 9001  # sky, not a car, on the second crowd
    pred[12:20, 30:46] = 904  # exactly on crowd 350
    cats[904] = CAR
    _, stat = assert_same_as_reference(*write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats)))
    # Only when 350 is the last car crowd in the JSON is 904 ignored.
    assert stat.fp[SCENE_CATEGORY_IDS.index(CAR)] == (0 if last_crowd_first
                                                      else 1)


def test_json_areas_and_gt_json_only_segments(tmp_path):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    gt_segments = copy.deepcopy(gt_segments)
    for segment in gt_segments:
        if segment['id'] == 301:  # annotated area used as is: IoU 192/292
            segment['area'] += 100
    gt_segments.append(dict(id=555, category_id=PERSON, iscrowd=0, area=9))
    _, stat = assert_same_as_reference(*write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats)))
    assert stat.fn[SCENE_CATEGORY_IDS.index(PERSON)] == 1  # 555: not in PNG
    assert stat.iou[SCENE_CATEGORY_IDS.index(CAR)] == pytest.approx(
        1 + 192 / 292, abs=1e-12)


def test_duplicated_prediction_ids_follow_the_reference(tmp_path):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    segments = pred_segments_of(pred, cats)
    # A repeated id: the reference's dict keeps the last entry (road).
    segments.append(dict(id=301, category_id=ROAD))
    _, stat = assert_same_as_reference(
        *write_case(tmp_path, gt_map, gt_segments, pred, segments))
    assert stat.fn[SCENE_CATEGORY_IDS.index(CAR)] == 1


@pytest.mark.parametrize('defect,message', [
    ('unknown_png_id', 'presented in PNG and not presented in JSON'),
    ('json_id_not_in_png', 'presented in JSON and not presented in PNG'),
    ('unknown_category', 'has unknown category_id 12345'),
])
def test_invalid_predictions_raise_like_the_reference(tmp_path, defect,
                                                      message):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    segments = pred_segments_of(pred, cats)
    if defect == 'unknown_png_id':
        segments = [s for s in segments if s['id'] != 302]
    elif defect == 'json_id_not_in_png':
        segments.append(dict(id=4242, category_id=CAR))
    else:
        segments[3]['category_id'] = 12345
    args = write_case(tmp_path, gt_map, gt_segments, pred, segments)
    with pytest.raises(KeyError, match=message):
        reference_pq(*args)
    with pytest.raises(KeyError, match=message):
        pq_compute(*args)


def test_missing_prediction_and_files(tmp_path):
    gt_map, gt_segments = make_scene()
    pred, cats = identity_prediction(gt_map, gt_segments)
    gt_json, gt_folder, pred_json, pred_folder = write_case(
        tmp_path, gt_map, gt_segments, pred, pred_segments_of(pred, cats))
    with pytest.raises(KeyError, match='no prediction for the image'):
        pq_compute(gt_json, gt_folder, dict(annotations=[]), pred_folder)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        pq_compute(gt_json, gt_folder, pred_json, str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='not found'):
        pq_compute(
            str(tmp_path / 'none.json'), gt_folder, pred_json, pred_folder)
    (tmp_path / 'pred' / 'img.png').unlink()
    with pytest.raises(FileNotFoundError, match='img.png'):
        pq_compute(gt_json, gt_folder, pred_json, pred_folder)


def random_set(tmp_path, num_images, seed):
    rng = np.random.default_rng(seed)
    gt_map, gt_segments = make_scene()
    gts, preds = [], []
    for i in range(num_images):
        pred_map, pred_segments = random_prediction(gt_map, gt_segments,
                                                    SCENE_CATEGORY_IDS, rng)
        gts.append((f'img{i}', gt_map, gt_segments))
        preds.append((f'img{i}', pred_map, pred_segments))
    gt_json, gt_folder = write_set(str(tmp_path / 'gt'), gts, CATEGORIES)
    pred_json, pred_folder = write_set(str(tmp_path / 'pred'), preds)
    return gt_json, gt_folder, pred_json, pred_folder


def test_random_perturbations_and_json_paths(tmp_path):
    gt_json, gt_folder, pred_json, pred_folder = random_set(tmp_path, 12, 0)
    results, stat = assert_same_as_reference(gt_json, gt_folder, pred_json,
                                             pred_folder)
    assert stat.tp.sum() > 0 and stat.fp.sum() > 0 and stat.fn.sum() > 0
    assert 0 < results['All']['pq'] < 1
    # Paths to the JSON files give the same results.
    from_paths = pq_compute(gt_folder + '.json', gt_folder,
                            pred_folder + '.json', pred_folder)
    assert from_paths == results


def test_two_processes_equal_one(tmp_path):
    args = random_set(tmp_path, 4, 1)
    one = pq_compute(*args)
    two = pq_compute(*args, nproc=2)
    assert_results_close(two, one, tol=1e-12)
    assert_same_as_reference(*args, nproc=2)


def shifted_scene_set(tmp_path, num_images, seed):
    """Images whose gt maps differ (the scene rolled sideways, areas kept)
    and whose predictions differ, so that decoding one image's PNG for
    another's would change the statistics."""
    rng = np.random.default_rng(seed)
    scene, gt_segments = make_scene()
    gts, preds = [], []
    for i in range(num_images):
        gt_map = np.roll(scene, 5 * i, axis=1)
        pred_map, pred_segments = random_prediction(gt_map, gt_segments,
                                                    SCENE_CATEGORY_IDS, rng)
        gts.append((f'img{i}', gt_map, gt_segments))
        preds.append((f'img{i}', pred_map, pred_segments))
    gt_json, gt_folder = write_set(str(tmp_path / 'gt'), gts, CATEGORIES)
    pred_json, pred_folder = write_set(str(tmp_path / 'pred'), preds)
    return gt_json, gt_folder, pred_json, pred_folder


def test_parallel_decoding_equals_serial(tmp_path):
    args = shifted_scene_set(tmp_path, 7, 5)
    gt_json, gt_folder, pred_json, pred_folder = args
    # naive reference: one image at a time, PNGs decoded serially
    _, _, slot_of_category = parse_categories(gt_json['categories'])
    per_image = [
        pq_stat_single_file(gt_ann, pred_ann, gt_folder, pred_folder,
                            slot_of_category)
        for gt_ann, pred_ann in zip(gt_json['annotations'],
                                    pred_json['annotations'])
    ]
    # the images really differ: a mix-up of PNGs would show
    assert len({(s.tp.tobytes(), s.fp.tobytes(), s.iou.tobytes())
                for s in per_image}) > 3
    expected_tp = np.sum([s.tp for s in per_image], axis=0)
    expected_iou = np.zeros_like(per_image[0].iou)
    for stat in per_image:  # same order of float additions as pq_compute
        expected_iou += stat.iou
    serial_results = pq_compute(*args, decode_threads=1)
    for nproc, threads in ((1, 1), (1, 2), (1, 3), (2, 2)):
        stat, _, _ = pq_compute_stat(
            *args, nproc=nproc, decode_threads=threads)
        assert stat.tp.tolist() == expected_tp.tolist(), (nproc, threads)
        assert stat.fp.tolist() == np.sum([s.fp for s in per_image],
                                          axis=0).tolist()
        assert stat.fn.tolist() == np.sum([s.fn for s in per_image],
                                          axis=0).tolist()
        results = pq_compute(*args, nproc=nproc, decode_threads=threads)
        if nproc == 1:  # same summation order: bit-identical
            assert stat.iou.tobytes() == expected_iou.tobytes()
            assert results == serial_results
        else:  # partial sums per process
            np.testing.assert_allclose(stat.iou, expected_iou, rtol=1e-15)
            assert_results_close(results, serial_results, tol=1e-15)
    assert_results_close(serial_results, reference_pq(*args)[1])


def test_parallel_decoding_raises_like_serial(tmp_path):
    args = shifted_scene_set(tmp_path, 5, 6)
    gt_json, gt_folder, pred_json, pred_folder = args
    (tmp_path / 'pred' / 'img3.png').unlink()
    for threads in (1, 2):
        with pytest.raises(FileNotFoundError, match='img3.png'):
            pq_compute(*args, decode_threads=threads)
    # An earlier image's error comes first, although the missing PNG of
    # the next image was already being decoded.
    bad = copy.deepcopy(pred_json)
    del bad['annotations'][2]['segments_info'][0]
    for threads in (1, 2):
        with pytest.raises(KeyError, match='presented in PNG and not'):
            pq_compute(gt_json, gt_folder, bad, pred_folder,
                       decode_threads=threads)
    # JSON errors of an image come before its PNG errors, as serially.
    bad = copy.deepcopy(pred_json)
    del bad['annotations'][3]['segments_info'][0]['category_id']
    for threads in (1, 2):
        with pytest.raises(KeyError, match='img3'):
            pq_compute(gt_json, gt_folder, bad, pred_folder,
                       decode_threads=threads)


def coco_sample(fixtures_dir, tmp_path):
    root = tmp_path / 'coco_panoptic_sample'
    shutil.copytree(fixtures_dir / 'coco_panoptic_sample', root)
    with open(root / 'panoptic_examples.json') as f:
        gt_json = json.load(f)
    return gt_json, str(root / 'panoptic_examples')


def cityscapes_sample(fixtures_dir, tmp_path):
    root = tmp_path / 'cityscapes_panoptic_sample'
    shutil.copytree(fixtures_dir / 'cityscapes_panoptic_sample', root)
    with open(root / 'gtFine' / 'cityscapes_panoptic_dummy_trainId.json') as f:
        gt_json = json.load(f)
    # The csCreatePanopticImgs JSON has no categories: the 19 train ids.
    gt_json['categories'] = cityscapes_categories()
    return gt_json, str(root / 'gtFine' / 'cityscapes_panoptic_dummy_trainId')


@pytest.mark.parametrize('sample', [coco_sample, cityscapes_sample])
def test_real_samples_against_themselves(fixtures_dir, tmp_path, sample):
    gt_json, gt_folder = sample(fixtures_dir, tmp_path)
    results, stat = assert_same_as_reference(gt_json, gt_folder, gt_json,
                                             gt_folder)
    assert stat.fp.sum() == 0 and stat.fn.sum() == 0
    for group in ('All', 'Things', 'Stuff'):
        assert results[group]['pq'] == 1.0 and results[group]['n'] > 0


@pytest.mark.parametrize('sample', [coco_sample, cityscapes_sample])
def test_real_samples_against_perturbed_copies(fixtures_dir, tmp_path, sample):
    gt_json, gt_folder = sample(fixtures_dir, tmp_path)
    category_ids = [c['id'] for c in gt_json['categories']]
    rng = np.random.default_rng(2)
    preds = []
    for gt_ann in gt_json['annotations']:
        gt_map = read_panoptic_ids(osp.join(gt_folder, gt_ann['file_name']))
        # Perturb among the categories of the image, so that
        # mis-classifications can still meet crowd regions and matches.
        own_categories = sorted(
            {s['category_id']
             for s in gt_ann['segments_info']}) or category_ids
        pred_map, pred_segments = random_prediction(gt_map,
                                                    gt_ann['segments_info'],
                                                    own_categories, rng)
        preds.append((gt_ann['image_id'], pred_map, pred_segments))
    pred_json, pred_folder = write_set(str(tmp_path / 'pred'), preds)
    results, stat = assert_same_as_reference(gt_json, gt_folder, pred_json,
                                             pred_folder)
    assert stat.tp.sum() > 0 and stat.fp.sum() + stat.fn.sum() > 0


def test_many_segments_use_wider_index_types(tmp_path):
    # 300 gt and ~300 predicted segments: uint16 indices and int64 pair
    # codes instead of uint8 / uint16.
    rng = np.random.default_rng(4)
    blocks = np.arange(1, 301).reshape(15, 20)
    gt_map = np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint32)
    category_of_id = {
        i: int(rng.choice(SCENE_CATEGORY_IDS))
        for i in range(1, 301)
    }
    crowd = set(rng.choice(np.arange(1, 301), 20, replace=False).tolist())
    gt_segments = [
        dict(id=i, category_id=c, iscrowd=int(i in crowd), area=16)
        for i, c in category_of_id.items()
    ]
    pred_map = np.roll(gt_map, 1, axis=1).astype(np.int64)  # IoU 12/20
    pred_map[rng.random(pred_map.shape) < 0.05] = 0
    cats = dict(category_of_id)
    for i in rng.choice(np.arange(1, 301), 30, replace=False):
        cats[int(i)] = int(rng.choice(SCENE_CATEGORY_IDS))
    _, stat = assert_same_as_reference(
        *write_case(tmp_path, gt_map, gt_segments, pred_map,
                    pred_segments_of(pred_map, cats)))
    assert stat.tp.sum() > 100 and stat.fp.sum() > 10


PNG_FILTERS = dict(
    none=cv2.IMWRITE_PNG_FILTER_NONE,
    sub=cv2.IMWRITE_PNG_FILTER_SUB,
    up=cv2.IMWRITE_PNG_FILTER_UP,
    paeth=cv2.IMWRITE_PNG_FILTER_PAETH)


def filtered_png_writer(gt_filter, pred_filter):
    """write_png with cv2 and one PNG filter for every row, chosen for the
    gt or prediction folder: None / Sub files take the run decoder, Up /
    Paeth files the general one."""

    def write_png(path, id_map):
        kind = pred_filter if '/pred/' in path.replace('\\', '/') else (
            gt_filter)
        id_map = id_map.astype(np.uint32)
        bgr = np.stack([(id_map >> s) & 255 for s in (16, 8, 0)], axis=-1)
        assert cv2.imwrite(path, bgr.astype(np.uint8),
                           [cv2.IMWRITE_PNG_FILTER, PNG_FILTERS[kind]])

    return write_png


@pytest.mark.parametrize('gt_filter, pred_filter', [('sub', 'sub'),
                                                    ('paeth', 'sub'),
                                                    ('none', 'up'),
                                                    ('up', 'paeth')])
def test_run_decoder_and_general_decoder_match_reference(
        tmp_path, monkeypatch, gt_filter, pred_filter):
    # The same sets (crowd, VOID, unmatched, >256 segments) through the run
    # decoder, the general decoder or one of each: reference numbers.
    monkeypatch.setattr(panoptic_test_utils, 'write_png',
                        filtered_png_writer(gt_filter, pred_filter))
    args = random_set(tmp_path / 'random', 4, 11)
    for folder, kind in ((args[1], gt_filter), (args[3], pred_filter)):
        png = osp.join(folder, 'img0.png')
        with open(png, 'rb') as f:
            runs = decode_png_id_runs(f.read())
        assert (runs is not None) == (kind in ('none', 'sub'))
    _, stat = assert_same_as_reference(*args)
    assert stat.tp.sum() > 0 and stat.fp.sum() > 0 and stat.fn.sum() > 0
    assert pq_compute(*args, decode_threads=2) == pq_compute(
        *args, decode_threads=1)

    rng = np.random.default_rng(12)
    blocks = np.arange(1, 301).reshape(15, 20)
    gt_map = np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint32)
    category_of_id = {
        i: int(rng.choice(SCENE_CATEGORY_IDS))
        for i in range(1, 301)
    }
    crowd = set(rng.choice(np.arange(1, 301), 20, replace=False).tolist())
    gt_segments = [
        dict(id=i, category_id=c, iscrowd=int(i in crowd), area=16)
        for i, c in category_of_id.items()
    ]
    pred_map = np.roll(gt_map, 1, axis=1).astype(np.int64) * 977
    pred_map[rng.random(pred_map.shape) < 0.05] = 0
    cats = {i * 977: c for i, c in category_of_id.items()}
    _, stat = assert_same_as_reference(*write_case(
        tmp_path / 'many', gt_map, gt_segments, pred_map,
        pred_segments_of(pred_map, cats)))
    assert stat.tp.sum() > 100 and stat.fp.sum() > 10
