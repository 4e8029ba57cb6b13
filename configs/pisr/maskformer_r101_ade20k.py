# MaskFormer R101 + PISR on ADE20K panoptic (PISR Table 3: 35.7 -> 37.0
# PQ): maskformer_r50_ade20k.py with a ResNet-101 (MaskFormer's
# maskformer_panoptic_R101_bs16_720k.yaml, same schedule).
#   tools/dist_train.sh configs/pisr/maskformer_r101_ade20k.py 8
_base_ = './maskformer_r50_ade20k.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
