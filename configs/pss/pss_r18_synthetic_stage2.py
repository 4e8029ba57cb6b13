# Second stage of the synthetic PSS checkpoint: 1000 more iterations from
# pss_r18_synthetic.py's iter_2000.pth (weights only; AdamW moments start
# afresh), the same learning-rate shape (1e-3 after a 50-iteration warmup,
# poly decay to 0). Reason: after 2000 iterations the segment classifier
# still confused the thing classes (GT-instance prototypes of discs were
# mostly called squares; PQ_th 9.6 in the in-training validation), and the
# CPU budget allowed continuing, not restarting with a longer schedule.
_base_ = './pss_r18_synthetic.py'
load_from = 'work_dirs/pss/iter_2000.pth'
randomness = dict(seed=1)
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
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
default_hooks = dict(checkpoint=dict(interval=max_iters))
