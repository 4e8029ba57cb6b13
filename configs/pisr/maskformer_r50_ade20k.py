# MaskFormer R50 + PISR on ADE20K panoptic (PISR Table 3: MaskFormer R50
# 34.7 -> 36.1 PQ; Table 4: 116.6 -> 136.0 GFLOPs, 21.1 -> 20.4 FPS on an
# A100 at 375x500): the baseline ../maskformer/maskformer_r50_ade20k.py
# (MaskFormer's ADE20K panoptic recipe) with MaskFormerPISR and its keys,
# nothing else (tested).
#
# Where F, S and I come from (MaskFormerPISR's docstring, README "MaskFormer
# + PISR"): F = the pixel decoder's per-pixel embeddings (stride 4, 256
# ch), S = MaskFormer's semantic inference from the last decoder layer's
# queries, I = the sigmoid masks of the K queries with the highest
# thing-class probability. K = 50 of the 100 queries, gamma = 1 and the
# affinity width (256) as the other PISR configs: the paper does not give
# them for MaskFormer.
#   tools/dist_train.sh configs/pisr/maskformer_r50_ade20k.py 8
_base_ = '../maskformer/maskformer_r50_ade20k.py'
model = dict(
    type='MaskFormerPISR',
    pisr=dict(
        type='PISREncoder',
        num_instances=50,
        use_reweighting=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    gamma=1.0,
    instance_score_thr=0.05,
    final_input='pan')
