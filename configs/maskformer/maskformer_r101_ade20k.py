# MaskFormer R101 on ADE20K panoptic, without PISR (the baseline of
# ../pisr/maskformer_r101_ade20k.py; PISR Table 3: 35.7 PQ, 37.0 with
# PISR): maskformer_r50_ade20k.py with a ResNet-101 (MaskFormer's
# maskformer_panoptic_R101_bs16_720k.yaml, same schedule).
#   tools/dist_train.sh configs/maskformer/maskformer_r101_ade20k.py 8
_base_ = './maskformer_r50_ade20k.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
