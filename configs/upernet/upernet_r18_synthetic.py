# UPerNet R18 modified for panoptic segmentation on the synthetic panoptic
# set (CPU in minutes), without PISR: the baseline of
# ../pisr/upernet_r18_synthetic.py. UPerNetPISR with pisr=None (see
# upernet_r50_coco.py) with the data, pipeline, schedule and budget of
# ../panoptic_deeplab/pdl_r18_synthetic.py (2000 iterations, batch 4,
# AdamW 1e-3) and a 64-channel UPerNet fusion.
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/upernet/upernet_r18_synthetic.py
_base_ = '../panoptic_deeplab/pdl_r18_synthetic.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='UPerNetPISR',
    backbone=dict(strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1)),
    neck=dict(
        type='UPerNetFusionNeck',
        in_channels=[64, 128, 256, 512],
        channels=64,
        pool_scales=(1, 2, 3, 6),
        norm_cfg=norm_cfg,
        align_corners=False),
    semantic_head=dict(decoder=None),
    # pisr left unset (None): no PISR stage, the initial heads predict;
    # ../pisr/upernet_r18_synthetic.py sets it
    instance_head=dict(decoder=None))
