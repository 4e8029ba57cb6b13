# The 30k-iteration Cityscapes schedule of the ablations (Appendix A.7,
# Tables 4-5: hybrid exemplars, dynamic partitioning, seeding, classifier all
# on: 53.7 PQ). Turn a component off with --cfg-options:
#   hybrid scale exemplars  model.panoptic_head.small_area=None
#   dynamic partitioning    model.test_cfg.dynamic_partition=False
#   seeding                 model.panoptic_head.seeding_branch=None
#                           model.test_cfg.use_seeds=False
#   segment classifier      model.panoptic_head.classifier_channels=None
_base_ = './pss_r50_fpn_90k_cityscapes.py'
max_iters = 30000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
