# Panoptic-DeepLab R50 (output stride 16) + PISR (Borse et al., CVPR 2022) on
# COCO panoptic: the Panoptic-DeepLab recipe of
# ../panoptic_deeplab/pdl_r50_coco.py (short side 320-960 with the long side
# capped at 640, 640x640 crops, batch 64, Adam 5e-4, 200k iterations, poly)
# with the PISR module on both decoders. Paper result (Table 2, COCO val):
# 38.8 PQ (Panoptic-DeepLab alone 35.5).
#   tools/dist_train.sh configs/pisr/pdl_r50_coco.py 8
#
# PISR settings as configs/pisr/pdl_r50_city.py (K = 50, gamma = 1.0: not
# given in the paper's main text), except the center NMS: COCO's inference
# NMS is 41 input pixels, 11 on the stride-4 map.
_base_ = '../panoptic_deeplab/pdl_r50_coco.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='PanopticDeepLabPISR',
    pisr=dict(
        type='PISREncoder',
        num_instances=50,
        use_reweighting=True,
        norm_cfg=norm_cfg),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=11)
