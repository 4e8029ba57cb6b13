# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The Panoptic-DeepLab paper configs (and the PISR ones that inherit them)
against what they claim: detectron2's DSConv variant (depthwise-separable
ASPP), the crops, batches and resize rules of the recipes."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.cnn import DepthwiseSeparableConvModule
from mmengine.config import Config
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.sep_aspp_head import \
    DepthwiseSeparableASPPModule

from mmpanoptic_plus.models.layers import instance_heatmaps_from_offsets
from mmpanoptic_plus.models.postprocess import find_instance_centers
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


def _city_fixture(cfg, fixtures_dir, pipeline):
    return _fixture_dataset(
        cfg, 'train_dataloader',
        str(fixtures_dir / 'cityscapes_panoptic_sample') + '/',
        'gtFine/cityscapes_panoptic_dummy_trainId.json',
        dict(
            img='leftImg8bit/',
            seg='gtFine/cityscapes_panoptic_dummy_trainId/'),
        pipeline,
        img_name_template='{stem}_leftImg8bit.png')


def test_cityscapes_paper_pipeline_offsets_units(fixtures_dir):
    """The paper-scale Cityscapes pipeline of pisr/pdl_r50_city.py on the
    fixture photo (800x800), rescaled x1.6 of 2048x1024 (to 1638x1638) and
    cropped to the paper's 1024-pixel height: the offset targets are in
    pixels of the augmented image (every instance pixel plus its offset
    lands on the instance's mass center); the heads predict offsets in
    pixels of the stride-4 map (targets / 4): the loss scales them back,
    and PISR's instance heatmaps, fed map-pixel offsets, give each
    instance's own pixels weights near 1 (fed image-pixel offsets they
    would not)."""
    cfg = load('pisr/pdl_r50_city.py')
    pipeline = copy.deepcopy(cfg.train_pipeline)
    assert pipeline[2].type == 'RandomResize' and pipeline[4].type == \
        'RandomFlip'
    pipeline[2].ratio_range = (1.6, 1.6)
    pipeline[4].prob = 0.
    dataset = _city_fixture(cfg, fixtures_dir, pipeline)
    np.random.seed(2)  # a crop window that keeps the five cars
    sample = dataset[0]['data_samples']
    assert sample.img_shape == (1024, 1638)
    offsets = sample.gt_offsets.data  # (2, H, W)
    masks = torch.from_numpy(sample.gt_instances.masks.to_ndarray()).bool()
    assert len(masks) >= 3
    ys, xs = torch.meshgrid(
        torch.arange(1024.), torch.arange(1638.), indexing='ij')
    centers = []
    for mask in masks:
        center = torch.stack([ys[mask].mean(), xs[mask].mean()])
        votes = torch.stack([ys[mask] + offsets[0][mask],
                             xs[mask] + offsets[1][mask]])
        assert torch.allclose(votes, center[:, None].expand_as(votes),
                              atol=1e-2)
        centers.append(center)
    # instances are tens to hundreds of image pixels across
    assert offsets.abs().max() > 100

    # the heads' units: stride-4 predictions equal to the targets / 4 (map
    # pixels) are what the offset loss wants
    head = MODELS.build(cfg.model.instance_head)
    center_map = sample.gt_center_heatmap.data[None, :, ::4, ::4]
    map_offsets = offsets[None, :, ::4, ::4] / 4
    right = head.loss_by_feat(center_map, map_offsets, [sample])
    wrong = head.loss_by_feat(center_map, map_offsets * 4, [sample])
    assert right['loss_offset'] * 20 < wrong['loss_offset']

    # PISR's heatmaps take map-pixel offsets: each instance's pixels vote
    # within a pixel or two of its center on the map
    things = masks.any(0)[None, None, ::4, ::4].float()
    num = 10  # the cars and the crowd region (which has a center too)
    heatmaps, valid = instance_heatmaps_from_offsets(
        center_map, map_offsets, things, num, 0.1, 3)
    wrong_units, _ = instance_heatmaps_from_offsets(
        center_map, map_offsets * 4, things, num, 0.1, 3)
    slot_centers, _, _ = find_instance_centers(center_map, 0.1, 3, num)
    for mask, center in zip(masks, centers):
        # the slot whose center is nearest this instance's (map pixels)
        gap = (slot_centers[0].float() - center / 4).norm(dim=1) + \
            1e6 * (~valid[0])
        assert gap.min() < 2
        slot = gap.argmin()
        own = mask[::4, ::4]
        if own.sum() < 20:
            continue  # a sliver left by the crop
        assert heatmaps[0, slot][own].mean() > 0.9
        assert wrong_units[0, slot][own].mean() < 0.3


def _crop_hw(cfg):
    crop = next(t for t in cfg.train_pipeline if t.type == 'RandomCrop')
    width, height = crop.crop_size
    return height, width


@pytest.mark.parametrize('name, crop', [
    ('panoptic_deeplab/pdl_r50_city.py', (1024, 2048)),
    ('pisr/pdl_r50_city.py', (1024, 2048)),
    ('panoptic_deeplab/pdl_r50_city_crop512.py', (512, 1024)),
    ('pisr/pdl_r50_city_crop512.py', (512, 1024)),
])
def test_cityscapes_crops_and_batch(name, crop):
    """Paper configs crop whole images (Panoptic-DeepLab's 1025x2049, i.e.
    the 1024x2048 image without align_corners' extra pixel; detectron2's
    README: its 512x1024 is "smaller ... than the original paper"); the
    crop512 variants are detectron2's crop. Both: batch 32 = 8 GPUs x 4,
    rescale x0.5-2.0 of 2048x1024, Adam 1e-3 without weight decay, 90k
    iterations, poly 0.9."""
    cfg = load(name)
    assert _crop_hw(cfg) == crop
    resize = next(t for t in cfg.train_pipeline if t.type == 'RandomResize')
    assert resize.scale == (2048, 1024)
    assert resize.ratio_range == (0.5, 2.0)
    assert cfg.train_dataloader.batch_size * 8 == 32
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == (
        'Adam', 1e-3, 0.)
    assert cfg.train_cfg.max_iters == 90000
    poly = cfg.param_scheduler[-1]
    assert (poly.type, poly.power, poly.end) == ('PolyLR', 0.9, 90000)


def test_crop512_variants_differ_only_in_the_crop():
    for family in ('panoptic_deeplab', 'pisr'):
        full = load(f'{family}/pdl_r50_city.py')
        small = load(f'{family}/pdl_r50_city_crop512.py')
        assert small.model == full.model, family
        for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                    'val_dataloader', 'test_dataloader'):
            assert small[key] == full[key], (family, key)
        differing = [
            index for index, (a, b) in enumerate(
                zip(full.train_pipeline, small.train_pipeline)) if a != b
        ]
        assert len(full.train_pipeline) == len(small.train_pipeline)
        assert [full.train_pipeline[i].type
                for i in differing] == ['RandomCrop'], family
