# COCO panoptic 2017 (133 classes) in mmdet's layout:
#   data/coco/{train2017,val2017}/, data/coco/annotations/panoptic_{train,val}
#   2017.json + panoptic_{train,val}2017/ PNG folders.
# CocoPanopticFormatDataset is mmdet's CocoPanopticDataset (same classes)
# with name-based category mapping and crowd kept as ignored instances;
# LoadPanopticAnnotations is ours (mmdet's needs panopticapi).
#
# Another root: values below are resolved when this file is read, so a child
# config that sets `data_root = 'x/'` must also set it in each dataloader:
#   data_root = 'x/'
#   train_dataloader = dict(dataset=dict(data_root=data_root))
#   val_dataloader = dict(dataset=dict(data_root=data_root))
#   test_dataloader = val_dataloader
dataset_type = 'CocoPanopticFormatDataset'
data_root = 'data/coco/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # gt_panoptic_seg (metric ground truth) is not updated by resize/flip
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
# annotations are loaded after Resize: ground truth stays at the original
# size, where predictions are evaluated
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackPanopticInputs')
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(
            img='train2017/', seg='annotations/panoptic_train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='PanopticQualityMetric')
test_evaluator = val_evaluator
