# PSS R50-FPN on Cityscapes (8 things + 11 stuff), Appendix A.7: 90k
# iterations, batch 8 (8 GPUs x 1 image), 704x704 crops, poly learning rate
# with base 0.002, momentum 0.9, weight decay 1e-4; K = 196 clusters in
# training and 500 at inference, T_S = 0.99, A_p = 2048, seed radius 16 px,
# stuff < 2048 px and non-seed things < 4096 px void. Not given by the
# paper, ours: the x0.5-2.0 rescale before the crop (the Cityscapes recipe
# of configs/_base_), no warm-up, poly power 0.9, T_P = 0.5 (see README).
# Paper (Table 2): 58.7 PQ / 51.7 PQ_th / 63.7 PQ_st.
_base_ = [
    '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/default_runtime.py', './_base_/pss_r50_fpn.py'
]
num_things_classes = 8
num_stuff_classes = 11
max_iters = 90000

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
        crop_size=(704, 704),  # (w, h)
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='GeneratePanopticSegmentIds',
        num_thing_classes=num_things_classes),
    dict(type='PackPanopticInputs', dense_target_keys=['gt_segment_ids'])
]
train_dataloader = dict(
    batch_size=1, num_workers=4, dataset=dict(pipeline=train_pipeline))

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
# 8 GPUs x 1 image = the paper's batch 8
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
