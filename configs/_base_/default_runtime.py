# Runtime shared by every config of mmpanoptic_plus.
default_scope = 'mmpanoptic_plus'
# Lets mmdet's/mmengine's own tools (not only ours) load these configs: the
# import registers our modules and those of mmdet/mmseg (their registries are
# filled lazily and would otherwise miss ResNet & co. in our scope).
custom_imports = dict(
    imports=['mmpanoptic_plus.utils.register'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PanopticVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when CUDA is unavailable
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='PanopticLocalVisualizer', vis_backends=vis_backends,
    name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
