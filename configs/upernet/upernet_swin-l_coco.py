# UPerNet Swin-L modified for panoptic segmentation on COCO panoptic,
# without PISR: the baseline of ../pisr/upernet_swin-l_coco.py (PISR Table
# 2: UPerNet Swin-L 50.3 PQ on val, 52.9 with PISR; test-dev 50.9 and
# 53.2). Model and recipe as upernet_r50_coco.py with Swin-L
# (ImageNet-22k, 384 px, window 12: the weights mmdet's Swin-L configs
# load) and the Swin optimiser of mmseg's UPerNet Swin configs (AdamW
# 6e-5, weight decay 0.01, none on norms, position embeddings and relative
# position tables); the paper gives no recipe for this model. Memory: 8
# images of 640x640 per GPU through Swin-L need about 80 GB (an estimate);
# on smaller GPUs halve train_dataloader.batch_size and use 16 GPUs. Not
# measured.
#   tools/dist_train.sh configs/upernet/upernet_swin-l_coco.py 8
_base_ = './upernet_r50_coco.py'
pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth'  # noqa
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=192,
        patch_size=4,
        window_size=12,
        mlp_ratio=4,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
