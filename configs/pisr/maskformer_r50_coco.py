# MaskFormer R50 + PISR on COCO panoptic: the baseline
# ../maskformer/maskformer_r50_coco.py (mmdet 3.3's MaskFormer recipe, 16
# GPUs x 1 image, 75 epochs) with MaskFormerPISR and its keys, nothing else
# (tested). PISR's settings as ./maskformer_r50_ade20k.py (K = 50, gamma 1,
# affinity width 256). The paper reports PISR on MaskFormer for ADE20K
# only (Table 3); COCO is not measured.
#   tools/dist_train.sh configs/pisr/maskformer_r50_coco.py 16
_base_ = '../maskformer/maskformer_r50_coco.py'
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
