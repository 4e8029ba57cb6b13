# RealTimePanoptic R50-FPN on Cityscapes (Hou et al., CVPR 2020, Sec. 5.1):
# 8 things + 11 stuff, 1800x900 crops rescaled x0.7-1.3, flip, SGD lr 0.013,
# 48k iterations (steps at 36k / 44k), 8 GPUs x 1 image, frozen BN. Semantic
# loss weight lambda = 1. Not in the paper (declared in the README): the
# 500-iteration warmup, bias lr x2 without decay and gradient clipping
# (FCOS's recipe, kept for stability).
_base_ = [
    '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/default_runtime.py', './_base_/rtp_r50_fpn.py'
]
num_things_classes = 8
num_stuff_classes = 11
model = dict(
    bbox_head=dict(
        num_things=num_things_classes, num_stuff=num_stuff_classes))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    # Sec. 5.3: "a random crop of 1800x900 and re-scale the crops randomly
    # between (0.7, 1.3)": crop first, then rescale the crop
    dict(
        type='RandomCrop',
        crop_size=(1800, 900),  # (w, h)
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(
        type='RandomResize',
        scale=(1800, 900),
        ratio_range=(0.7, 1.3),
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
train_dataloader = dict(
    batch_size=1, num_workers=4, dataset=dict(pipeline=train_pipeline))

max_iters = 48000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[36000, 44000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.013, momentum=0.9, weight_decay=0.0001),
    # FCOS's recipe: no weight decay on biases, double lr for them
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
# 8 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000))
log_processor = dict(by_epoch=False)
