# Unified C2 (Table 1: 59.6 PQ): Mask R-CNN, no dense instance affinity, no
# panoptic matching loss (trained jointly on detection and semantic losses);
# inference: argmax of Psi (P = Psi).
_base_ = './unified_r50_fpn_d2_65k_cityscapes.py'
model = dict(affinity_head=None, panoptic_loss=None)
