# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import json

from mmpanoptic_plus.datasets import write_coco_panoptic_split


def _convert(task):
    stem, area = task
    return dict(id=stem, file_name=f'{stem}.jpg'), dict(
        image_id=stem, segments_info=[dict(id=1, area=area)])


def test_write_coco_panoptic_split_keeps_order_and_writes_json(tmp_path):
    categories = [dict(id=1, name='car', isthing=1)]
    tasks = [('b', 5), ('a', 7), ('c', 1)]
    for nproc in (1, 2):
        path = str(tmp_path / f'split{nproc}.json')
        written = write_coco_panoptic_split(_convert, tasks, categories, path,
                                            nproc)
        with open(path) as f:
            loaded = json.load(f)
        assert loaded == written
        assert [im['id'] for im in loaded['images']] == ['b', 'a', 'c']
        assert [a['segments_info'][0]['area']
                for a in loaded['annotations']] == [5, 7, 1]
        assert loaded['categories'] == categories
