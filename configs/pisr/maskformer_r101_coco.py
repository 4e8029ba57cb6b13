# MaskFormer R101 + PISR on COCO panoptic: maskformer_r50_coco.py with a
# ResNet-101 (torchvision weights). Not in the paper (Table 3 has R101 on
# ADE20K only); not measured.
#   tools/dist_train.sh configs/pisr/maskformer_r101_coco.py 16
_base_ = './maskformer_r50_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
