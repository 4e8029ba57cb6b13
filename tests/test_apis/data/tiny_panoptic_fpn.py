# A Panoptic FPN small enough for unit tests (random init, a few thousand
# parameters): 2 thing + 2 stuff classes. Used by tests/test_apis and
# tests/test_demo; not a config to train.
default_scope = 'mmpanoptic_plus'
num_things_classes = 2
num_stuff_classes = 2
channels = 16
model = dict(
    type='PanopticFPN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=8,
        stem_channels=8,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN', in_channels=[8, 16, 32, 64], out_channels=channels,
        num_outs=5),
    rpn_head=dict(
        type='RPNHead',
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=channels,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=channels,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=num_things_classes,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=channels,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=1,
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=num_things_classes,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    semantic_head=dict(
        type='PanopticFPNHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=channels,
        inner_channels=8,
        start_level=0,
        end_level=4,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        conv_cfg=None,
        loss_seg=dict(
            type='CrossEntropyLoss', ignore_index=255, loss_weight=0.5)),
    panoptic_fusion_head=dict(
        type='HeuristicFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes),
    train_cfg=None,
    test_cfg=dict(
        rpn=dict(
            nms_pre=100,
            max_per_img=20,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            # low: a random-init model must still produce thing segments
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True),
            max_per_img=10,
            mask_thr_binary=0.5),
        panoptic=dict(mask_overlap=0.5, stuff_area_limit=1)))

# No Resize: tiny images reach the network at their own size, so the
# data_preprocessor's padding (pad_size_divisor=32) is what makes them fit.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    dataset=dict(
        type='CocoPanopticFormatDataset',
        data_root='does_not_exist/',
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='panoptic_val/'),
        metainfo=dict(
            classes=('disc', 'box', 'sky', 'ground'),
            thing_classes=('disc', 'box'),
            stuff_classes=('sky', 'ground'),
            palette=[(220, 20, 60), (0, 0, 142), (70, 130, 180),
                     (152, 251, 152)]),
        test_mode=True,
        pipeline=test_pipeline))
