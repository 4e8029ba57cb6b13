# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/analysis_tools/get_flops.py: MACs counted by hand."""
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmcv.ops import DeformConv2dPack
from mmengine.config import Config
from mmengine.model import BaseModel, ImgDataPreprocessor

from mmpanoptic_plus.registry import MODELS


class _TinyNetwork(BaseModel):
    """conv 3->4 (3x3) -> deformable conv 4->2 (3x3, with its 3x3 offset
    conv 4->18) -> sort (no counting rule); post-processing in predict."""

    def __init__(self):
        super().__init__(data_preprocessor=ImgDataPreprocessor())
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.deform = DeformConv2dPack(4, 2, 3, padding=1)

    def _forward(self, inputs, data_samples=None):
        features = self.deform(torch.relu(self.conv(inputs)))
        return dict(
            features=features, ranked=[torch.sort(features.flatten())[0]])

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self._forward(inputs, data_samples)


def test_network_complexity_counts_by_hand(get_flops_tool):
    model = _TinyNetwork().eval()
    batch = dict(
        inputs=[torch.zeros(3, 8, 8, dtype=torch.uint8)], data_samples=None)
    record = get_flops_tool.network_complexity(model, batch)
    pixels = 8 * 8
    conv = 4 * 3 * 3 * 3 * pixels
    offset_conv = 18 * 4 * 3 * 3 * pixels
    deform_conv = 2 * 4 * 3 * 3 * pixels
    assert record['macs'] == conv + offset_conv + deform_conv
    assert record['params'] == sum(p.numel() for p in model.parameters())
    assert record['uncounted_ops'] == {'aten::sort': 1}


TINY_RTP = '''
_base_ = [{base!r}]
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(in_channels=16, feat_channels=16,
                   norm_cfg=dict(type='GN', num_groups=4,
                                 requires_grad=True)))
'''


def test_cli_prints_one_json_line(tmp_path, capsys, get_flops_tool):
    repo = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
    config = tmp_path / 'tiny_rtp.py'
    config.write_text(
        TINY_RTP.format(
            base=osp.join(repo, 'configs', 'realtime_panoptic',
                          'rtp_r18_synthetic.py')))
    record = get_flops_tool.main([str(config), '--shape', '128', '128'])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == record
    assert record['shape'] == [128, 128]
    model = MODELS.build(Config.fromfile(str(config)).model)
    assert record['params'] == sum(p.numel() for p in model.parameters())
    # a fully convolutional network: 4x the pixels (multiples of the
    # largest stride, 128), 4x the MACs
    larger = get_flops_tool.main([str(config), '--shape', '256', '256'])
    assert larger['macs'] == pytest.approx(4 * record['macs'], rel=1e-3)
