# Panoptic FPN R50-FPN 1x + PISR (Borse et al., CVPR 2022) on COCO panoptic:
# mmdet's Panoptic FPN recipe of
# ../panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py (8 GPUs x 2 images, SGD 0.02, 12 epochs) wrapped by the PISR module
# (PanopticFPNPISR: F = the semantic head's fused stride-4 feature, S = its
# stuff + "things" softmax, I = the top-K detections' masks; final semantic
# classifier and a second Mask R-CNN RoI head on the PISR-enhanced features).
#   tools/dist_train.sh configs/pisr/pfpn_r50_coco.py 8
# Paper result (Table 2, COCO val, RN50-FPN): 42.7 PQ (Panoptic FPN alone
# 39.2 as the paper reports it; mmdet's model zoo: 40.2).
#
# PISR settings as the Panoptic-DeepLab + PISR configs (the paper's main
# text gives neither K nor gamma; no official code):
# - num_instances (K) = 50 top-scoring detections per image (score > 0.05,
#   class-agnostic NMS 0.5: PISR_INSTANCE_CFG);
# - gamma = 1.0: the initial-prediction losses weigh as much as the final;
# - affinity channels = the channels of F (semantic head inner_channels,
#   128), reweighting on, SyncBN in the encoder (2 images per GPU).
_base_ = '../panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'
model = dict(
    type='PanopticFPNPISR',
    pisr=dict(
        type='PISREncoder',
        num_instances=50,
        channels=128,
        use_reweighting=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    gamma=1.0)
