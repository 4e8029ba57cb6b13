# UPerNet R50 modified for panoptic segmentation + PISR on COCO panoptic:
# the baseline ../upernet/upernet_r50_coco.py (UPerNet's fused stride-4
# map read by Panoptic-DeepLab's prediction heads, Panoptic-DeepLab's COCO
# recipe) with the PISR stage of UPerNetPISR switched on, nothing else
# (tested): S and I from the initial heads, one PISR on F, final heads on
# F_pan. PISR as the other COCO configs: K = 50, gamma = 1, center
# threshold 0.1 with an 11x11 NMS on the stride-4 map. Not measured.
#   tools/dist_train.sh configs/pisr/upernet_r50_coco.py 8
_base_ = '../upernet/upernet_r50_coco.py'
model = dict(
    pisr=dict(
        type='PISREncoder',
        num_instances=50,
        use_reweighting=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=11)
