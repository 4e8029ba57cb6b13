# Panoptic FPN on Cityscapes (Kirillov et al., CVPR 2019, Sec. 4 "Cityscapes"):
# 65k iterations, 32 images per batch (8 GPUs x 4), lr 0.01 divided by 10 at
# 40k and 55k, 512x1024 crops with scale jitter 0.5-2.0 (in the dataset base).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=65000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=65000,
        by_epoch=False,
        milestones=[40000, 55000],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))

auto_scale_lr = dict(enable=False, base_batch_size=32)
