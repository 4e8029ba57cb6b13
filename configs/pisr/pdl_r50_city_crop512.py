# Declared variant of pdl_r50_city.py: Panoptic-DeepLab R50 + PISR trained on
# detectron2's 512x1024 crops (../panoptic_deeplab/pdl_r50_city_crop512.py)
# instead of the paper's whole 1024x2048 images, for GPUs with less than
# about 40 GB (see pdl_r50_city.py). PISR settings as pdl_r50_city.py.
#   tools/dist_train.sh configs/pisr/pdl_r50_city_crop512.py 8
_base_ = '../panoptic_deeplab/pdl_r50_city_crop512.py'
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
