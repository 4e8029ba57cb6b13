# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/compare_methods.py: two tiny entries and a broken
one, checked against tools/test.py on the same images and checkpoints."""
import glob
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.structures import INSTANCE_OFFSET, write_panoptic_ids

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

# Two of the repository's synthetic configs, cut down to run in seconds; the
# data root is the tool's fresh val set (it overrides it)
TINY_CONFIGS = {
    'tiny_fpn': '''
_base_ = [{base!r}]
model = dict(test_cfg=dict(rcnn=dict(score_thr=0.05)))
test_dataloader = dict(num_workers=0, persistent_workers=False)
''',
    'tiny_rtp': '''
_base_ = [{base!r}]
test_dataloader = dict(num_workers=0, persistent_workers=False)
'''
}
BASES = {
    'tiny_fpn': 'configs/panoptic_fpn/panoptic-fpn_r18_synthetic.py',
    'tiny_rtp': 'configs/realtime_panoptic/rtp_r18_synthetic.py'
}


def _tiny_entry(tmp_path, key: str, seed: int) -> tuple:
    """A config in ``tmp_path`` and a random-init checkpoint of it (with
    ``dataset_meta``, as the shipped ones); the entry and the model's
    number of parameters."""
    config = tmp_path / f'{key}.py'
    config.write_text(TINY_CONFIGS[key].format(
        base=osp.join(REPO_ROOT, BASES[key])))
    cfg = Config.fromfile(str(config))
    init_default_scope('mmpanoptic_plus')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = tmp_path / f'{key}.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(
                classes=('disc', 'square', 'triangle', 'sky', 'ground')))),
        str(checkpoint))
    entry = dict(
        key=key,
        name=key.replace('_', ' '),
        synthetic_config=str(config),
        checkpoint=str(checkpoint),
        paper_config=str(config),
        speed_options={},
        speed_note='')
    return entry, sum(param.numel() for param in model.parameters())


def _write_registry(tmp_path, entries) -> str:
    path = tmp_path / 'registry.py'
    path.write_text(f'methods = {entries!r}\n')
    return str(path)


def _tool_args(tmp_path, registry, out, *extra):
    return [
        '--registry', registry, '--out',
        str(out), '--val-size', '3', '--val-shape', '64', '64',
        '--val-seed', '5', '--speed-shape', '64', '64', '--speed-repeat',
        '1', '--warmup', '0', '--threads', '1', *extra
    ]


def _test_tool_metrics(test_tool, monkeypatch, tmp_path, entry, val_root):
    """tools/test.py on ``entry``'s config and checkpoint, on the same val
    set; its metrics from the JSON the runner writes."""
    work_dir = tmp_path / f'test_{entry["key"]}'
    monkeypatch.setattr(sys, 'argv', [
        'test.py', entry['synthetic_config'], entry['checkpoint'],
        '--work-dir',
        str(work_dir), '--cfg-options',
        f'test_dataloader.dataset.data_root={val_root}/'
    ])
    test_tool.main()
    metrics_files = glob.glob(str(work_dir / '*' / '*.json'))
    assert len(metrics_files) == 1
    with open(metrics_files[0]) as file:
        return json.load(file)


def test_table_equals_test_tool_and_broken_entry_is_reported(
        tmp_path, compare_tool, test_tool, monkeypatch):
    fpn, fpn_params = _tiny_entry(tmp_path, 'tiny_fpn', seed=0)
    rtp, rtp_params = _tiny_entry(tmp_path, 'tiny_rtp', seed=1)
    num_params = dict(tiny_fpn=fpn_params, tiny_rtp=rtp_params)
    broken = dict(
        fpn,
        key='broken',
        name='broken',
        synthetic_config=str(tmp_path / 'missing.py'),
        paper_config=str(tmp_path / 'missing.py'))
    registry = _write_registry(tmp_path, [fpn, broken, rtp])
    out = tmp_path / 'out'
    status = compare_tool.main(_tool_args(tmp_path, registry, out))
    assert status == 0  # two entries ran

    with open(out / 'results.json') as file:
        summary = json.load(file)
    table = (out / 'table.md').read_text()
    records = {record['key']: record for record in summary['entries']}
    assert list(records) == ['tiny_fpn', 'broken', 'tiny_rtp']

    # the broken entry: every part reported, the next entry still ran
    for part in ('accuracy', 'speed', 'complexity'):
        assert records['broken'][part]['status'] == 'error'
        assert 'missing.py' in records['broken'][part]['error']
    broken_rows = [row for row in table.splitlines()
                   if row.startswith('| broken |')]
    assert len(broken_rows) == 2
    assert all('error: FileNotFoundError' in row for row in broken_rows)

    val_root = osp.join(str(out), 'val_set')
    for entry in (fpn, rtp):
        record = records[entry['key']]
        accuracy = record['accuracy']
        assert accuracy['status'] == 'ok'
        reference = _test_tool_metrics(test_tool, monkeypatch, tmp_path,
                                       entry, val_root)
        for name in ('PQ', 'SQ', 'RQ', 'PQ_th', 'PQ_st', 'mIoU'):
            assert accuracy[name] == pytest.approx(
                reference[f'panoptic/{name}'], abs=1e-9), name
        # random weights still label some pixels right: the comparison is
        # not between two zeros
        assert accuracy['mIoU'] > 0
        row = next(row for row in table.splitlines()
                   if row.startswith(f'| {entry["name"]} |'))
        assert f'| {reference["panoptic/PQ"]:.1f} |' in row
        assert record['speed']['status'] == 'ok'
        assert record['speed']['total_ms'] > 0
        assert record['speed']['shape'] == [64, 64]
        assert record['complexity']['macs'] > 0
        assert record['complexity']['params'] == num_params[entry['key']]
    # the two random models differ: their numbers are their own
    assert records['tiny_fpn']['accuracy'] != records['tiny_rtp']['accuracy']

    picture = (out / 'comparison.png')
    assert picture.is_file()


def test_exit_code_when_every_entry_fails(tmp_path, compare_tool):
    broken = dict(
        key='broken',
        name='broken',
        synthetic_config=str(tmp_path / 'missing.py'),
        checkpoint=str(tmp_path / 'missing.pth'),
        paper_config=str(tmp_path / 'missing.py'))
    no_checkpoint = dict(broken, key='none', name='none', checkpoint=None)
    registry = _write_registry(tmp_path, [broken])
    out = tmp_path / 'out'
    args = _tool_args(tmp_path, registry, out, '--real-image', 'none')
    assert compare_tool.main(args) == 1
    # an entry with nothing to run (no checkpoint, no speed asked) has not
    # failed: not every entry failed
    registry = _write_registry(tmp_path, [broken, no_checkpoint])
    assert compare_tool.main(
        _tool_args(tmp_path, registry, out, '--real-image', 'none',
                   '--skip-speed', '--skip-complexity')) == 0
    table = (out / 'table.md').read_text()
    assert '| none | `missing.py` | - | no checkpoint |' in table


def test_repository_registry_names_existing_files(compare_tool):
    entries = compare_tool.load_registry(compare_tool.DEFAULT_REGISTRY)
    assert [entry['key'] for entry in entries] == [
        'panoptic_fpn', 'panoptic_deeplab', 'pisr', 'rtp', 'ciae',
        'unified_d2', 'pss'
    ]
    for entry in entries:
        for key in ('synthetic_config', 'paper_config', 'checkpoint'):
            if entry[key] is not None:
                assert osp.isfile(osp.join(REPO_ROOT, entry[key])), entry[key]
    chosen = compare_tool.load_registry(compare_tool.DEFAULT_REGISTRY,
                                        ['rtp', 'panoptic_fpn'])
    assert [entry['key'] for entry in chosen] == ['rtp', 'panoptic_fpn']


def test_registry_errors_are_explained(tmp_path, compare_tool):
    with pytest.raises(ValueError, match=r'unknown method keys \[\'nope\'\]'):
        compare_tool.load_registry(compare_tool.DEFAULT_REGISTRY, ['nope'])
    entry = dict(
        key='a',
        name='a',
        synthetic_config='a.py',
        checkpoint=None,
        paper_config='b.py')
    with pytest.raises(ValueError, match='share a key'):
        compare_tool.load_registry(_write_registry(tmp_path, [entry, entry]))
    incomplete = {k: v for k, v in entry.items() if k != 'paper_config'}
    with pytest.raises(ValueError, match='paper_config'):
        compare_tool.load_registry(_write_registry(tmp_path, [incomplete]))
    with pytest.raises(FileNotFoundError, match='registry not found'):
        compare_tool.load_registry(str(tmp_path / 'none.py'))
    # main() says so and exits with 2, before any work
    assert compare_tool.main([
        '--registry',
        str(tmp_path / 'none.py'), '--out',
        str(tmp_path / 'out')
    ]) == 2


def test_read_panoptic_gt_encodes_by_hand(tmp_path, compare_tool):
    # stuff listed first in the file: labels must still be things first
    categories = [
        dict(id=7, name='road', isthing=0, color=[1, 2, 3]),
        dict(id=3, name='car', isthing=1, color=[4, 5, 6]),
        dict(id=9, name='person', isthing=1, color=[7, 8, 9]),
    ]
    ids = np.array([[0, 11, 11], [12, 12, 13], [14, 14, 14]])
    segments = [
        dict(id=11, category_id=3, iscrowd=0),  # car instance 1
        dict(id=12, category_id=7, iscrowd=0),  # road
        dict(id=13, category_id=3, iscrowd=1),  # car crowd
        dict(id=14, category_id=9, iscrowd=0),  # person instance 2
    ]
    data = dict(
        images=[dict(id=5, file_name='a.jpg', height=3, width=3)],
        annotations=[
            dict(image_id=5, file_name='a.png', segments_info=segments)
        ],
        categories=categories)
    json_path = tmp_path / 'gt.json'
    json_path.write_text(json.dumps(data))
    write_panoptic_ids(str(tmp_path / 'gt' / 'a.png'), ids)
    gt = compare_tool.read_panoptic_gt(str(json_path), 'a.jpg')
    # labels: car 0, person 1, road 2; void = 3
    car_1 = 0 + 1 * INSTANCE_OFFSET
    person_2 = 1 + 2 * INSTANCE_OFFSET
    expected = np.array([[3, car_1, car_1], [2, 2, 0],
                         [person_2, person_2, person_2]])
    np.testing.assert_array_equal(gt['pan_map'], expected)
    assert gt['classes'] == ['car', 'person', 'road']
    assert gt['palette'] == [(4, 5, 6), (7, 8, 9), (1, 2, 3)]
    assert gt['file_name'] == 'a.jpg'
    with pytest.raises(KeyError, match='no image b.jpg'):
        compare_tool.read_panoptic_gt(str(json_path), 'b.jpg')


def test_format_table_cells(compare_tool):
    summary = dict(
        command='python x.py',
        machine=dict(cpu='cpu', cpu_count=2, torch='2', threads=1, gpu=None),
        run=dict(
            started='now',
            minutes=1.0,
            load_before=[1.0, 1.0, 1.0],
            load_after=[2.0, 2.0, 2.0],
            device='cpu',
            speed_shape=[8, 16],
            speed_repeat=2,
            warmup=1),
        val_set=dict(seed=3, size=4, shape=[8, 8]),
        notes=['a note'],
        entries=[
            dict(
                name='A',
                synthetic_config='c/a_synthetic.py',
                checkpoint='d/a.pth',
                paper_config='c/a_paper.py',
                speed_options={'model.x': 0.0},
                accuracy=dict(
                    status='ok',
                    PQ=12.345,
                    SQ=80.0,
                    RQ=15.0,
                    PQ_th=1.0,
                    PQ_st=30.06,
                    mIoU=50.0),
                speed=dict(
                    status='ok',
                    total_ms=1234.4,
                    network_ms=1000.0,
                    postprocess_ms=234.4),
                complexity=dict(status='ok', params=2.5e6, macs=3.6e9)),
            dict(
                name='B',
                synthetic_config='c/b.py',
                checkpoint=None,
                paper_config='c/b_paper.py',
                speed_options={},
                accuracy=dict(status='no checkpoint'),
                speed=dict(status='error', error='ValueError: a | b'),
                complexity=dict(status='skipped')),
        ])
    table = compare_tool.format_table(summary)
    assert ('| A | `a_synthetic.py` | a.pth | 12.3 | 80.0 | 15.0 | 1.0 | '
            '30.1 | 50.0 |') in table
    assert ('| A | `a_paper.py` | 2.5 | 4 | 1234 | 1000 | 234 | '
            '`model.x=0.0` |') in table
    assert '| B | `b.py` | - | no checkpoint |  |  |  |  |  |' in table
    # a "|" in an error message must not break the row
    assert ('| B | `b_paper.py` | skipped |  | error: ValueError: a / b |  '
            '|  | - |') in table
    assert 'Command: `python x.py`' in table
    assert '8x16' in table and 'seed 3' in table and '- a note' in table
