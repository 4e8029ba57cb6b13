# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Every PISR config has a baseline config without PISR that differs from it
only in the PISR keys (the two config dicts are diffed leaf by leaf), and
the new baselines (configs/maskformer/, configs/upernet/) build the base
models: mmdet's MaskFormer, UPerNetPISR without its PISR stage."""
import copy
import inspect
from pathlib import Path
from typing import Any, Dict

import pytest
from mmdet.models.detectors import MaskFormer, PanopticFPN
from mmengine.config import Config

from mmpanoptic_plus.models.detectors import (MaskFormerPISR,
                                              PanopticDeepLab,
                                              PanopticDeepLabPISR,
                                              PanopticFPNPISR, UPerNetPISR)
from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils import drop_pretrained_init, register_all_modules

register_all_modules()

CONFIGS = Path(__file__).resolve().parents[3] / 'configs'

#: configs/pisr/<name>.py -> its baseline, relative to configs/.
BASELINES = {
    'pdl_r50_city': 'panoptic_deeplab/pdl_r50_city',
    'pdl_r50_city_crop512': 'panoptic_deeplab/pdl_r50_city_crop512',
    'pdl_r50_coco': 'panoptic_deeplab/pdl_r50_coco',
    'pdl_r18_synthetic': 'panoptic_deeplab/pdl_r18_synthetic',
    'pfpn_r50_coco': 'panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco',
    'pfpn_r18_synthetic': 'panoptic_fpn/panoptic-fpn_r18_synthetic',
    'maskformer_r50_ade20k': 'maskformer/maskformer_r50_ade20k',
    'maskformer_r101_ade20k': 'maskformer/maskformer_r101_ade20k',
    'maskformer_r50_coco': 'maskformer/maskformer_r50_coco',
    'maskformer_r101_coco': 'maskformer/maskformer_r101_coco',
    'maskformer_r18_synthetic': 'maskformer/maskformer_r18_synthetic',
    'upernet_r50_coco': 'upernet/upernet_r50_coco',
    'upernet_swin-l_coco': 'upernet/upernet_swin-l_coco',
    'upernet_r18_synthetic': 'upernet/upernet_r18_synthetic',
}

#: configs/pisr/<name>.py that are another PISR config at another width
#: (the shipped checkpoint's half-width model) -> that config: compared with
#: it, not with a baseline of their own.
WIDTH_VARIANTS = {'pdl_r18-half_synthetic': 'pdl_r18_synthetic'}

#: (baseline class, PISR class) of each family, by config name prefix.
CLASSES = {
    'pdl': (PanopticDeepLab, PanopticDeepLabPISR),
    'pfpn': (PanopticFPN, PanopticFPNPISR),
    'maskformer': (MaskFormer, MaskFormerPISR),
    'upernet': (UPerNetPISR, UPerNetPISR),
}

#: UPerNetPISR's own switch (pisr=None is the base model): the arguments of
#: its PISR stage, from its docstring.
UPERNET_PISR_ARGS = {
    'pisr', 'gamma', 'pisr_center_threshold', 'pisr_nms_kernel',
    'pisr_heatmap_normalizer', 'final_input', 'final_semantic_head',
    'final_instance_head'
}


def flatten(node: Any, prefix: str = '') -> Dict[str, Any]:
    """Leaves of a nested config by dotted path (list items by index)."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return {prefix: node}
    leaves = {prefix: type(node).__name__} if prefix else {}
    for key, value in items:
        leaves.update(flatten(value, f'{prefix}.{key}' if prefix else
                              str(key)))
    return leaves


def differing_paths(first: Dict, second: Dict) -> set:
    a, b = flatten(first), flatten(second)
    missing = object()
    return {
        path
        for path in set(a) | set(b)
        if a.get(path, missing) != b.get(path, missing)
    }


def load(relative: str) -> Config:
    return Config.fromfile(str(CONFIGS / f'{relative}.py'))


def build_without_weights(cfg: Config):
    """The config's model, the pretrained-weight init configs dropped."""
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained_init(model_cfg)
    return MODELS.build(model_cfg)


def pisr_arguments(family: str) -> set:
    """The constructor arguments the PISR class has and its base lacks."""
    base, pisr = CLASSES[family]
    if base is pisr:
        return UPERNET_PISR_ARGS
    return (set(inspect.signature(pisr.__init__).parameters) -
            set(inspect.signature(base.__init__).parameters))


def test_flatten_and_diff_hand_made():
    first = dict(a=1, b=dict(c=[1, dict(d=2)]), e=None)
    second = dict(a=1, b=dict(c=[1, dict(d=3)]), e=dict(f=1))
    assert differing_paths(first, second) == {'b.c.1.d', 'e', 'e.f'}
    assert differing_paths(first, copy.deepcopy(first)) == set()


def test_every_pisr_config_has_a_baseline():
    names = {path.stem for path in (CONFIGS / 'pisr').glob('*.py')}
    assert names == set(BASELINES) | set(WIDTH_VARIANTS)
    assert set(WIDTH_VARIANTS.values()) <= set(BASELINES)
    for baseline in BASELINES.values():
        assert (CONFIGS / f'{baseline}.py').is_file(), baseline


@pytest.mark.parametrize('name', sorted(BASELINES))
def test_baseline_differs_only_in_the_pisr_keys(name):
    family = name.split('_')[0]
    base_cls, pisr_cls = CLASSES[family]
    baseline, pisr = load(BASELINES[name]), load(f'pisr/{name}')
    paths = differing_paths(baseline.to_dict(), pisr.to_dict())
    assert paths, 'identical configs'
    outside_model = sorted(p for p in paths if not p.startswith('model.'))
    assert not outside_model, outside_model
    keys = {path.split('.')[1] for path in paths}
    allowed = pisr_arguments(family)
    if base_cls is not pisr_cls:
        allowed = allowed | {'type'}
    assert keys <= allowed, keys - allowed
    assert 'pisr' in keys
    assert MODELS.get(baseline.model.type) is base_cls
    assert MODELS.get(pisr.model.type) is pisr_cls
    assert baseline.model.get('pisr') is None
    assert pisr.model.pisr.type == 'PISREncoder'


def test_half_width_variant_differs_only_in_the_width():
    """The shipped PISR checkpoint's config is pdl_r18_synthetic with
    ResNet-18 at 32 base channels, the decoders reading its 32..256-wide
    stages: nothing else (data, schedule, heads, PISR) differs."""
    half = load('pisr/pdl_r18-half_synthetic')
    full = load(f"pisr/{WIDTH_VARIANTS['pdl_r18-half_synthetic']}")
    assert differing_paths(full.to_dict(), half.to_dict()) == {
        'model.backbone.base_channels',
        # the config's own variable, which the decoders' widths come from
        *(f'backbone_channels.{i}' for i in range(4)),
        *(f'model.{head}.decoder.in_channels.{i}'
          for head in ('semantic_head', 'instance_head') for i in range(4))
    }
    assert half.model.backbone.base_channels == 32
    assert tuple(half.model.semantic_head.decoder.in_channels) == (32, 64,
                                                                   128, 256)
    model = build_without_weights(half)
    assert model.backbone.layer4[-1].conv2.out_channels == 256
    # fp16 weights fit the 8 MB limit of a shipped checkpoint
    assert 2 * sum(p.numel() for p in model.parameters()) < 8 * 2**20


@pytest.mark.parametrize('name', [
    'maskformer/maskformer_r50_ade20k', 'maskformer/maskformer_r101_ade20k',
    'maskformer/maskformer_r50_coco', 'maskformer/maskformer_r101_coco',
    'maskformer/maskformer_r18_synthetic'
])
def test_maskformer_baselines_build_mmdet_maskformer(name):
    cfg = load(name)
    model = build_without_weights(cfg)
    assert type(model) is MaskFormer
    head = model.panoptic_head
    classes = {'ade20k': (100, 50), 'coco': (80, 53), 'synthetic': (3, 2)}
    assert (head.num_things_classes,
            head.num_stuff_classes) == classes[name.split('_')[-1]]
    depth = {'r18': 18, 'r50': 50, 'r101': 101}[name.split('_')[1]]
    assert model.backbone.depth == depth
    if depth != 18:
        assert head.num_queries == 100
        assert cfg.model.backbone.init_cfg.checkpoint == \
            f'torchvision://resnet{depth}'


@pytest.mark.parametrize('name', [
    'upernet/upernet_r50_coco', 'upernet/upernet_swin-l_coco',
    'upernet/upernet_r18_synthetic'
])
def test_upernet_baselines_build_without_pisr(name):
    cfg = load(name)
    model = build_without_weights(cfg)
    assert type(model) is UPerNetPISR and not model.with_pisr
    assert not any('pisr' in key or key.startswith('final_')
                   for key in model.state_dict())
    channels = 64 if 'synthetic' in name else 512
    assert model.neck.channels == channels
    assert model.semantic_head.decoder is None
