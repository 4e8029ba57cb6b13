# RealTimePanoptic R50-FPN (Hou et al., CVPR 2020): the model shared by the
# paper-scale configs; class counts are set by them.
num_things_classes = 8
num_stuff_classes = 11
model = dict(
    type='RealTimePanoptic',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # a multiple of 32 makes P3 exactly 1/8 and the global heads exactly
        # 1/4 of the padded input; P6/P7 may round up (handled by the head)
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # Sec. 5.3: "We freeze BatchNorm layers in the backbone": BN only
        # (statistics and affine parameters of the ImageNet model); the stem
        # and res2 weights train (mmdet's FCOS would also freeze them with
        # frozen_stages=1)
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,  # P3-P7, strides 8-128
        add_extra_convs='on_output',
        num_outs=5,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='RTPHead',
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        in_channels=256,
        feat_channels=256,
        stacked_convs=4,
        strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True,
        # 'concat_3x3' = the paper's / released code's layer shapes
        global_head='per_level_1x1',
        semantic_stride=4,
        assigner=dict(type='RTPTargetAssigner', use_masks=True),
        # Sec. 4.2: the focal loss "averaged over the total number of
        # locations across all FPN levels" ('num_pos' is FCOS's choice)
        cls_loss_avg='num_locations',
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_levelness=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            ignore_index=255,
            avg_non_ignore=True,
            loss_weight=1.0),
        # Sec. 4: the worst 30 % of the valid pixels, round() of the count
        loss_semantic=dict(
            type='HardPixelCrossEntropyLoss', top_ratio=0.3, count='valid',
            rounding='round', loss_weight=1.0),
        # Sec. 4.3: B_query = the test-time selection (max_per_img = 100
        # queries); use_semantic_prob=False is Eq. 17-18
        loss_mask=dict(
            type='RTPMaskLoss',
            max_queries_per_img=None,
            use_semantic_prob=False,
            loss_weight=1.0)),
    train_cfg=None,
    # the post-processing defaults (RTP_TEST_CFG), written out: paper's plain
    # IoU with sigma 0.3; the released code's variant is
    # iou_type='giou', mask_thr=0.4
    test_cfg=dict(
        score_thr=0.05,
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        min_bbox_size=0,
        agnostic_iou_thr=None,
        use_levelness=True,
        iou_type='iou',
        mask_thr=0.3,
        chunk_size=8,
        overlap_thr=0.5,
        stuff_area_limit=4096,
        instance_score_thr=0.0))
