# CIAE R101-FPN on COCO panoptic: ciae_r50_fpn_90k_coco.py with a ResNet-101
# backbone (Table IX's "Ours-800 ResNet-101-FPN").
_base_ = './ciae_r50_fpn_90k_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
