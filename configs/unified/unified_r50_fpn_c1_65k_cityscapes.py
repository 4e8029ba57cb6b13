# Unified C1 (Table 1: 59.3 PQ): the C2 model tested with the heuristic
# merger of Panoptic FPN [12].
_base_ = './unified_r50_fpn_c2_65k_cityscapes.py'
model = dict(
    inference='heuristic',
    panoptic_fusion_head=dict(
        _delete_=True,
        type='HeuristicPanopticFusionHead',
        num_things_classes=8,
        num_stuff_classes=11,
        overlap_thr=0.5,
        stuff_area_limit=2048))
