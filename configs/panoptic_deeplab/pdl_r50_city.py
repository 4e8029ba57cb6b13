# Panoptic-DeepLab R50 (output stride 16) on Cityscapes, trained as the
# detectron2 reference trains it (configs/Cityscapes-PanopticSegmentation/
# panoptic_deeplab_R_52_os16_mg124_poly_90k_bs32_crop_512_1024_dsconv.yaml):
# 512x1024 crops of images rescaled x0.5-2.0, flip, batch 32 (8 GPUs x 4),
# Adam lr 1e-3 without weight decay, 90k iterations, poly (power 0.9) with
# detectron2's default linear warmup (1000 iterations from 0.001x).
# Test: full 1024x2048 images, NMS kernel 7, stuff area 2048.
#   tools/dist_train.sh configs/panoptic_deeplab/pdl_r50_city.py 8
_base_ = [
    './_base_/panoptic_deeplab_r50.py',
    '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/default_runtime.py'
]
model = dict(num_things_classes=8, num_stuff_classes=11)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    # gt_panoptic_seg (metric ground truth) is not updated by resize/crop
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args={{_base_.backend_args}}),
    # the reference draws the short side from {512, 640, ..., 2048} (x0.5 -
    # x2.0 of 1024); here the ratio is drawn uniformly from the same range
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=(1024, 512),  # (w, h) in mmdet's RandomCrop
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='RandomFlip', prob=0.5),
    # sigma 8 (paper; detectron2's config default is 10)
    dict(
        type='GeneratePanopticDeepLabTargets',
        sigma=8,
        ignore_stuff_in_offset=True,
        small_instance_area=4096,
        small_instance_weight=3,
        ignore_crowd_in_semantic=False),
    dict(
        type='PackPanopticInputs',
        dense_target_keys={{_base_.dense_target_keys}})
]
train_dataloader = dict(
    batch_size=4,  # x 8 GPUs = 32
    num_workers=4,
    dataset=dict(pipeline=train_pipeline))

max_iters = 90000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.))
# detectron2 WarmupPolyLR: lr = base * warmup(t) * (1 - t / T) ** 0.9; the
# two chainable schedulers below multiply the same way
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=10000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
