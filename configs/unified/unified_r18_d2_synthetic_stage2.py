# Second training stage of the synthetic D2: 1000 more iterations from the
# first stage's iter_2000.pth (weights, including the learnt logit scale of
# the matching loss; AdamW moments start afresh), with the first stage's
# learning-rate shape (1e-3 after a 100-iteration warmup, x0.1 for the last
# quarter). Reason: 2000 iterations from random init leave the semantic
# head's thing channels under-trained (thing IoU about 60), which limits the
# argmax of P (README, "D1 against D2"); the CPU budget allows continuing
# the three seed-sweep runs, not training them again for longer.
# ./unified_r18_a_synthetic_stage2.py is the same second stage for A. Per
# seed of the sweep (seed_sweep puts the seed into the path):
#   python tools/analysis_tools/seed_sweep.py \
#       configs/unified/unified_r18_d2_synthetic_stage2.py --seeds 0 1 2 \
#       --val-dir data/synthetic_eval_s1201 --work-root work_dirs/seed_sweep_unified \
#       --cfg-options train_dataloader.num_workers=1 load_from=work_dirs/\
#   seed_sweep_unified/unified_unified_r18_d2_synthetic/seed{seed}/iter_2000.pth
_base_ = './unified_r18_d2_synthetic.py'
load_from = 'work_dirs/unified_d2/iter_2000.pth'
max_iters = 1000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
        end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[int(max_iters * 0.75)],
        gamma=0.1)
]
