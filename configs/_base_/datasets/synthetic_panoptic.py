# Synthetic panoptic set (disc, square, triangle | sky, ground), written by
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 200 --num-val 50 --size 256 256 --seed 0
#
# Another root: values below are resolved when this file is read, so a child
# config that sets `data_root = 'x/'` must also set it in each dataloader:
#   data_root = 'x/'
#   train_dataloader = dict(dataset=dict(data_root=data_root))
#   val_dataloader = dict(dataset=dict(data_root=data_root))
#   test_dataloader = val_dataloader
dataset_type = 'SyntheticPanopticDataset'
data_root = 'data/synthetic/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # gt_panoptic_seg (metric ground truth) is not updated by RandomFlip
    dict(
        type='LoadPanopticAnnotations',
        with_panoptic_seg=False,
        backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # identity resize: records scale_factor=1, which mmdet's mask head needs
    # to paste masks back at the original size
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackPanopticInputs')
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
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
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='PanopticQualityMetric')
test_evaluator = val_evaluator
