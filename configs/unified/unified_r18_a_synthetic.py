# Unified A R18 on the synthetic set: Faster R-CNN (no masks, Eq. 1), no
# affinity, no matching loss, argmax of Psi -- the baseline D2 is compared
# with (the paper's +4.4 PQ of B over A comes from affinity + matching).
_base_ = './unified_r18_d2_synthetic.py'
model = dict(
    roi_head=dict(mask_roi_extractor=None, mask_head=None),
    affinity_head=None,
    panoptic_loss=None)
