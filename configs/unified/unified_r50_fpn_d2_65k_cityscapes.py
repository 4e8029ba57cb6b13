# Unified D2 (full model: masks, affinity, matching loss, argmax inference)
# R50-FPN on Cityscapes, Table 1 / Table 2 of the paper: 61.4 PQ.
# Sec. 4 "Cityscapes training": Panoptic FPN's recipe (65k iterations, lr
# 0.01, steps 40k/55k, 512x1024 crops of x0.5-2.0 rescaled images), 32 crops
# per batch (the paper: 4 GPUs x 8; here `dist_train.sh ... 8` with 4 per
# GPU), loss weights detection 0.25, semantic 1.0, panoptic 1.0.
_base_ = [
    './_base_/unified_r50_fpn.py', '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/schedules/schedule_cityscapes_65k.py',
    '../_base_/default_runtime.py'
]
num_things_classes = 8
num_stuff_classes = 11
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=num_things_classes),
        mask_head=dict(num_classes=num_things_classes)),
    semantic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_seg=dict(loss_weight=1.0)),
    panoptic_loss=dict(loss_weight=1.0),
    detection_loss_weight=0.25,
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=(1024, 512),  # (w, h)
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GeneratePanopticSegmentIds',
        num_thing_classes=num_things_classes),
    dict(type='PackPanopticInputs', dense_target_keys=['gt_segment_ids'])
]
# 8 GPUs x 4 = 32 crops
train_dataloader = dict(
    batch_size=4, num_workers=4, dataset=dict(pipeline=train_pipeline))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
custom_hooks = []
