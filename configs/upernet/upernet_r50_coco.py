# UPerNet R50 modified for panoptic segmentation on COCO panoptic, without
# PISR: the baseline of ../pisr/upernet_r50_coco.py, and the affordable
# variant of upernet_swin-l_coco.py (the paper's model, Table 2).
# UPerNetPISR with pisr=None (the base model): F = UPerNet's fused
# stride-4 map (PPM + FPN + fpn_bottleneck, 512 channels;
# UPerNetFusionNeck = mmseg's UPerHead without its classifier) read by
# Panoptic-DeepLab's prediction heads (semantic, center, offsets) and
# Panoptic-DeepLab's grouping at inference. The paper describes neither
# its panoptic UPerNet nor its recipe; this config takes everything but
# the model from ../panoptic_deeplab/pdl_r50_coco.py (data pipeline and
# targets, 640x640 crops, batch 64 = 8 GPUs x 8, Adam 5e-4, 200k
# iterations, poly, its losses and test settings). Not measured.
#   tools/dist_train.sh configs/upernet/upernet_r50_coco.py 8
_base_ = '../panoptic_deeplab/pdl_r50_coco.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='UPerNetPISR',
    # UPerNet's backbone keeps all four strides (4-32), no dilation
    backbone=dict(strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1)),
    neck=dict(
        type='UPerNetFusionNeck',
        in_channels=[256, 512, 1024, 2048],
        channels=512,
        pool_scales=(1, 2, 3, 6),
        norm_cfg=norm_cfg,
        align_corners=False),
    semantic_head=dict(decoder=None),
    # pisr left unset (None): no PISR stage, the initial heads predict;
    # ../pisr/upernet_r50_coco.py sets it
    instance_head=dict(decoder=None))
