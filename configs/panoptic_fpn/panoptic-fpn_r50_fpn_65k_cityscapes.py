# Panoptic FPN R50-FPN on Cityscapes (our CityscapesPanopticDataset):
# 8 things + 11 stuff, 512x1024 crops, 8 GPUs x 4 images, 65k iterations.
_base_ = [
    '../_base_/models/panoptic_fpn_r50_fpn.py',
    '../_base_/datasets/cityscapes_panoptic.py',
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
        num_stuff_classes=num_stuff_classes),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes),
    # Cityscapes convention: stuff segments under 2048 px become void
    test_cfg=dict(panoptic=dict(stuff_area_limit=2048)))
train_dataloader = dict(batch_size=4, num_workers=4)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000))
log_processor = dict(by_epoch=False)
