# ADE20K panoptic (150 classes: 100 things first, then 50 stuff).
# Annotations: `python tools/dataset_converters/ade20k_panoptic.py
# data/ADEChallengeData2016` (needs annotations_instance/ of the Places
# Challenge 2017 instance track unpacked beside annotations/) writes
# ade20k_panoptic_{train,val}.json + PNG folders into the dataset root.
#
# MaskFormer's ADE20K panoptic recipe
# (configs/ade20k-150-panoptic/maskformer_panoptic_R50_bs16_720k.yaml):
# short side a random choice of 320, 384, ..., 1280 (int(x * 0.1 * 640),
# x = 5..20) with the long side capped at 2560, a 640x640 crop, SSD colour
# augmentation, flip; test: short side 640, long side at most 2560; 16
# images a batch (8 GPUs x 2). Its schedule (AdamW, lr 1e-4, poly, 720k
# iterations for panoptic R50; 160k for its semantic configs) belongs to
# the model configs. MaskFormer's data mapper pads each training image to
# 640x640 (image value 128, labels 255); here the model's data preprocessor
# pads the batch, the padding ignored in the losses as there.
#
# Another root: values below are resolved when this file is read, so a child
# config that sets `data_root = 'x/'` must also set it in each dataloader:
#   data_root = 'x/'
#   train_dataloader = dict(dataset=dict(data_root=data_root))
#   val_dataloader = dict(dataset=dict(data_root=data_root))
#   test_dataloader = val_dataloader
dataset_type = 'ADE20KPanopticDataset'
data_root = 'data/ADEChallengeData2016/'
backend_args = None

crop_size = (640, 640)
# (long-side cap, short side): mmcv's rescale then scales by
# min(2560 / long side, s / short side), detectron2's ResizeShortestEdge
train_scales = [(2560, int(x * 0.1 * 640)) for x in range(5, 21)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # gt_panoptic_seg (metric ground truth) is not updated by resize/crop/flip
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=crop_size,  # (w, h); min(crop, image) per side
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    # detectron2's ColorAugSSDTransform (SSD's colour distortion)
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
# annotations are loaded after Resize: ground truth stays at the original
# size, where predictions are evaluated
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
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
        ann_file='ade20k_panoptic_train.json',
        data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'),
        # MaskFormer keeps images without things
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
        ann_file='ade20k_panoptic_val.json',
        data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='PanopticQualityMetric')
test_evaluator = val_evaluator
