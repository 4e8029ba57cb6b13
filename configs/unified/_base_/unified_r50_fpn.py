# Unified (Li et al., "Unifying Training and Inference for Panoptic
# Segmentation", CVPR 2020): the full model (row D2 of Table 1) on mmdet's
# Mask R-CNN R50-FPN of Panoptic FPN. Class counts, loss weights and the
# ablation switches are set by the configs that inherit it.
_base_ = '../../_base_/models/panoptic_fpn_r50_fpn.py'
num_things_classes = 80
num_stuff_classes = 53
gn = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    type='UnifiedPanoptic',
    data_preprocessor=dict(
        type='PanopticDataPreprocessor',
        # GeneratePanopticSegmentIds' map: padding is no segment
        dense_target_pad_values=dict(gt_segment_ids=-1)),
    # Sec. 3.2: UPSNet's semantic head with GroupNorm after each conv, V over
    # all N_st + N_th classes at stride 4 (d = 4)
    semantic_head=dict(
        _delete_=True,
        type='UPSNetSemanticHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        in_channels=256,
        feat_channels=128,
        num_convs=2,
        conv_cfg=dict(type='DCN'),
        norm_cfg=gn,
        loss_seg=dict(
            type='CrossEntropyLoss',
            ignore_index=255,
            avg_non_ignore=True,
            loss_weight=1.0)),
    # Sec. 3.4.1: Eq. 2 with masks, variant B (the product; declared choice)
    dynamic_potential=dict(type='UnifiedDynamicPotentialHead', variant='B'),
    # Sec. 3.4.2: Q from an extractor with the semantic head's architecture,
    # C = 128
    affinity_head=dict(
        type='UnifiedAffinityHead',
        channels=128,
        extractor=dict(
            type='UPSNetSemanticHead',
            num_things_classes=0,
            num_stuff_classes=0,
            in_channels=256,
            feat_channels=128,
            num_convs=2,
            conv_cfg=dict(type='DCN'),
            norm_cfg=gn,
            out_channels=128)),
    # Sec. 3.5: matching loss on predicted detections, t = 0.5
    panoptic_loss=dict(type='UnifiedPanopticMatchingLoss', loss_weight=1.0),
    matching_iou_thr=0.5,
    # Sec. 3.1: SE block on C5 before the FPN
    se_ratio=16,
    detection_loss_weight=1.0,
    detection_cfg=dict(
        score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100),
    # inference: argmax over P, nothing else (no stuff area limit)
    inference='argmax',
    panoptic_fusion_head=dict(
        _delete_=True,
        type='SegmentFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        stuff_area_limit=0))
