# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' / \
    'unified_panoptic_memory.py'


def test_measure_reports_p_and_the_avoided_matrix():
    spec = importlib.util.spec_from_file_location('unified_mem', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.measure(64, 96, 5, True, 1)
    assert out['grid'] == [16, 24] and out['pixels'] == 384
    assert out['channels_P'] == 5 + 53
    assert out['naive_affinity_matrix_gib'] == round(384**2 * 4 / 2**30, 1)
    assert out['peak_added_mib'] >= 0
