# PSS R50-FPN on PASCAL VOC 2012 (20 things + background), Appendix A.7:
# 60k iterations, batch 12, 512x512 crops, K = 64 clusters, A_p = 512; as
# for Cityscapes: poly learning rate with base 0.002, momentum 0.9, weight
# decay 1e-4, T_S = 0.99, seed radius 16 px, loss weights 1 / 1 / 0.1 / 1.
# Trained on train_aug (10,582 images), evaluated on val (1,449), Sec. 4.1.
# Not given by the paper, ours: 4 GPUs x 3 images for the batch of 12; the
# x0.5-2.0 rescale before the crop (configs/_base_/datasets/voc_panoptic.py);
# K = 64 at inference too (A.7 gives one VOC cluster number, where it gives
# 196 / 500 for Cityscapes training / inference); A.7's post-processing
# areas (stuff < 2048 px, non-seed things < 4096 px void), stated without a
# dataset, kept; no warm-up, poly power 0.9, T_P = 0.5 (see README).
# Paper (Table 3): 64.8 PQ on VOC 2012 val.
_base_ = [
    '../_base_/datasets/voc_panoptic.py', '../_base_/default_runtime.py',
    './_base_/pss_r50_fpn.py'
]
num_things_classes = 20
num_stuff_classes = 1
num_clusters = 64
max_iters = 60000

model = dict(
    panoptic_head=dict(
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        num_clusters=num_clusters,
        small_area=512),
    test_cfg=dict(num_clusters=num_clusters))

# the VOC base pipeline (x0.5-2.0 rescale, 512 crop, flip) + SegSort's
# segment ids
train_pipeline = _base_.train_pipeline[:-1] + [
    dict(
        type='GeneratePanopticSegmentIds',
        num_thing_classes=num_things_classes),
    dict(type='PackPanopticInputs', dense_target_keys=['gt_segment_ids'])
]
# 4 GPUs x 3 images = the paper's batch 12
train_dataloader = dict(
    batch_size=3, num_workers=4, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
auto_scale_lr = dict(enable=False, base_batch_size=12)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
