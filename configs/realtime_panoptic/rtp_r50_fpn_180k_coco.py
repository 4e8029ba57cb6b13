# RealTimePanoptic R50-FPN on COCO panoptic (80 things + 53 stuff), paper
# Sec. 5.3-5.4: shorter side 640/720/800 in training (longer side <= 1333),
# flip, SGD lr 0.01, 180k iterations with lr steps at 120k and 160k, 8 GPUs x
# 2 images, frozen BN, semantic loss weight lambda = 0.4; test images resized
# to a longer side of 1333. Not in the paper (declared in the README): the
# warmup, bias lr x2 without decay and gradient clipping.
_base_ = [
    '../_base_/datasets/coco_panoptic.py', '../_base_/default_runtime.py',
    './_base_/rtp_r50_fpn.py'
]
num_things_classes = 80
num_stuff_classes = 53
model = dict(
    bbox_head=dict(
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        loss_semantic=dict(loss_weight=0.4)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 720), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))
# Sec. 5.4: "we resize all images to a longer side of 1333px" (mmdet's
# (1333, 800) would give a shorter side of 800 instead)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 1333), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackPanopticInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

max_iters = 180000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
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
        milestones=[120000, 160000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
# 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
