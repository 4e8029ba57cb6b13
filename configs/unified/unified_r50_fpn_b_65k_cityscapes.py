# Unified B (Table 1: 59.0 PQ): Faster R-CNN (no masks; Eq. 1), dense
# instance affinity and panoptic matching loss, argmax of P.
_base_ = './unified_r50_fpn_d2_65k_cityscapes.py'
model = dict(roi_head=dict(mask_roi_extractor=None, mask_head=None))
