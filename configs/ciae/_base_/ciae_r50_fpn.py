# CIAE R50-FPN (Gao et al., "Learning Category- and Instance-Aware Pixel
# Embedding for Fast Panoptic Segmentation", Sec. IV-A, V-C): the model shared
# by the paper-scale configs; class counts and T (memory_total_iters) are set
# by them.
num_things_classes = 80
num_stuff_classes = 53
model = dict(
    type='CIAE',
    data_preprocessor=dict(
        type='PanopticDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # a multiple of 32 makes P2-P5 exactly 1/4-1/32 of the padded input
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255,
        # GeneratePanopticSegmentIds' map: padding is no segment
        dense_target_pad_values=dict(gt_segment_ids=-1)),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,  # P2-P7: P2-P5 laterals, P6/P7 from P5's output
        add_extra_convs='on_output',
        num_outs=6,
        relu_before_extra_convs=True),
    bbox_head=dict(
        type='CIAEHead',
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        in_channels=256,
        embed_dim=32,
        feat_channels=256,
        stacked_convs=4,
        strides=[8, 16, 32, 64, 128],
        norm_on_bbox=True,
        merge_things=True,
        embedding_branch=dict(
            type='CIAEEmbeddingBranch',
            inner_channels=128,
            use_coord_conv=True,
            use_box_embedding=True),
        assigner=dict(
            type='FCOSMaskTargetAssigner', with_levelness=False,
            use_masks=True),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_embedding=dict(
            type='CIAEEmbeddingLoss',
            margin=0.15,
            top_k=5,
            topk_over='queries',
            alpha=2.0,
            thing_weight=5.0,
            box_expand=1.5),
        memory_total_iters=90000,
        memory_momentum_gap=1e-4),
    train_cfg=None,
    # CIAE_TEST_CFG written out
    test_cfg=dict(
        score_thr=0.05,
        nms_pre=1000,
        nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100,
        min_bbox_size=0,
        agnostic_iou_thr=None,
        instance_score_thr=0.0,
        remote_filtering=True,
        box_expand=1.0,
        remote_similarity=0.0,
        stuff_area_limit=4096,
        chunk_pixels=262144))
