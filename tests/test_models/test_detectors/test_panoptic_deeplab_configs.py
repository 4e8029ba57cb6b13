# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The Panoptic-DeepLab paper configs (and the PISR ones that inherit them)
against what they claim: detectron2's DSConv variant (depthwise-separable
ASPP), the crops, batches and resize rules of the recipes."""
from pathlib import Path

import pytest
from mmcv.cnn import DepthwiseSeparableConvModule
from mmengine.config import Config
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPModule

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

REPO_ROOT = Path(__file__).resolve().parents[3]
PAPER_CONFIGS = [
    'panoptic_deeplab/pdl_r50_city.py',
    'panoptic_deeplab/pdl_r50_coco.py',
    'pisr/pdl_r50_city.py',
    'pisr/pdl_r50_coco.py',
]
SYNTHETIC_CONFIGS = [
    'panoptic_deeplab/pdl_r18_synthetic.py', 'pisr/pdl_r18_synthetic.py'
]


def load(name):
    return Config.fromfile(str(REPO_ROOT / 'configs' / name))


@pytest.mark.parametrize('name', PAPER_CONFIGS)
def test_paper_configs_use_depthwise_separable_aspp(name):
    """The DSConv variant the configs name: every atrous ASPP branch of
    both decoders is depthwise-separable (the 1x1 branch is not)."""
    cfg = load(name)
    for head in ('semantic_head', 'instance_head'):
        decoder = MODELS.build(cfg.model[head].decoder)
        assert type(decoder.aspp) is DepthwiseSeparableASPPModule, head
        atrous = list(decoder.aspp)[1:]
        assert len(atrous) == 3
        for branch in atrous:
            assert isinstance(branch, DepthwiseSeparableConvModule)
            conv = branch.depthwise_conv.conv
            assert conv.groups == conv.in_channels == 2048
        for fusion in decoder.fusions:
            assert isinstance(fusion, DepthwiseSeparableConvModule)


@pytest.mark.parametrize('name', SYNTHETIC_CONFIGS)
def test_synthetic_configs_keep_the_measured_plain_aspp(name):
    cfg = load(name)
    for head in ('semantic_head', 'instance_head'):
        decoder = MODELS.build(cfg.model[head].decoder)
        assert type(decoder.aspp) is ASPPModule, head
