# PSS R50-FPN ("Contextual Image Parsing via Panoptic Segment Sorting",
# Sec. 3, 4.1, Appendix A.7): the model shared by the paper-scale configs.
# Ablation switches (Tables 4-5):
#   hybrid scale exemplars  model.panoptic_head.small_area=None (off)
#   dynamic partitioning    model.test_cfg.dynamic_partition=False (off)
#   seeding                 model.panoptic_head.seeding_branch=None and
#                           model.test_cfg.use_seeds=False (off)
#   segment classifier      model.panoptic_head.classifier_channels=None
#                           (off: nearest class-mean prototype)
num_things_classes = 8
num_stuff_classes = 11
# UPSNet-style branch (Sec. 4.1): three deformable convs shared by P2-P5,
# resampled to stride 4, concatenated, fused by a 1x1 conv
branch = dict(
    type='UPSNetSemanticHead',
    in_channels=256,
    feat_channels=128,
    num_convs=3,
    start_level=0,
    end_level=4,
    conv_cfg=dict(type='DCN'),
    norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
model = dict(
    type='PSS',
    data_preprocessor=dict(
        type='PanopticDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # a multiple of 32 makes P2 exactly 1/4 of the padded input
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
        num_outs=4),
    panoptic_head=dict(
        type='PSSHead',
        num_things=num_things_classes,
        num_stuff=num_stuff_classes,
        embedding_branch=branch,
        seeding_branch=branch,
        embed_dim=64,
        classifier_channels=64,
        num_clusters=196,
        kmeans_iters=10,
        small_area=2048,
        upscale_factor=4,
        seed_radius=16.,
        loss_segsort=dict(
            type='PSSSegSortLoss', concentration=8.0, loss_weight=1.0),
        loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
        loss_seed_heatmap=dict(type='MSELoss', loss_weight=1.0),
        loss_seed_offset=dict(type='L1Loss', loss_weight=0.1)),
    train_cfg=None,
    # PSS_TEST_CFG written out (Appendix A.7; merge_threshold and the seed
    # peak rules are ours, see README)
    test_cfg=dict(
        num_clusters=500,
        kmeans_iters=10,
        dynamic_partition=True,
        partition_threshold=0.99,
        partition_splits=4,
        use_seeds=True,
        seed_threshold=0.1,
        seed_kernel=7,
        max_seeds=200,
        merge_threshold=0.5,
        neighbour_same_class=False,
        stuff_area_limit=2048,
        thing_area_limit=4096,
        chunk_pixels=32768,
        with_embedding=True))
