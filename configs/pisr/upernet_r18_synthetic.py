# UPerNet R18 modified for panoptic segmentation + PISR on the synthetic
# panoptic set (CPU in minutes): UPerNetPISR (see upernet_r50_coco.py) with
# the data, pipeline, schedule and budget of
# ../panoptic_deeplab/pdl_r18_synthetic.py (2000 iterations, batch 4,
# AdamW 1e-3), a 64-channel UPerNet fusion, K = 10 and 16 affinity
# channels as ./pdl_r18_synthetic.py.
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/pisr/upernet_r18_synthetic.py
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
    instance_head=dict(decoder=None),
    pisr=dict(
        type='PISREncoder',
        num_instances=10,
        channels=16,
        use_reweighting=True,
        norm_cfg=norm_cfg),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=3)
