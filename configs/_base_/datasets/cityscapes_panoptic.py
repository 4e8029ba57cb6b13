# Cityscapes panoptic (19 classes, things first), 1024x2048 images.
# Annotations: `python tools/dataset_converters/cityscapes.py data/cityscapes`
# (cityscapesscripts' csCreatePanopticImgs, --use-train-id variant used here)
# writes gtFine/cityscapes_panoptic_{train,val}_trainId.json + PNG folders.
#
# Another root: values below are resolved when this file is read, so a child
# config that sets `data_root = 'x/'` must also set it in each dataloader:
#   data_root = 'x/'
#   train_dataloader = dict(dataset=dict(data_root=data_root))
#   val_dataloader = dict(dataset=dict(data_root=data_root))
#   test_dataloader = val_dataloader
dataset_type = 'CityscapesPanopticDataset'
data_root = 'data/cityscapes/'
backend_args = None

# Panoptic FPN on Cityscapes: random rescale x0.5-2 of 2048x1024, 512x1024
# crop, flip.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # gt_panoptic_seg (metric ground truth) is not updated by resize/crop/flip
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=(1024, 512),  # (w, h) in mmdet's RandomCrop
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
# full resolution
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
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
        ann_file='gtFine/cityscapes_panoptic_train_trainId.json',
        data_prefix=dict(
            img='leftImg8bit/train/',
            seg='gtFine/cityscapes_panoptic_train_trainId/'),
        filter_cfg=dict(filter_empty_gt=False),
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
        ann_file='gtFine/cityscapes_panoptic_val_trainId.json',
        data_prefix=dict(
            img='leftImg8bit/val/',
            seg='gtFine/cityscapes_panoptic_val_trainId/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='PanopticQualityMetric')
test_evaluator = val_evaluator
