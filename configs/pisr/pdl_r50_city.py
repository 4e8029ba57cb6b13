# Panoptic-DeepLab R50 (output stride 16) + PISR (Borse et al., CVPR 2022) on
# Cityscapes: the Panoptic-DeepLab recipe of
# ../panoptic_deeplab/pdl_r50_city.py (512x1024 crops, batch 32, Adam 1e-3,
# 90k iterations, poly) with the PISR module on both decoders.
#   tools/dist_train.sh configs/pisr/pdl_r50_city.py 8
#
# PISR settings: no official code has been released and the values below
# could not be checked against the paper text here (to verify):
# - num_instances (K) = 50 top-scoring centers per image;
# - gamma = 1.0: the initial-prediction losses weigh as much as the final
#   ones;
# - center threshold 0.1 (Panoptic-DeepLab's inference threshold) and a 3x3
#   NMS on the stride-4 center map (~ the 7-pixel NMS of the inference at
#   input resolution);
# - affinity channels = the decoder channels of each branch (256 semantic,
#   128 instance), reweighting on.
_base_ = '../panoptic_deeplab/pdl_r50_city.py'
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
    pisr_nms_kernel=3)
