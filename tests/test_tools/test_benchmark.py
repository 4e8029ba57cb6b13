# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py on a tiny Panoptic FPN."""
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmdet.models import PanopticFPN
from mmengine.config import Config
from mmengine.model import BaseModel

from mmpanoptic_plus.registry import MODELS

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

TINY_PANOPTIC_FPN = '''
_base_ = [{model_base!r}]
default_scope = 'mmpanoptic_plus'
num_things_classes = 3
num_stuff_classes = 2
channels = 16
model = dict(
    {model_type}
    backbone=dict(depth=18, base_channels=8, frozen_stages=-1,
                  norm_eval=False,
                  init_cfg=dict(type='Pretrained',
                                checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=32,
                       num_classes=num_things_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(num_convs=1, in_channels=channels,
                       conv_out_channels=channels,
                       num_classes=num_things_classes)),
    semantic_head=dict(num_things_classes=num_things_classes,
                       num_stuff_classes=num_stuff_classes,
                       in_channels=channels, inner_channels=8,
                       norm_cfg=dict(type='GN', num_groups=4,
                                     requires_grad=True)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50),
                  rcnn=dict(score_thr=0.05, max_per_img=20),
                  panoptic=dict(stuff_area_limit=16)))
'''


@MODELS.register_module(force=True)
class _PanopticFPNWithoutNetworkOnly(PanopticFPN):
    """A model whose network cannot run alone."""

    def _forward(self, batch_inputs, batch_data_samples):
        raise NotImplementedError('no tensor mode here')


def _write_config(tmp_path, name='tiny_fpn.py', model_type=''):
    path = tmp_path / name
    path.write_text(
        TINY_PANOPTIC_FPN.format(
            model_base=osp.join(REPO_ROOT, 'configs', '_base_', 'models',
                                'panoptic_fpn_r50_fpn.py'),
            model_type=model_type))
    return str(path)


def _last_json_line(capsys):
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1]), lines


def test_single_config_json_is_consistent(tmp_path, capsys, benchmark_tool):
    config = _write_config(tmp_path)
    summary = benchmark_tool.main([
        config, '--shape', '64', '64', '--repeat', '1', '--warmup', '1',
        '--threads', '1'
    ])
    record, lines = _last_json_line(capsys)
    assert record == summary
    assert record['config'] == config
    assert record['shape'] == [64, 64]
    assert record['device'] == 'cpu' and record['repeat'] == 1
    assert record['total_ms'] > 0 and record['network_ms'] > 0
    assert record['total_ms'] >= record['network_ms']
    assert record['postprocess_ms'] == pytest.approx(
        record['total_ms'] - record['network_ms'], abs=1e-3)
    assert record['fps'] == pytest.approx(
        1000.0 / record['total_ms'], rel=1e-3)
    # Panoptic FPN is two-stage: its mmdet _forward is not predict's network
    assert record['network_method'] == 'modules'
    assert record['network_ms'] == record['network_modules_ms']
    assert record['postprocess_ms'] > 0  # measured directly in this mode
    assert record['network_forward_ms'] > 0
    assert any('two-stage model' in note for note in record['notes'])
    # readable table above the JSON line
    text = '\n'.join(lines[:-1])
    for stage in ('total', 'network', 'postprocess'):
        assert f'  {stage} ' in text


def test_several_configs_give_ratio_table(tmp_path, capsys, benchmark_tool):
    small = _write_config(tmp_path, 'a.py')
    summary = benchmark_tool.main([
        '--configs', small, small, '--shape', '32', '48', '--repeat', '1',
        '--warmup', '1'
    ])
    record, lines = _last_json_line(capsys)
    assert record == summary
    assert [r['config'] for r in record['results']] == [small, small]
    assert all(r['shape'] == [32, 48] for r in record['results'])
    reference, other = record['results']
    # a tiny model's post-processing can round to 0.000 ms on a fast
    # machine; a ratio to zero is then undefined and reported as None
    expected_post = 1.0 if reference['postprocess_ms'] else None
    assert record['ratios'][0] == dict(
        config=small, total=1.0, network=1.0, postprocess=expected_post)
    assert record['ratios'][1]['postprocess'] == (
        None if not reference['postprocess_ms'] else pytest.approx(
            other['postprocess_ms'] / reference['postprocess_ms'], abs=1e-3))
    assert record['ratios'][1]['total'] == pytest.approx(
        other['total_ms'] / reference['total_ms'], abs=1e-3)
    assert any(line.startswith('ratios to ') for line in lines)


def test_ratio_table_by_hand(benchmark_tool):
    records = [
        dict(config='a', total_ms=4.0, network_ms=3.0, postprocess_ms=0.0),
        dict(config='b', total_ms=6.0, network_ms=4.0, postprocess_ms=2.0),
        dict(config='c', total_ms=2.0, network_ms=None, postprocess_ms=1.0),
    ]
    assert benchmark_tool.ratio_table(records) == [
        dict(config='a', total=1.0, network=1.0, postprocess=None),
        dict(config='b', total=1.5, network=1.333, postprocess=None),
        dict(config='c', total=0.5, network=None, postprocess=None),
    ]


def test_checkpoint_weights_are_loaded(tmp_path, capsys, benchmark_tool):
    config = _write_config(tmp_path)
    cfg = Config.fromfile(config)
    model = benchmark_tool.build_model(cfg, None, 'cpu')
    with torch.no_grad():
        model.semantic_head.conv_logits.bias.fill_(0.25)
    checkpoint = tmp_path / 'model.pth'
    torch.save(
        dict(
            meta=dict(dataset_meta=dict(classes=('a', 'b', 'c', 'd', 'e'))),
            state_dict=model.state_dict()), str(checkpoint))

    loaded = benchmark_tool.build_model(cfg, str(checkpoint), 'cpu')
    assert torch.equal(loaded.semantic_head.conv_logits.bias,
                       torch.full((3, ), 0.25))
    assert loaded.dataset_meta['classes'] == ('a', 'b', 'c', 'd', 'e')
    assert not loaded.training
    benchmark_tool.main([
        config, '--checkpoint',
        str(checkpoint), '--shape', '32', '32', '--repeat', '1'
    ])
    record, _ = _last_json_line(capsys)
    assert not any('random weights' in note for note in record['notes'])


def test_failing_forward_falls_back_to_module_time(tmp_path, capsys,
                                                  benchmark_tool):
    config = _write_config(
        tmp_path, model_type="type='_PanopticFPNWithoutNetworkOnly',")
    benchmark_tool.main([config, '--shape', '32', '32', '--repeat', '1'])
    record, _ = _last_json_line(capsys)
    assert record['network_forward_ms'] is None
    assert record['network_method'] == 'modules'
    assert 0 < record['network_ms'] <= record['total_ms']
    assert any('no tensor mode here' in note for note in record['notes'])
    with pytest.raises(RuntimeError, match='no tensor mode here'):
        benchmark_tool.main([
            config, '--shape', '32', '32', '--repeat', '1', '--network',
            'forward'
        ])


class _FakeClock:
    """A deterministic stand-in for ``time.perf_counter``: time only moves
    when a fake sleep says so, so the timing test cannot flake on a loaded
    machine."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


_CLOCK = _FakeClock()


class _Sleep(nn.Module):
    """Sleeps (on the fake clock), optionally inside a child that sleeps
    too."""

    def __init__(self, seconds, child=None):
        super().__init__()
        self.seconds = seconds
        self.child = child

    def forward(self, x):
        _CLOCK.sleep(self.seconds)
        return x if self.child is None else self.child(x)


class _SleepyModel(BaseModel):
    """Network: 10 ms outer + 10 ms nested module; post-processing: 30 ms
    outside any module."""

    def __init__(self):
        super().__init__()
        self.network = _Sleep(0.01, child=_Sleep(0.01))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = self.network(inputs)
        if mode == 'predict':
            _CLOCK.sleep(0.03)
        return features


def test_time_model_separates_network_from_postprocessing(
        benchmark_tool, monkeypatch):
    monkeypatch.setattr(benchmark_tool, 'time', _CLOCK)
    model = _SleepyModel()
    batch = dict(inputs=torch.zeros(1, 2), data_samples=None)
    timing = benchmark_tool.time_model(model, batch, repeat=3, warmup=1,
                                       device='cpu')
    assert timing['total_ms'] == pytest.approx(50.0)
    assert timing['network_forward_ms'] == pytest.approx(20.0)
    # only the 30 ms outside modules: the nested module is counted once, in
    # the outer one's call
    assert timing['outside_modules_ms'] == pytest.approx(30.0)
    assert timing['preprocess_ms'] == pytest.approx(0.0)


class _VaryingModel(BaseModel):
    """Network: 10 ms; post-processing outside modules: the next of
    ``delays`` at each predict call."""

    def __init__(self, delays):
        super().__init__()
        self.network = _Sleep(0.01)
        self.delays = list(delays)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = self.network(inputs)
        if mode == 'predict':
            _CLOCK.sleep(self.delays.pop(0))
        return features


@pytest.mark.parametrize('statistic, expected_ms', [('mean', 60.0),
                                                    ('min', 40.0)])
def test_time_model_mean_or_best(benchmark_tool, monkeypatch, statistic,
                                 expected_ms):
    monkeypatch.setattr(benchmark_tool, 'time', _CLOCK)
    # each round: predict (total), then predict with the module timer
    delays = [0.05, 0.06, 0.03, 0.04, 0.07, 0.08]
    model = _VaryingModel(delays)
    batch = dict(inputs=torch.zeros(1, 2), data_samples=None)
    timing = benchmark_tool.time_model(
        model, batch, repeat=3, warmup=0, device='cpu', statistic=statistic)
    assert not model.delays  # every delay used, in that order
    # totals 10 + 50, 10 + 30, 10 + 70 ms; outside modules 60, 40, 80 ms
    assert timing['total_ms'] == pytest.approx(expected_ms)
    assert timing['outside_modules_ms'] == pytest.approx(expected_ms)
    assert timing['network_forward_ms'] == pytest.approx(10.0)
    with pytest.raises(ValueError, match='statistic'):
        benchmark_tool.time_model(model, batch, 1, 0, 'cpu', 'median')


def test_time_model_quick_runs_predict_once_per_round(
        benchmark_tool, monkeypatch):
    monkeypatch.setattr(benchmark_tool, 'time', _CLOCK)
    # one warm-up and two timed rounds, one predict each (a fourth call
    # would pop from an empty list)
    model = _VaryingModel([0.05, 0.03, 0.04])
    batch = dict(inputs=torch.zeros(1, 2), data_samples=None)
    timing = benchmark_tool.time_model(
        model, batch, repeat=2, warmup=1, device='cpu', statistic='mean',
        quick=True, run_forward=False)
    assert not model.delays
    # total = preprocess (0) + the timed predict: 10 + 30, 10 + 40 ms
    assert timing['total_ms'] == pytest.approx(45.0)
    assert timing['outside_modules_ms'] == pytest.approx(35.0)
    assert timing['network_forward_ms'] is None
    assert timing['forward_error'] is None
    # not run is not failed: a two-stage model still says why "modules"
    two_stage = nn.Module()
    two_stage.rpn_head, two_stage.roi_head = nn.Identity(), nn.Identity()
    method, notes = benchmark_tool.choose_network_method(
        two_stage, timing, 'auto')
    assert method == 'modules' and 'two-stage' in notes[0]


def test_choose_network_method(benchmark_tool):
    one_stage = nn.Module()
    two_stage = nn.Module()
    two_stage.rpn_head, two_stage.roi_head = nn.Identity(), nn.Identity()
    timing = dict(
        total_ms=100.0,
        network_forward_ms=60.0,
        outside_modules_ms=45.0,
        forward_error=None)
    choose = benchmark_tool.choose_network_method
    assert choose(one_stage, timing, 'auto') == ('forward', [])
    assert choose(two_stage, timing, 'auto')[0] == 'modules'
    assert choose(two_stage, timing, 'forward') == ('forward', [])
    assert choose(one_stage, timing, 'modules') == ('modules', [])
    slow_forward = dict(timing, network_forward_ms=120.0)
    method, notes = choose(one_stage, slow_forward, 'auto')
    assert method == 'modules' and 'longer than predict' in notes[0]


def test_make_batch_is_a_packed_random_image(benchmark_tool):
    batch = benchmark_tool.make_batch(40, 56)
    image = batch['inputs'][0]
    assert image.shape == (3, 40, 56) and image.dtype == torch.uint8
    meta = batch['data_samples'][0].metainfo
    assert meta['ori_shape'] == meta['img_shape'] == (40, 56)
    assert torch.equal(image, benchmark_tool.make_batch(40, 56)['inputs'][0])


def test_bad_arguments_are_refused(tmp_path, benchmark_tool):
    with pytest.raises(SystemExit):
        benchmark_tool.parse_args(['--shape', '8', '8'])  # no config
    with pytest.raises(SystemExit):
        benchmark_tool.parse_args(
            ['a.py', '--shape', '8', '8', '--checkpoint', 'x', 'y'])
    with pytest.raises(FileNotFoundError, match='config file not found'):
        benchmark_tool.main(
            [str(tmp_path / 'missing.py'), '--shape', '8', '8'])


def test_config_options_apply_to_one_config(tmp_path, capsys,
                                            benchmark_tool):
    small = _write_config(tmp_path, 'a.py')
    args = benchmark_tool.parse_args([
        '--configs', small, small, '--shape', '8', '8', '--config-options',
        '1', 'model.test_cfg.rcnn.max_per_img=3', 'model.x=[1,2]'
    ])
    assert args.config_options == [{}, {
        'model.test_cfg.rcnn.max_per_img': 3,
        'model.x': [1, 2]
    }]
    for bad in (['2', 'a=1'], ['x', 'a=1'], ['0', 'novalue']):
        with pytest.raises(SystemExit):
            benchmark_tool.parse_args(
                ['--configs', small, small, '--shape', '8', '8',
                 '--config-options'] + bad)
    summary = benchmark_tool.main([
        '--configs', small, small, '--shape', '32', '48', '--repeat', '1',
        '--warmup', '0', '--config-options', '1',
        'model.test_cfg.rcnn.max_per_img=3'
    ])
    first, second = summary['results']
    assert 'config_options' not in first
    assert second['config_options'] == {'model.test_cfg.rcnn.max_per_img': 3}
