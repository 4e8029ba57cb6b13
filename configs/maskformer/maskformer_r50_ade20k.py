# MaskFormer R50 on ADE20K panoptic, without PISR: the baseline of
# ../pisr/maskformer_r50_ade20k.py (PISR Table 3: MaskFormer R50 34.7 PQ,
# 36.1 with PISR; Table 4: 116.6 GFLOPs, 21.1 FPS on an A100 at 375x500;
# the MaskFormer paper's own ADE20K panoptic number is not checked here).
# mmdet's MaskFormer with MaskFormer's ADE20K panoptic recipe
# (configs/ade20k-150-panoptic/maskformer_panoptic_R50_bs16_720k.yaml):
# data and augmentation from ../_base_/datasets/ade20k_panoptic.py, 16
# images a batch (8 GPUs x 2), AdamW lr 1e-4, weight decay 1e-4, backbone
# lr x 0.1, gradient norm clipped at 0.01, poly 0.9 over 720k iterations,
# 100 queries; test thresholds 0.8 / 0.8 (object mask, overlap). To verify
# against MaskFormer's release: the pixel decoder (this config keeps the
# 6-layer Transformer-encoder pixel decoder of the COCO model) and the
# warmup (none here).
#   tools/dist_train.sh configs/maskformer/maskformer_r50_ade20k.py 8
_base_ = [
    './_base_/maskformer_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py'
]
num_things_classes = 100
num_stuff_classes = 50
num_classes = num_things_classes + num_stuff_classes
model = dict(
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes))

train_dataloader = dict(batch_size=2)  # x 8 GPUs = 16

max_iters = 720000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=40000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=0.0001,
        weight_decay=0.0001,
        eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': dict(lr_mult=1.0, decay_mult=0.0)
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = dict(
    type='PolyLR',
    power=0.9,
    eta_min=0.,
    by_epoch=False,
    begin=0,
    end=max_iters)
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=40000,
        max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
