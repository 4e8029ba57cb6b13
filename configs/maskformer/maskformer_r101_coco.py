# MaskFormer R101 on COCO panoptic, without PISR (the baseline of
# ../pisr/maskformer_r101_coco.py): maskformer_r50_coco.py with a
# ResNet-101 (torchvision weights). Not in mmdet 3.3's model zoo nor in the
# PISR paper; not measured.
#   tools/dist_train.sh configs/maskformer/maskformer_r101_coco.py 16
_base_ = './maskformer_r50_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
