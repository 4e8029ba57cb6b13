# CIAE R50-FPN on COCO panoptic (80 things + 53 stuff), Gao et al. Sec. V-C:
# RetinaNet's hyper-parameters, 90k iterations, batch 16 (8 GPUs x 2 images),
# SGD lr 0.01 (x0.1 at 60k and 80k), weight decay 1e-4, momentum 0.9,
# ImageNet-initialised backbone, shorter side 800 for training and testing
# (longer side <= 1333, mmdet's convention), flip. T of Eq. 13 = 90k.
# Not in the paper (declared in the README): the 500-iteration linear warmup
# (mmdet's RetinaNet recipe) and gradient clipping at 35 (mmdet's FCOS).
_base_ = [
    '../_base_/datasets/coco_panoptic.py', '../_base_/default_runtime.py',
    './_base_/ciae_r50_fpn.py'
]
num_things_classes = 80
num_stuff_classes = 53
max_iters = 90000
model = dict(
    bbox_head=dict(
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        memory_total_iters=max_iters))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GeneratePanopticSegmentIds',
        num_thing_classes=num_things_classes),
    dict(type='PackPanopticInputs', dense_target_keys=['gt_segment_ids'])
]
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[60000, 80000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
# 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
