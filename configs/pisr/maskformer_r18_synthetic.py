# MaskFormer R18 + PISR on the synthetic panoptic set (CPU in minutes): the
# baseline ../maskformer/maskformer_r18_synthetic.py (random-init
# ResNet-18, plain FPN pixel decoder, 3-layer 64-wide Transformer decoder,
# 20 queries; 2000 iterations, batch 4) with MaskFormerPISR: K = 10
# instance slots, 16 affinity channels, BN (one process). Nothing else
# differs (tested). The final stage is residual (MaskFormerPISR's
# default final_residual=True): the first runs without it lost the things
# (./README.md, "Seed sweep").
#   python tools/dataset_converters/make_synthetic.py --out data/synthetic \
#       --num-train 600 --num-val 100 --seed 0
#   python tools/train.py configs/pisr/maskformer_r18_synthetic.py
_base_ = '../maskformer/maskformer_r18_synthetic.py'
model = dict(
    type='MaskFormerPISR',
    pisr=dict(
        type='PISREncoder',
        num_instances=10,
        channels=16,
        use_reweighting=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    gamma=1.0,
    instance_score_thr=0.05,
    final_input='pan',
    final_residual=True)
