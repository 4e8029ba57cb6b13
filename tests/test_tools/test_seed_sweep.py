# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/seed_sweep.py: the aggregation (mean, sample std,
min-max, difference to the first config) on hand-made numbers, the report,
the argument checks, and a real sweep (2 seeds x 2 iterations of a tiny
config) that --skip-train re-evaluates, in a subprocess, to the same
numbers, --resume continues, --collect reports and --tag keeps apart."""
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

TOOL = (Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' /
        'seed_sweep.py')


@pytest.fixture(scope='module')
def sweep():
    spec = importlib.util.spec_from_file_location('tool_seed_sweep', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(config, seed, pq, pq_th, pq_st):
    return dict(config=config, seed=seed,
                metrics=dict(PQ=pq, PQ_th=pq_th, PQ_st=pq_st, SQ=80.0))


def test_aggregate_hand_made(sweep):
    stats = sweep.aggregate([60.0, 62.0, 67.0])
    assert stats['n'] == 3 and stats['mean'] == pytest.approx(63.0)
    # deviations -3, -1, 4: (9 + 1 + 16) / (3 - 1) = 13
    assert stats['std'] == pytest.approx(math.sqrt(13.0))
    assert (stats['min'], stats['max']) == (60.0, 67.0)
    one = sweep.aggregate([41.5])
    assert (one['mean'], one['std'], one['min'], one['max']) == (41.5, None,
                                                                 41.5, 41.5)
    with pytest.raises(ValueError):
        sweep.aggregate([])


def test_summary_and_comparison_hand_made(sweep):
    records = [
        _record('a.py', 0, 50.0, 30.0, 90.0),
        _record('a.py', 1, 52.0, 32.0, 90.0),
        _record('a.py', 2, 54.0, 34.0, 90.0),
        _record('b.py', 2, 59.0, 39.0, 91.0),
        _record('b.py', 0, 55.0, 35.0, 91.0),
        _record('b.py', 1, 57.0, 37.0, 91.0),
        _record('c.py', 0, 51.0, 31.0, 90.0),
        _record('c.py', 1, 53.0, 33.0, 90.0),
        _record('c.py', 2, 60.0, 40.0, 90.0),
    ]
    summary = sweep.summarize(records, ['a.py', 'b.py', 'c.py', 'd.py'])
    assert [e['config'] for e in summary] == ['a.py', 'b.py', 'c.py', 'd.py']
    b_pq = summary[1]['metrics']['PQ']
    assert summary[1]['seeds'] == [0, 1, 2]
    assert b_pq['values'] == [55.0, 57.0, 59.0]  # sorted by seed
    assert (b_pq['mean'], b_pq['std']) == (pytest.approx(57.0),
                                           pytest.approx(2.0))
    assert summary[3]['metrics']['PQ'] == dict(values=[])  # no runs
    assert set(summary[0]['metrics']) == {'PQ', 'PQ_th', 'PQ_st'}

    rows = {r['config']: r['metrics'] for r in
            sweep.compare_to_first(summary)}
    # b - a = +5 > both stds (2, 2); ranges 55-59 and 50-54 apart
    assert rows['b.py']['PQ']['difference'] == pytest.approx(5.0)
    assert rows['b.py']['PQ']['beyond_std'] is True
    assert rows['b.py']['PQ']['beyond_range'] is True
    # c: mean 164 / 3, std sqrt(((-11/3)^2 + (-5/3)^2 + (16/3)^2) / 2)
    c_std = math.sqrt(((11 / 3)**2 + (5 / 3)**2 + (16 / 3)**2) / 2)
    assert summary[2]['metrics']['PQ']['std'] == pytest.approx(c_std)
    assert rows['c.py']['PQ']['difference'] == pytest.approx(164 / 3 - 52)
    assert rows['c.py']['PQ']['beyond_std'] is False
    assert rows['c.py']['PQ']['beyond_range'] is False
    # PQ_st: equal within each config, +1 for b: beyond the zero spread
    assert rows['b.py']['PQ_st']['beyond_std'] is True
    assert rows['d.py']['PQ']['difference'] is None


def test_markdown_report(sweep):
    records = [
        _record('a.py', 0, 50.0, 30.0, 90.0),
        _record('a.py', 1, 52.0, 32.0, 90.0),
        _record('b.py', 1, 57.04, 37.0, 91.0),
    ]
    summary = sweep.summarize(records, ['a.py', 'b.py'])
    failures = [dict(config='b.py', seed=0, error='exit status 1')]
    report = sweep.markdown_report(summary, [0, 1], failures, 'python x')
    lines = report.splitlines()
    assert '| config | metric | seed 0 | seed 1 | mean | std | min-max |' \
        in lines
    assert '| a.py | PQ | 50.0 | 52.0 | 51.0 | 1.4 | 50.0-52.0 |' in lines
    # one run: no std; the missing seed is a dash
    assert '| b.py | PQ | - | 57.0 | 57.0 | - | 57.0-57.0 |' in lines
    assert '| b.py | PQ | +6.0 | - | yes |' in lines
    assert '- b.py seed 0: exit status 1' in lines
    assert lines[1] == 'python x'


def test_names_and_options(sweep):
    assert sweep.run_name('configs/pisr/pdl_r18_synthetic.py') == \
        'pisr_pdl_r18_synthetic'
    assert sweep.run_name('configs/panoptic_deeplab/pdl_r18_synthetic.py') \
        == 'panoptic_deeplab_pdl_r18_synthetic'
    assert sweep.parse_cfg_options(
        ['a.b=1', 'c=None', 'd=[1,2]', 'e=x']) == {
            'a.b': 1, 'c': None, 'd': [1, 2], 'e': 'x'}
    with pytest.raises(ValueError, match='key=value'):
        sweep.parse_cfg_options(['a.b'])
    options = sweep.parse_cfg_options(
        ['load_from=w/seed{seed}/iter_9.pth', 'n=3', 'l=[a{seed},b]'])
    assert options['load_from'] == 'w/seed{seed}/iter_9.pth'
    assert sweep.options_for_seed(options, 7) == {
        'load_from': 'w/seed7/iter_9.pth', 'n': 3, 'l': ['a7', 'b']}
    # the template itself is left for the other seeds
    assert options['l'] == ['a{seed}', 'b']


def test_bad_arguments(sweep, tiny_train_config, synthetic_root, tmp_path,
                       capsys):
    base = ['--val-dir', str(synthetic_root), '--work-root', str(tmp_path)]
    with pytest.raises(SystemExit):
        sweep.parse_args([tiny_train_config, '--seeds', '0', '0'] + base)
    assert 'repeats a seed' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep.parse_args([str(tmp_path / 'none.py'), '--seeds', '0'] + base)
    assert 'config file not found' in capsys.readouterr().err
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit):
        sweep.parse_args([tiny_train_config, '--seeds', '0', '--val-dir',
                          str(empty), '--work-root', str(tmp_path)])
    assert 'panoptic_val.json' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep.parse_args([tiny_train_config, '--seeds', '0', '--cfg-options',
                          'novalue'] + base)
    assert 'key=value' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep.parse_args([tiny_train_config, '--seeds', '0', '--tag', 'a/b']
                         + base)
    assert '--tag must be' in capsys.readouterr().err


def test_sweep_end_to_end(sweep, tiny_train_config, synthetic_root,
                          tmp_path):
    """Two seeds, two iterations each (in this process: a subprocess costs
    the imports again); then one work dir re-evaluated by a subprocess
    (--skip-train, the default mode): the same numbers."""
    work_root = tmp_path / 'sweep'
    common = [
        tiny_train_config, '--val-dir',
        str(synthetic_root), '--work-root',
        str(work_root), '--cfg-options', 'train_dataloader.batch_size=1'
    ]
    assert sweep.main(common + ['--seeds', '0', '1', '--max-iters', '2',
                                '--in-process']) == 0
    result = json.loads((work_root / 'seed_sweep.json').read_text())
    assert not result['failures']
    assert [run['seed'] for run in result['runs']] == [0, 1]
    checkpoints = [Path(run['checkpoint']) for run in result['runs']]
    assert [c.name for c in checkpoints] == ['iter_2.pth'] * 2
    run_dir = work_root / f'{Path(tiny_train_config).parent.name}_' \
        'panoptic-fpn_tiny_synthetic'
    assert [c.parent for c in checkpoints] == [
        run_dir / 'seed0', run_dir / 'seed1']
    # the seeds reached the runs: different initial weights
    weights = [
        torch.load(c, map_location='cpu', weights_only=False)['state_dict']
        for c in checkpoints
    ]
    assert not torch.equal(weights[0]['backbone.conv1.weight'],
                           weights[1]['backbone.conv1.weight'])
    pq = result['summary'][0]['metrics']['PQ']
    values = [run['metrics']['PQ'] for run in result['runs']]
    assert pq['values'] == values and len(values) == 2
    assert pq['mean'] == pytest.approx(sum(values) / 2)
    assert pq['std'] == pytest.approx(abs(values[0] - values[1]) /
                                      math.sqrt(2))
    report = (work_root / 'seed_sweep.md').read_text()
    assert '| seed 0 | seed 1 | mean | std | min-max |' in report

    # a second stage of every seed: {seed} in a value becomes the run's seed
    stage2 = tmp_path / 'stage2'
    first_stage = str(run_dir / 'seed{seed}' / 'iter_2.pth')
    assert sweep.main([
        tiny_train_config, '--val-dir',
        str(synthetic_root), '--work-root',
        str(stage2), '--cfg-options', 'train_dataloader.batch_size=1',
        f'load_from={first_stage}', '--seeds', '0', '1', '--max-iters', '1',
        '--in-process', '--out', str(stage2 / 'report')
    ]) == 0
    for run in json.loads((stage2 / 'report.json').read_text())['runs']:
        loaded = str(run_dir / f"seed{run['seed']}" / 'iter_2.pth')
        assert run['cfg_options']['load_from'] == loaded
        logs = (stage2 / run_dir.name / f"seed{run['seed']}").glob('*/*.log')
        assert any(f'Load checkpoint from {loaded}' in log.read_text()
                   for log in logs), run['seed']

    out = tmp_path / 'again'
    assert sweep.main(common + ['--seeds', '1', '--skip-train', '--out',
                                str(out)]) == 0
    # an evaluation's log has its own name: it must not replace the log of
    # a training (here there is none: the runs above were in-process)
    assert (run_dir / 'seed1' / 'seed_sweep_eval.log').is_file()
    assert not (run_dir / 'seed1' / 'seed_sweep.log').exists()
    again = json.loads(out.with_suffix('.json').read_text())['runs']
    assert len(again) == 1 and again[0]['seed'] == 1
    assert again[0]['checkpoint'] == result['runs'][1]['checkpoint']
    for name in ('PQ', 'PQ_th', 'PQ_st'):
        assert again[0]['metrics'][name] == pytest.approx(
            result['runs'][1]['metrics'][name]), name

    # --resume continues seed 0 from iter_2 instead of starting over
    assert sweep.main(common + ['--seeds', '0', '--max-iters', '4',
                                '--resume', '--in-process', '--out',
                                str(tmp_path / 'resumed')]) == 0
    resumed = json.loads(
        (tmp_path / 'resumed.json').read_text())['runs'][0]
    assert Path(resumed['checkpoint']).name == 'iter_4.pth'
    logs = [log.read_text() for log in (run_dir / 'seed0').glob('*/*.log')]
    assert sum('resumed epoch: 0, iter: 2' in log for log in logs) == 1

    # --collect reports the records the runs left, running nothing
    assert sweep.main(common + ['--seeds', '0', '1', '2', '--collect',
                                '--out', str(tmp_path / 'collected')]) == 1
    collected = json.loads((tmp_path / 'collected.json').read_text())
    assert [run['checkpoint'] for run in collected['runs']] == [
        resumed['checkpoint'], result['runs'][1]['checkpoint']]
    assert collected['runs'][0]['metrics'] == resumed['metrics']
    assert [(f['seed'], 'no ' in f['error'])
            for f in collected['failures']] == [(2, True)]

    # --tag: an evaluation with other settings keeps its own records
    val_name = Path(synthetic_root).name
    first_record = (run_dir / 'seed1' / f'eval_{val_name}.json').read_text()
    tagged = common[:-1] + ['test_dataloader.batch_size=1']
    assert sweep.main(tagged + ['--seeds', '1', '--skip-train', '--in-process',
                                '--tag', 'batch1', '--out',
                                str(tmp_path / 'tagged')]) == 0
    assert (run_dir / 'seed1' / f'eval_{val_name}.json').read_text() == \
        first_record
    record = json.loads(
        (run_dir / 'seed1' / f'eval_{val_name}_batch1.json').read_text())
    assert record['tag'] == 'batch1'
    assert record['cfg_options']['test_dataloader.batch_size'] == 1
    assert sweep.main(common + ['--seeds', '1', '--collect', '--tag',
                                'batch1', '--out',
                                str(tmp_path / 'tag_collected')]) == 0
    assert json.loads((tmp_path / 'tag_collected.json').read_text()
                      )['runs'][0]['tag'] == 'batch1'
