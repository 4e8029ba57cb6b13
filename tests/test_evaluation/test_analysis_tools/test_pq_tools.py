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
