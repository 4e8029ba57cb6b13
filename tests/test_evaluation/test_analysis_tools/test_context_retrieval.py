# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/context_retrieval.py on the tiny synthetic set
(tests/conftest.py: 8 train / 4 val images of 64x64) with a random-init PSS
of configs/pss/pss_r18_synthetic.py."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest

REPO = osp.join(osp.dirname(__file__), '..', '..', '..')
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'context_retrieval.py')


def _tool():
    spec = importlib.util.spec_from_file_location('context_retrieval', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _roots(synthetic_root):
    root = str(synthetic_root) + '/'
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ]


def test_tool_on_random_init_pss(synthetic_root, tmp_path):
    out = tmp_path / 'out'
    summary = _tool().main([
        osp.join(REPO, 'configs', 'pss', 'pss_r18_synthetic.py'), 'none',
        '--out',
        str(out), '--k', '3', '--num-pictures', '2', '--num-shown', '2',
        '--cfg-options'
    ] + _roots(synthetic_root))
    assert summary['images'] == {'val': 4, 'train': 8}
    results = summary['results']
    assert set(results) == {'embedding', 'mean_color'}
    for metrics in results.values():
        assert np.isfinite(metrics['CE']) and metrics['CE'] >= 0
        assert metrics['num_queries'] > 0
    with open(out / 'context_error.json') as file:
        assert json.load(file)['results'] == results
    table = (out / 'context_error.md').read_text()
    assert '| mean |' in table and 'CE (mean_color)' in table
    assert len(summary['pictures']) == 2
    picture = cv2.imread(summary['pictures'][0])
    # header + 2 descriptor rows of 128 px tiles; title + query + 2 columns
    assert picture.shape[0] > 2 * 128 and picture.shape[1] > 3 * 128
    assert summary['tsne'] is not None and osp.isfile(summary['tsne'])


def test_tool_errors_are_messages(synthetic_root, tmp_path):
    tool = _tool()
    with pytest.raises(SystemExit, match='no pred_embedding|needs a model'):
        tool.main([
            osp.join(REPO, 'configs', 'realtime_panoptic',
                     'rtp_r18_synthetic.py'), 'none', '--out',
            str(tmp_path), '--max-images', '1', '--descriptor', 'embedding',
            '--cfg-options'
        ] + _roots(synthetic_root))
    with pytest.raises(SystemExit):  # argparse: a missing checkpoint
        tool.main([
            osp.join(REPO, 'configs', 'pss', 'pss_r18_synthetic.py'),
            str(tmp_path / 'missing.pth'), '--out',
            str(tmp_path)
        ])
