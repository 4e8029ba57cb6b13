# Panoptic-DeepLab R18 + PISR on the synthetic panoptic set (CPU in minutes):
# same data, schedule and budget as ../panoptic_deeplab/pdl_r18_synthetic.py
# (2000 iterations, batch 4, AdamW 1e-3), so the two are directly
# comparable; small PISR (16 affinity channels, K = 10: the 256x256 images
# hold a handful of things) keeps the extra cost low.
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/pisr/pdl_r18_synthetic.py
_base_ = '../panoptic_deeplab/pdl_r18_synthetic.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='PanopticDeepLabPISR',
    pisr=dict(
        type='PISREncoder',
        num_instances=10,
        channels=16,
        use_reweighting=True,
        norm_cfg=norm_cfg),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=3)
