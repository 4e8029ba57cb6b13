# The methods `tools/analysis_tools/compare_methods.py` (and `make compare`)
# puts side by side. One dict per method; a new method joins with one entry.
#
#   key               short name for --methods (letters, digits, _ and -)
#   name              the name printed in the table and the picture
#   synthetic_config  the method's *_synthetic.py config: PQ / mIoU of
#                     `checkpoint` on a freshly generated synthetic val set
#   checkpoint        the shipped synthetic checkpoint (demo/checkpoints/),
#                     or None: the PQ columns then say "no checkpoint"
#   paper_config      the paper-scale R50 config (Cityscapes, 1024x2048
#                     testing): ms/img with random weights, parameters, MACs
#   speed_options     config overrides for the speed run only (key=value as
#                     in --cfg-options), e.g. a post-processing's worst case
#   speed_note        why those overrides (printed under the table)
#
# Paths are relative to the repository root (or absolute). Another registry
# can inherit this one (`_base_ = ['methods.py']`) and change `methods`.
methods = [
    dict(
        key='panoptic_fpn',
        name='Panoptic FPN',
        synthetic_config='configs/panoptic_fpn/panoptic-fpn_r18_synthetic.py',
        checkpoint=None,
        paper_config='configs/panoptic_fpn/'
        'panoptic-fpn_r50_fpn_65k_cityscapes.py',
        speed_options=dict(),
        speed_note=''),
    dict(
        key='panoptic_deeplab',
        name='Panoptic-DeepLab',
        synthetic_config='configs/panoptic_deeplab/pdl_r18_synthetic.py',
        checkpoint=None,
        paper_config='configs/panoptic_deeplab/pdl_r50_city.py',
        speed_options={'model.test_cfg.center_threshold': -1.0},
        speed_note='center_threshold=-1: the grouping gets all top_k=200 '
        'centers (the post-processing\'s worst case)'),
    dict(
        key='pisr',
        name='Panoptic-DeepLab + PISR',
        # the half-width variant of pdl_r18_synthetic.py: the full width
        # does not fit a shipped file (configs/pisr/README.md)
        synthetic_config='configs/pisr/pdl_r18-half_synthetic.py',
        checkpoint='demo/checkpoints/pisr_pdl_r18-half_synthetic-cbe91d6a.pth',
        paper_config='configs/pisr/pdl_r50_city.py',
        speed_options={'model.test_cfg.center_threshold': -1.0},
        speed_note='center_threshold=-1, as Panoptic-DeepLab'),
    dict(
        key='rtp',
        name='RealTimePanoptic',
        synthetic_config='configs/realtime_panoptic/rtp_r18_synthetic.py',
        checkpoint='demo/checkpoints/rtp_r18_synthetic-feaac823.pth',
        paper_config='configs/realtime_panoptic/rtp_r50_fpn_48k_cityscapes.py',
        speed_options={'model.test_cfg.score_thr': 0.0},
        speed_note='score_thr=0: all 100 query masks are built (the '
        'post-processing\'s worst case)'),
    dict(
        key='ciae',
        name='CIAE',
        synthetic_config='configs/ciae/ciae_r18_synthetic.py',
        checkpoint='demo/checkpoints/ciae_r18_synthetic-de96b89e.pth',
        paper_config='configs/ciae/ciae_r50_fpn_cityscapes.py',
        speed_options={'model.test_cfg.score_thr': 0.0},
        speed_note='score_thr=0: up to max_per_img=100 proposals reach the '
        'embedding step (the post-processing\'s worst case)'),
    dict(
        key='unified_d2',
        name='Unified D2',
        synthetic_config='configs/unified/unified_r18_d2_synthetic.py',
        checkpoint='demo/checkpoints/unified_d2_r18_synthetic-bf1d8d6d.pth',
        paper_config='configs/unified/unified_r50_fpn_d2_65k_cityscapes.py',
        speed_options=dict(),
        speed_note=''),
    dict(
        key='pss',
        name='PSS',
        synthetic_config='configs/pss/pss_r18_synthetic.py',
        checkpoint='demo/checkpoints/pss_r18_synthetic-c76ad347.pth',
        paper_config='configs/pss/pss_r50_fpn_90k_cityscapes.py',
        speed_options=dict(),
        speed_note=''),
]
