# Unified A (Table 1: 54.6 PQ): Faster R-CNN (no masks; Eq. 1), neither the
# dense instance affinity nor the panoptic matching loss; argmax of Psi.
_base_ = './unified_r50_fpn_b_65k_cityscapes.py'
model = dict(affinity_head=None, panoptic_loss=None)
