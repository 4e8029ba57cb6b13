# Third stage of the synthetic PSS checkpoint: 2000 more iterations from
# pss_r18_synthetic_stage2.py's iter_1000.pth (weights only; AdamW moments
# start afresh), the same learning-rate shape (1e-3 after a 50-iteration
# warmup, poly decay to 0). Reason: the segment classes are what limits
# PQ_th (configs/pss/README.md), and they were still improving at the end of
# stage 2 (ground-truth thing prototypes classified right: 42 % of training
# instances after 2000 iterations, 48 % after 3000).
_base_ = './pss_r18_synthetic_stage2.py'
load_from = 'work_dirs/pss_stage2/iter_1000.pth'
randomness = dict(seed=2)
max_iters = 2000
train_cfg = dict(max_iters=max_iters, val_interval=1000)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=50),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=1000))
