# RealTimePanoptic R50-FPN on Cityscapes with 128-channel head towers: the
# CPU-speed variant. Everything else (data, schedule, losses, inference) is
# rtp_r50_fpn_48k_cityscapes.py.
#
# Departure from the paper, on purpose: the paper's head (two towers of 4
# 3x3 convs of 256 channels on P3-P7) has 208 GMAC at 1024x2048, more than
# the ResNet-50 itself (172 GMAC); with it the network is ~0.8 of Panoptic
# FPN R50's CPU time (see README). 128-channel towers cut the head to 65
# GMAC (the FPN stays at 256 channels; the towers' first conv maps
# 256 -> 128).
# Accuracy on Cityscapes is not measured here.
_base_ = './rtp_r50_fpn_48k_cityscapes.py'
model = dict(bbox_head=dict(feat_channels=128))
