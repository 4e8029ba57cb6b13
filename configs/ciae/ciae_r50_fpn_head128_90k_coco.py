# ciae_r50_fpn_90k_coco.py with 128-channel proposal towers (a departure
# from the paper's 256, declared in the README): on a CPU the two towers of
# 4 3x3 convs over P3-P7 are most of the head's cost (as for
# RealTimePanoptic, see configs/realtime_panoptic/README.md, "Speed"); this
# variant is for CPU benchmarks. Its accuracy is not measured.
_base_ = './ciae_r50_fpn_90k_coco.py'
model = dict(bbox_head=dict(feat_channels=128))
