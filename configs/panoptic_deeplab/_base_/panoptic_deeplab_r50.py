# Panoptic-DeepLab, ResNet-50 at output stride 16 (Cheng et al., CVPR 2020),
# as detectron2's projects/Panoptic-DeepLab (DSConv variant, the paper's
# decoder: USE_DEPTHWISE_SEPARABLE_CONV, i.e. depthwise-separable 3x3 atrous
# convs in ASPP, mmseg's DepthwiseSeparableASPPModule, and 5x5
# depthwise-separable convs in the decoder fusions and the heads; the 1x1
# ASPP branch, the image pooling branch and the projections stay plain
# convs, as there). Datasets set num_things_classes / num_stuff_classes.
#
# Differences from the detectron2 reference, on purpose:
# - backbone: mmdet's ResNet-50 (7x7 stem, torchvision weights) with a
#   dilated last stage; the reference uses "R-52" (3x3 deep stem, its own
#   ImageNet weights) with multi-grid (1, 2, 4) in res5.
# - ASPP image pooling is global (mmseg's); the reference pools with a
#   window of crop / 16 and stride 1.
norm_cfg = dict(type='SyncBN', requires_grad=True)
# dense targets of GeneratePanopticDeepLabTargets, packed and padded with 0
# (padded pixels carry zero loss weight)
dense_target_keys = [
    'gt_center_heatmap', 'gt_center_weights', 'gt_offsets',
    'gt_offset_weights', 'gt_semantic_weights'
]
dense_target_pad_values = {key: 0. for key in dense_target_keys}
backbone_channels = (256, 512, 1024, 2048)

model = dict(
    type='PanopticDeepLab',
    num_things_classes=8,
    num_stuff_classes=11,
    data_preprocessor=dict(
        type='PanopticDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_seg=True,
        seg_pad_value=255,
        dense_target_pad_values=dense_target_pad_values),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # output stride 16: res5 dilated instead of strided
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    semantic_head=dict(
        type='PanopticDeepLabSemanticHead',
        decoder=dict(
            type='PanopticDeepLabDecoder',
            in_channels=backbone_channels,
            aspp_in_index=3,
            low_level_in_indices=(1, 0),  # C3 (stride 8), then C2 (4)
            project_channels=(64, 32),
            aspp_channels=256,
            aspp_dilations=(6, 12, 18),
            aspp_dropout=0.1,
            # DSConv variant: depthwise-separable 3x3 atrous convs
            aspp_depthwise_separable=True,
            decoder_channels=256,
            fuse_kernel_size=5,
            norm_cfg=norm_cfg),
        head_channels=256,
        head_kernel_size=5,
        norm_cfg=norm_cfg,
        # Sec. 3.1: pixel weights first, the worst 20 % of ALL the batch's
        # pixels (ignored ones count, with loss 0), int() of the count
        loss_sem=dict(
            type='HardPixelCrossEntropyLoss',
            top_ratio=0.2,
            count='all',
            rounding='floor',
            ignore_index=255,
            loss_weight=1.0)),
    instance_head=dict(
        type='PanopticDeepLabInstanceHead',
        decoder=dict(
            type='PanopticDeepLabDecoder',
            in_channels=backbone_channels,
            aspp_in_index=3,
            low_level_in_indices=(1, 0),
            project_channels=(32, 16),
            aspp_channels=256,
            aspp_dilations=(6, 12, 18),
            aspp_dropout=0.1,
            # DSConv variant: depthwise-separable 3x3 atrous convs
            aspp_depthwise_separable=True,
            decoder_channels=128,
            fuse_kernel_size=5,
            norm_cfg=norm_cfg),
        head_channels=32,
        head_kernel_size=5,
        norm_cfg=norm_cfg,
        loss_center=dict(
            type='DeepLabWeightedPixelLoss', criterion='mse',
            loss_weight=200.0),
        loss_offset=dict(
            type='DeepLabWeightedPixelLoss', criterion='l1',
            loss_weight=0.01)),
    test_cfg=dict(
        center_threshold=0.1, nms_kernel=7, top_k=200,
        stuff_area_limit=2048))
