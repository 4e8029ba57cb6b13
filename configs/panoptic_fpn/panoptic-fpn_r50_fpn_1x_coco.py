# Panoptic FPN R50-FPN, 1x on COCO panoptic: mmdet's recipe with our loader
# and our PQ metric (mmdet's need panopticapi).
_base_ = [
    '../_base_/models/panoptic_fpn_r50_fpn.py',
    '../_base_/datasets/coco_panoptic.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
