# Panoptic-DeepLab R18 + PISR at half width: the synthetic checkpoint that
# ships in demo/checkpoints/ (the full-width ./pdl_r18_synthetic.py, 13.2 M
# parameters, is 25 MiB in fp16, over the 8 MB limit for a shipped file).
# Everything but the width is ./pdl_r18_synthetic.py: same data, 2000
# iterations, batch 4, AdamW 1e-3, the same heads and PISR (K = 10, 16
# affinity channels). ResNet-18 with 32 base channels (stage widths 32, 64,
# 128, 256), as the other methods' shipped synthetic models.
#   python tools/train.py configs/pisr/pdl_r18-half_synthetic.py
_base_ = './pdl_r18_synthetic.py'
backbone_channels = (32, 64, 128, 256)
model = dict(
    backbone=dict(base_channels=32),
    semantic_head=dict(decoder=dict(in_channels=backbone_channels)),
    instance_head=dict(decoder=dict(in_channels=backbone_channels)))
