# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Child registries of MMDetection's, in the scope ``mmpanoptic_plus``.

Configs set ``default_scope = 'mmpanoptic_plus'``: our types are found here,
mmdet's resolve through the parent, mmseg's are written ``mmseg.X``.

MMDetection's registries are filled lazily (on first use the ``locations`` are
imported), and a lookup that falls back to the parent does *not* trigger that
import; :func:`mmpanoptic_plus.utils.register_all_modules` therefore imports
``mmdet.models`` and ``mmseg.models`` explicitly.
"""
from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmdet.registry import EVALUATOR as MMDET_EVALUATOR
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import LOG_PROCESSORS as MMDET_LOG_PROCESSORS
from mmdet.registry import LOOPS as MMDET_LOOPS
from mmdet.registry import METRICS as MMDET_METRICS
from mmdet.registry import MODEL_WRAPPERS as MMDET_MODEL_WRAPPERS
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as \
    MMDET_OPTIM_WRAPPER_CONSTRUCTORS
from mmdet.registry import OPTIM_WRAPPERS as MMDET_OPTIM_WRAPPERS
from mmdet.registry import OPTIMIZERS as MMDET_OPTIMIZERS
from mmdet.registry import PARAM_SCHEDULERS as MMDET_PARAM_SCHEDULERS
from mmdet.registry import RUNNERS as MMDET_RUNNERS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmdet.registry import VISBACKENDS as MMDET_VISBACKENDS
from mmdet.registry import VISUALIZERS as MMDET_VISUALIZERS
from mmdet.registry import WEIGHT_INITIALIZERS as MMDET_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'mmpanoptic_plus'


def _child(name: str, parent: Registry, locations: list) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=locations)


RUNNERS = _child('runner', MMDET_RUNNERS, ['mmpanoptic_plus.engine'])
LOOPS = _child('loop', MMDET_LOOPS, ['mmpanoptic_plus.engine'])
LOG_PROCESSORS = _child('log_processor', MMDET_LOG_PROCESSORS,
                        ['mmpanoptic_plus.engine'])
HOOKS = _child('hook', MMDET_HOOKS, ['mmpanoptic_plus.engine.hooks'])
DATASETS = _child('dataset', MMDET_DATASETS, ['mmpanoptic_plus.datasets'])
DATA_SAMPLERS = _child('data sampler', MMDET_DATA_SAMPLERS,
                       ['mmpanoptic_plus.datasets'])
TRANSFORMS = _child('transform', MMDET_TRANSFORMS,
                    ['mmpanoptic_plus.datasets.transforms'])
MODELS = _child('model', MMDET_MODELS, ['mmpanoptic_plus.models'])
MODEL_WRAPPERS = _child('model_wrapper', MMDET_MODEL_WRAPPERS,
                        ['mmpanoptic_plus.models'])
WEIGHT_INITIALIZERS = _child('weight initializer', MMDET_WEIGHT_INITIALIZERS,
                             ['mmpanoptic_plus.models'])
OPTIMIZERS = _child('optimizer', MMDET_OPTIMIZERS, ['mmpanoptic_plus.engine'])
OPTIM_WRAPPERS = _child('optim wrapper', MMDET_OPTIM_WRAPPERS,
                        ['mmpanoptic_plus.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMDET_OPTIM_WRAPPER_CONSTRUCTORS,
                                    ['mmpanoptic_plus.engine'])
PARAM_SCHEDULERS = _child('parameter scheduler', MMDET_PARAM_SCHEDULERS,
                          ['mmpanoptic_plus.engine'])
METRICS = _child('metric', MMDET_METRICS, ['mmpanoptic_plus.evaluation'])
EVALUATOR = _child('evaluator', MMDET_EVALUATOR,
                   ['mmpanoptic_plus.evaluation'])
TASK_UTILS = _child('task util', MMDET_TASK_UTILS, ['mmpanoptic_plus.models'])
VISUALIZERS = _child('visualizer', MMDET_VISUALIZERS,
                     ['mmpanoptic_plus.visualization'])
VISBACKENDS = _child('vis_backend', MMDET_VISBACKENDS,
                     ['mmpanoptic_plus.visualization'])
