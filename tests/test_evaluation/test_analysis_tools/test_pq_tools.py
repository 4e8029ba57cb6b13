# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/eval_panoptic.py and benchmark_pq.py."""
import importlib.util
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from panoptic_test_utils import assert_results_close, reference_pq

from mmpanoptic_plus.evaluation.functional import pq_compute

TOOLS = osp.join(
    osp.dirname(__file__), '..', '..', '..', 'tools', 'analysis_tools')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_panoptic_cli(fixtures_dir, tmp_path, capsys):
    root = tmp_path / 'coco'
    shutil.copytree(fixtures_dir / 'coco_panoptic_sample', root)
    gt_json_file = str(root / 'panoptic_examples.json')
    # A prediction: the gt with its first segment relabelled to 'bicycle'.
    with open(gt_json_file) as f:
        gt_json = json.load(f)
    pred_json = json.loads(json.dumps(gt_json))
    pred_json['annotations'][0]['segments_info'][0]['category_id'] = 2
    pred_json_file = str(tmp_path / 'pred.json')
    with open(pred_json_file, 'w') as f:
        json.dump(pred_json, f)
    results_file = str(tmp_path / 'results.json')

    results = load_tool('eval_panoptic').main([
        '--gt-json-file', gt_json_file, '--prediction-json-file',
        pred_json_file, '--prediction-folder',
        str(root / 'panoptic_examples'), '--results_file', results_file,
        '--nproc', '2'
    ])
    # --gt-folder defaults to the JSON path without its extension.
    _, expected = reference_pq(gt_json, str(root / 'panoptic_examples'),
                               pred_json, str(root / 'panoptic_examples'))
    assert_results_close(results, expected)
    assert results['All']['pq'] < 1
    with open(results_file) as f:
        written = json.load(f)
    assert written['All'] == results['All']
    assert written['per_class']['1'] == results['per_class'][1]
    out = capsys.readouterr().out
    assert 'person' in out and 'Things' in out
    assert f"{100 * results['All']['pq']:5.1f}" in out


def test_eval_panoptic_missing_json(tmp_path):
    with pytest.raises(SystemExit):
        load_tool('eval_panoptic').main(
            ['--gt-json-file', str(tmp_path / 'no.json')])


def test_benchmark_runs_and_agrees(tmp_path, capsys):
    summary = load_tool('benchmark_pq').main([
        '--size', '96', '160', '--num-images', '2', '--repeat', '1',
        '--out-dir',
        str(tmp_path)
    ])
    assert summary['results_equal'] is True
    assert summary['gt_segments_per_image'] > 10
    assert 0 < summary['PQ'] < 100
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last_line) == summary
    # The generated set is a valid COCO panoptic set for pq_compute too.
    results = pq_compute(
        str(tmp_path / 'gt.json'), str(tmp_path / 'gt'),
        str(tmp_path / 'pred.json'), str(tmp_path / 'pred'))
    assert np.isclose(100 * results['All']['pq'], summary['PQ'], atol=1e-4)


def test_benchmark_threads_and_without_hotcoco(tmp_path, capsys):
    summary = load_tool('benchmark_pq').main([
        '--size', '64', '96', '--num-images', '3', '--repeat', '1',
        '--threads', '1', '2', '--no-hotcoco', '--out-dir',
        str(tmp_path)
    ])
    out = capsys.readouterr().out
    assert 'hotcoco: skipped' in out
    assert summary['results_equal'] is True  # every thread count
    assert summary['threads'] == [1, 2]
    assert summary['hotcoco_version'] is None
    assert summary['hotcoco_equal'] is None
    for threads in ('1', '2'):
        row = summary['per_threads'][threads]
        assert row['pq_compute_ms_per_img'] > 0
        assert row['hotcoco_ms_per_img'] is None
    assert summary['pq_compute_ms_per_img'] == summary['per_threads']['1'][
        'pq_compute_ms_per_img']


def test_benchmark_against_hotcoco(tmp_path):
    pytest.importorskip('hotcoco')  # optional: pip install hotcoco
    summary = load_tool('benchmark_pq').main([
        '--size', '64', '96', '--num-images', '2', '--repeat', '1',
        '--threads', '1', '--out-dir',
        str(tmp_path)
    ])
    assert summary['hotcoco_equal'] is True
    assert summary['per_threads']['1']['hotcoco_ms_per_img'] > 0


def test_hotcoco_equal_rules():
    tool = load_tool('benchmark_pq')
    group = dict(pq=0.5, sq=0.8, rq=0.625, n=2)
    ours = dict(
        All=group,
        Things=group,
        Stuff=group,
        per_class={
            1: dict(pq=0.5, sq=0.8, rq=0.625),
            2: dict(pq=0.0, sq=0.0, rq=0.0)
        })
    hotcoco = json.loads(json.dumps(ours))
    hotcoco['per_class'] = {
        1: dict(pq=0.5, sq=0.8, rq=0.625, tp=1, fp=0, fn=1),
        # a class without segments: -1 in hotcoco, 0 in the reference
        2: dict(pq=-1.0, sq=-1.0, rq=-1.0, tp=0, fp=0, fn=0)
    }
    assert tool.hotcoco_equal(ours, hotcoco)
    hotcoco['per_class'][1]['sq'] = 0.7
    assert not tool.hotcoco_equal(ours, hotcoco)
    hotcoco['per_class'][1]['sq'] = 0.8
    hotcoco['Things'] = dict(group, n=3)
    assert not tool.hotcoco_equal(ours, hotcoco)
    hotcoco['Things'] = group
    ours['per_class'][2] = dict(pq=0.1, sq=0.1, rq=1.0)
    assert not tool.hotcoco_equal(ours, hotcoco)


def test_benchmark_notes_missing_hotcoco(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'hotcoco', None)  # import fails
    tool = load_tool('benchmark_pq')
    assert tool.hotcoco_version() is None
    summary = tool.main([
        '--size', '64', '96', '--num-images', '2', '--repeat', '1',
        '--threads', '1', '--out-dir',
        str(tmp_path)
    ])
    assert 'hotcoco: not installed' in capsys.readouterr().out
    assert summary['hotcoco_equal'] is None
    assert summary['results_equal'] is True


def test_benchmark_pil_written_pngs_take_the_general_decoder(tmp_path):
    from mmpanoptic_plus.structures import decode_png_id_runs
    summary = load_tool('benchmark_pq').main([
        '--size', '64', '96', '--num-images', '2', '--repeat', '1',
        '--threads', '1', '--no-hotcoco', '--png-writer', 'pil',
        '--out-dir',
        str(tmp_path)
    ])
    assert summary['png_writer'] == 'pil'
    assert summary['results_equal'] is True
    pngs = sorted((tmp_path / 'gt').glob('*.png'))
    assert pngs and all(
        decode_png_id_runs(png.read_bytes()) is None for png in pngs)
