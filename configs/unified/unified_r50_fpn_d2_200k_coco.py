# Unified D2 R50-FPN on COCO panoptic (Table 3: 43.4 PQ). Sec. 4 "COCO
# training": Panoptic FPN's COCO settings (16 images per batch, 1333x800)
# with 200k iterations, lr 0.02 divided by 10 at 150k and 190k; loss
# weights detection 1.0, semantic 0.2, panoptic 0.1.
_base_ = [
    './_base_/unified_r50_fpn.py', '../_base_/datasets/coco_panoptic.py',
    '../_base_/default_runtime.py'
]
num_things_classes = 80
num_stuff_classes = 53
model = dict(
    semantic_head=dict(loss_seg=dict(loss_weight=0.2)),
    panoptic_loss=dict(loss_weight=0.1),
    detection_loss_weight=1.0)

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
# 8 GPUs x 2 = 16 images
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

max_iters = 200000
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
        milestones=[150000, 190000],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
custom_hooks = []
