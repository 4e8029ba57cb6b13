# UPerNet Swin-L modified for panoptic segmentation + PISR on COCO panoptic
# (PISR Table 2: UPerNet Swin-L 50.3 -> 52.9 PQ on val, 50.9 -> 53.2 on
# test-dev): the baseline ../upernet/upernet_swin-l_coco.py (Swin-L
# ImageNet-22k, mmseg's Swin optimiser, Panoptic-DeepLab's COCO recipe)
# with PISR as ./upernet_r50_coco.py, nothing else (tested). Memory: the
# baseline's estimate (80 GB GPUs for 8 images of 640x640) plus PISR's
# stage; not measured.
#   tools/dist_train.sh configs/pisr/upernet_swin-l_coco.py 8
_base_ = '../upernet/upernet_swin-l_coco.py'
model = dict(
    pisr=dict(
        type='PISREncoder',
        num_instances=50,
        use_reweighting=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=11)
