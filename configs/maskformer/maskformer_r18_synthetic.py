# MaskFormer R18 on the synthetic panoptic set (CPU in minutes), without
# PISR: the baseline of ../pisr/maskformer_r18_synthetic.py. The model of
# ./_base_/maskformer_r50.py shrunk (random-init ResNet-18, plain FPN pixel
# decoder, 3-layer 64-wide Transformer decoder, 20 queries) and the budget
# of the other synthetic configs (2000 iterations, batch 4). The optimiser is
# MaskFormer's (AdamW 1e-4, weight decay 1e-4, gradient norm 0.01) without
# its backbone multiplier (the backbone is not pretrained); not tuned.
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/maskformer/maskformer_r18_synthetic.py
_base_ = [
    './_base_/maskformer_r50.py', '../_base_/datasets/synthetic_panoptic.py',
    '../_base_/default_runtime.py'
]
num_things_classes = 3
num_stuff_classes = 2
num_classes = num_things_classes + num_stuff_classes
embed_dims = 64
norm_cfg = dict(type='BN', requires_grad=True)
attn_cfg = dict(embed_dims=embed_dims, num_heads=4, dropout=0.0,
                batch_first=True)
model = dict(
    backbone=dict(
        depth=18,
        norm_cfg=norm_cfg,
        # random init: BN statistics are learnt, not frozen
        norm_eval=False,
        init_cfg=None),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=20,
        pixel_decoder=dict(
            _delete_=True,
            type='PixelDecoder',
            norm_cfg=dict(type='GN', num_groups=8),
            act_cfg=dict(type='ReLU')),
        positional_encoding=dict(num_feats=embed_dims // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=attn_cfg,
                cross_attn_cfg=attn_cfg,
                ffn_cfg=dict(
                    embed_dims=embed_dims,
                    feedforward_channels=4 * embed_dims,
                    ffn_drop=0.0))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes))

train_dataloader = dict(batch_size=4, num_workers=2)

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={'query_embed': dict(lr_mult=1.0, decay_mult=0.0)},
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
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
