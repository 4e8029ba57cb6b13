# RealTimePanoptic R18 at half width (ResNet-18 with 32 base channels, FPN
# and towers of 64 channels; random init) on the synthetic panoptic set
# (3 things, 2 stuff, 256x256): trains on a CPU in minutes, and its
# checkpoint (~3.3M parameters, stored in fp16 by
# tools/model_converters/publish_model.py) is the one `make demo` ships. Data:
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
_base_ = [
    '../_base_/datasets/synthetic_panoptic.py',
    '../_base_/default_runtime.py', './_base_/rtp_r50_fpn.py'
]
num_things_classes = 3
num_stuff_classes = 2
channels = 64
model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        # random init: BN statistics must be learnt, not frozen
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    bbox_head=dict(
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        in_channels=channels,
        feat_channels=channels,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # declared departure: the focal loss divided by the foreground count
        # (FCOS) as the checkpoints trained here have been, not by all
        # locations as the paper configs do (paper Sec. 4.2)
        cls_loss_avg='num_pos'),
    # images are 256x256: a 4096 px stuff limit would delete whole regions
    test_cfg=dict(max_per_img=20, stuff_area_limit=64))

train_dataloader = dict(batch_size=4, num_workers=2)
randomness = dict(seed=0)

max_iters = 3000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# Adam copes with the random init far better than the SGD of the R50 recipes
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[int(max_iters * 0.75)],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
