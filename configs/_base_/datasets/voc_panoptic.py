# PASCAL VOC 2012 panoptic (21 classes: 20 things first, then background,
# the one stuff class). Annotations:
#   python tools/dataset_converters/voc_panoptic.py data/VOCdevkit/VOC2012 \
#       --sbd-root data/benchmark_RELEASE/dataset
# writes voc_panoptic_{train_aug,val}.json + PNG folders into VOC2012/:
# train_aug = SBD train + val + VOC train - VOC val (10,582 images, VOC's
# masks where VOC has them), val = VOC val (1,449).
#
# The usual VOC recipe (DeepLab's, also mmseg's voc12aug): random rescale
# x0.5-2.0 (here of 2048x512, mmseg's scale), 512x512 crop (PSS Appendix
# A.7: crop 512), flip; test at the original size (images are at most
# 500x500). mmseg's cat_max_ratio crop rule and photometric distortion are
# not used (mmdet's RandomCrop has no cat_max_ratio; the PSS paper names
# neither). The batch (PSS: 12) is set in the model configs.
#
# Another root: values below are resolved when this file is read, so a child
# config that sets `data_root = 'x/'` must also set it in each dataloader:
#   data_root = 'x/'
#   train_dataloader = dict(dataset=dict(data_root=data_root))
#   val_dataloader = dict(dataset=dict(data_root=data_root))
#   test_dataloader = val_dataloader
dataset_type = 'VOCPanopticDataset'
data_root = 'data/VOCdevkit/VOC2012/'
backend_args = None

crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # gt_panoptic_seg (metric ground truth) is not updated by resize/crop/flip
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_size=crop_size,  # (w, h); min(crop, image) per side
        crop_type='absolute',
        recompute_bbox=True,
        allow_negative_crop=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
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
        ann_file='voc_panoptic_train_aug.json',
        data_prefix=dict(img='JPEGImages/', seg='voc_panoptic_train_aug/'),
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
        ann_file='voc_panoptic_val.json',
        data_prefix=dict(img='JPEGImages/', seg='voc_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='PanopticQualityMetric')
test_evaluator = val_evaluator
