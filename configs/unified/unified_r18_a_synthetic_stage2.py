# Second training stage of the synthetic A: ./unified_r18_d2_synthetic_stage2.py
# (1000 more iterations, the same learning-rate shape) on A's model, from
# A's first-stage iter_2000.pth, so that D2 and A keep the same budget.
# The model lines are ./unified_r18_a_synthetic.py's (tested to agree).
_base_ = './unified_r18_d2_synthetic_stage2.py'
load_from = 'work_dirs/unified_a/iter_2000.pth'
model = dict(
    roi_head=dict(mask_roi_extractor=None, mask_head=None),
    affinity_head=None,
    panoptic_loss=None)
