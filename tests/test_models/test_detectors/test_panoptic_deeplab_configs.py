# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The Panoptic-DeepLab paper configs (and the PISR ones that inherit them)
against what they claim: detectron2's DSConv variant (depthwise-separable
ASPP), the crops, batches and resize rules of the recipes."""
import copy
from pathlib import Path

import pytest
from mmcv.cnn import DepthwiseSeparableConvModule
from mmengine.config import Config
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPModule

from mmpanoptic_plus.registry import DATASETS, MODELS
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


def _fixture_dataset(cfg, loader, root, ann_file, data_prefix, pipeline,
                     **extra):
    """The config's dataset on a fixture, with another pipeline."""
    dataset_cfg = copy.deepcopy(cfg[loader].dataset)
    dataset_cfg.update(
        data_root=root,
        ann_file=ann_file,
        data_prefix=data_prefix,
        pipeline=pipeline,
        **extra)
    return DATASETS.build(dataset_cfg)


def _coco_fixture(cfg, fixtures_dir, pipeline):
    return _fixture_dataset(
        cfg, 'train_dataloader',
        str(fixtures_dir / 'coco_panoptic_sample') + '/',
        'panoptic_examples.json',
        dict(img='input_images/', seg='panoptic_examples/'), pipeline)


def detectron2_short_edge_size(height, width, short, max_size):
    """detectron2's ResizeShortestEdge output (h, w), written out: the short
    side becomes ``short``; if the long side then exceeds ``max_size`` both
    are scaled down so that it equals ``max_size``; rounded half up."""
    scale = short / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


# the two COCO fixture photos, (h, w) = (427, 640) and (360, 640): expected
# sizes by hand (the long side never exceeds 640, so s >= the short side
# leaves them as they are)
COCO_FIXTURE_SIZES = {
    320: [(320, 480), (320, 569)],
    384: [(384, 576), (360, 640)],
    448: [(427, 640), (360, 640)],
    960: [(427, 640), (360, 640)],
}


@pytest.mark.parametrize('name', ['panoptic_deeplab/pdl_r50_coco.py',
                                  'pisr/pdl_r50_coco.py'])
def test_coco_resize_is_detectron2_short_edge_rule(name, fixtures_dir):
    """Every short side of the COCO recipe, on the two fixture photos: the
    output size is detectron2's ResizeShortestEdge(s, max_size=640), the
    segmentation follows the image."""
    cfg = load(name)
    load_steps, resize = cfg.train_pipeline[:2], cfg.train_pipeline[2]
    assert resize.scales == list(range(320, 961, 64))
    assert resize.max_size == 640
    for short in resize.scales:
        pipeline = load_steps + [dict(resize, scales=[short])]
        dataset = _coco_fixture(cfg, fixtures_dir, pipeline)
        sizes = []
        for index in range(len(dataset)):
            results = dataset[index]
            height, width = results['ori_shape']
            expected = detectron2_short_edge_size(height, width, short, 640)
            assert results['img'].shape[:2] == expected, short
            assert results['gt_seg_map'].shape == expected
            assert max(expected) <= 640
            sizes.append(expected)
        if short in COCO_FIXTURE_SIZES:
            assert sizes == COCO_FIXTURE_SIZES[short]


def test_old_coco_rescale_enlarged_images(fixtures_dir):
    """What the fix removes: mmcv's keep-ratio rescale to (640, s) caps the
    long side by max(640, s) (and the short by 640), so s = 960 enlarged
    the 427x640 photo 1.5x, to 640x959 (detectron2's rule leaves it at
    427x640)."""
    cfg = load('panoptic_deeplab/pdl_r50_coco.py')
    old = dict(type='RandomChoiceResize', scales=[(640, 960)],
               keep_ratio=True)
    dataset = _coco_fixture(cfg, fixtures_dir,
                            cfg.train_pipeline[:2] + [old])
    assert dataset[0]['img'].shape[:2] == (640, 959)
