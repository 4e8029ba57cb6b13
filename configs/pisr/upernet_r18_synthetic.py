# UPerNet R18 modified for panoptic segmentation + PISR on the synthetic
# panoptic set (CPU in minutes): the baseline
# ../upernet/upernet_r18_synthetic.py (64-channel UPerNet fusion, the data
# and budget of ../panoptic_deeplab/pdl_r18_synthetic.py) with PISR: K =
# 10 and 16 affinity channels as ./pdl_r18_synthetic.py. Nothing else
# differs (tested).
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/pisr/upernet_r18_synthetic.py
_base_ = '../upernet/upernet_r18_synthetic.py'
model = dict(
    pisr=dict(
        type='PISREncoder',
        num_instances=10,
        channels=16,
        use_reweighting=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    gamma=1.0,
    pisr_center_threshold=0.1,
    pisr_nms_kernel=3)
