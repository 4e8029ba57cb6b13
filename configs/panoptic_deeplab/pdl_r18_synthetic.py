# Panoptic-DeepLab R18 (random init, output stride 16) on the synthetic
# panoptic set: the CPU-in-minutes variant. Generate the data first:
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/panoptic_deeplab/pdl_r18_synthetic.py
# Another root: --cfg-options train_dataloader.dataset.data_root=X/ \
#   val_dataloader.dataset.data_root=X/ test_dataloader.dataset.data_root=X/
_base_ = [
    './_base_/panoptic_deeplab_r50.py',
    '../_base_/datasets/synthetic_panoptic.py',
    '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
backbone_channels = (64, 128, 256, 512)
# ASPP with plain 3x3 atrous convs (aspp_depthwise_separable=False), unlike
# the paper configs' DSConv variant: the synthetic results in the READMEs
# were measured with this layout
model = dict(
    num_things_classes=3,
    num_stuff_classes=2,
    backbone=dict(
        depth=18,
        norm_cfg=norm_cfg,
        # random init: BN statistics are learnt, not frozen
        norm_eval=False,
        init_cfg=None),
    semantic_head=dict(
        decoder=dict(
            in_channels=backbone_channels,
            project_channels=(32, 16),
            aspp_channels=64,
            decoder_channels=64,
            aspp_depthwise_separable=False,
            norm_cfg=norm_cfg),
        head_channels=64,
        norm_cfg=norm_cfg),
    instance_head=dict(
        decoder=dict(
            in_channels=backbone_channels,
            project_channels=(16, 8),
            aspp_channels=64,
            decoder_channels=32,
            aspp_depthwise_separable=False,
            norm_cfg=norm_cfg),
        head_channels=16,
        norm_cfg=norm_cfg),
    # 256x256 images: the paper's limits (area 2048 of 1024x2048 images)
    # scaled down; things are 10-80 px wide
    test_cfg=dict(
        center_threshold=0.1, nms_kernel=7, top_k=200, stuff_area_limit=64))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args={{_base_.backend_args}}),
    dict(type='RandomFlip', prob=0.5),
    # sigma and the small-instance area scaled to the 256 px images
    dict(
        type='GeneratePanopticDeepLabTargets',
        sigma=4,
        small_instance_area=256,
        small_instance_weight=3),
    dict(
        type='PackPanopticInputs',
        dense_target_keys={{_base_.dense_target_keys}})
]
train_dataloader = dict(
    batch_size=4, num_workers=2, dataset=dict(pipeline=train_pipeline))

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=100),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
