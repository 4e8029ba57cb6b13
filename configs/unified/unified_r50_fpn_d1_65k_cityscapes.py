# Unified D1 (Table 1: 60.6 PQ): the D2 model tested with the heuristic
# merger of Panoptic FPN [12] instead of the argmax of P.
_base_ = './unified_r50_fpn_d2_65k_cityscapes.py'
model = dict(
    inference='heuristic',
    panoptic_fusion_head=dict(
        _delete_=True,
        type='HeuristicPanopticFusionHead',
        num_things_classes=8,
        num_stuff_classes=11,
        overlap_thr=0.5,
        stuff_area_limit=2048))
