# RealTimePanoptic R18-FPN on Cityscapes: the R50 recipe with a ResNet-18.
_base_ = './rtp_r50_fpn_48k_cityscapes.py'
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
