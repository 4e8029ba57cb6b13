# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Build a panoptic model from a config and run it on images.

The counterpart of mmdet's ``init_detector`` / ``inference_detector`` for
our models: images are loaded here (with clear errors and channel fixes) and
fed as arrays through the config's test pipeline, stripped of the
annotation loading and GT meta keys that a bare image cannot provide.
"""
import copy
import os.path as osp
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn as nn
from mmcv.transforms import Compose
from mmdet.structures import DetDataSample
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.runner import load_checkpoint

from mmpanoptic_plus.registry import DATASETS, MODELS
from mmpanoptic_plus.utils import register_all_modules
from mmpanoptic_plus.visualization.panoptic_drawing import \
    class_names_from_meta

ImageType = Union[str, Path, np.ndarray]

# Transforms that read or need ground truth: removed from the test pipeline.
GT_TRANSFORMS = ('LoadPanopticAnnotations', 'LoadAnnotations')
# Meta keys that describe ground truth: removed from the Pack transforms.
GT_META_KEYS = ('seg_map_path', 'segments_info', 'instances', 'sem_seg_path')
# mmdet's PackDetInputs defaults.
IMAGE_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction')
PACK_TRANSFORMS = ('PackPanopticInputs', 'PackDetInputs')


def _type_name(transform_cfg: Dict) -> str:
    """Transform type without its scope, e.g. ``'mmdet.Resize'`` ->
    ``'Resize'``."""
    type_name = transform_cfg.get('type', '')
    if not isinstance(type_name, str):  # a class given directly
        type_name = type_name.__name__
    return type_name.split('.')[-1]


def load_image(image: ImageType) -> np.ndarray:
    """Load an image, or check an array, as a 3-channel uint8 BGR array.

    Files are decoded with OpenCV's colour mode, as mmcv's
    ``LoadImageFromFile`` does by default (grayscale is expanded, alpha
    dropped, 16-bit reduced to 8, EXIF orientation applied). Arrays are
    taken as OpenCV gives them (BGR): ``(H, W)`` and ``(H, W, 1)`` are
    expanded to 3 channels, the alpha of ``(H, W, 4)`` is dropped, uint16 is
    scaled to 8 bits and other dtypes are clipped to [0, 255].

    Args:
        image (str | Path | np.ndarray): Path or array.

    Returns:
        np.ndarray: uint8 ``(H, W, 3)``, BGR.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The path is a folder, the file is empty or cannot be
            decoded, or the array is empty or has an unsupported shape.
    """
    if isinstance(image, (str, Path)):
        path = str(image)
        if not osp.exists(path):
            raise FileNotFoundError(f'Image file not found: {path}')
        if osp.isdir(path):
            raise ValueError(f'{path} is a folder, not an image file')
        with open(path, 'rb') as file:
            data = file.read()
        if not data:
            raise ValueError(f'Image file {path} is empty (0 bytes)')
        decoded = cv2.imdecode(
            np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError(f'Cannot decode {path} as an image: the file is '
                             'corrupt or not in an image format OpenCV reads')
        array = decoded
        source = path
    elif isinstance(image, np.ndarray):
        array = image
        source = 'the image array'
    else:
        raise TypeError('An image must be a path or a numpy array, got '
                        f'{type(image).__name__}')

    if array.size == 0:
        raise ValueError(f'{source} is empty (shape {array.shape})')
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f'{source} has shape {array.shape}; expected '
                         '(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)')
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[..., :3]
    if array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def build_inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline, fed with arrays and without GT.

    ``LoadImageFromFile`` becomes ``LoadImageFromNDArray`` (images are
    loaded by :func:`load_image`), annotation loaders (:data:`GT_TRANSFORMS`)
    are removed, and the Pack transform keeps only image meta keys.

    Args:
        cfg (Config): Full config with a ``test_dataloader``.

    Returns:
        Compose: The pipeline.
    """
    pipeline_cfg = copy.deepcopy(get_test_pipeline_cfg(cfg))
    transforms = []
    for transform in pipeline_cfg:
        type_name = _type_name(transform)
        if type_name in GT_TRANSFORMS:
            continue
        transform = ConfigDict(transform)
        if type_name == 'LoadImageFromFile':
            # the array comes from load_image; file-reading options go
            transform = ConfigDict(
                type='mmdet.LoadImageFromNDArray',
                to_float32=transform.get('to_float32', False))
        elif type_name in PACK_TRANSFORMS:
            meta_keys = transform.get('meta_keys', IMAGE_META_KEYS)
            transform.meta_keys = tuple(
                key for key in meta_keys if key not in GT_META_KEYS)
        transforms.append(transform)
    if not transforms or _type_name(transforms[0]) != 'LoadImageFromNDArray':
        raise ValueError(
            'The test pipeline must start with LoadImageFromFile; got '
            f'{[_type_name(t) for t in pipeline_cfg]}')
    return Compose(transforms)


def _dataset_meta_from_config(cfg: Config) -> Dict:
    """Metainfo of the config's test dataset, without loading annotations."""
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    while 'dataset' in dataset_cfg and 'metainfo' not in dataset_cfg:
        dataset_cfg = dataset_cfg.dataset  # dataset wrappers
    try:
        dataset_cfg['lazy_init'] = True
        return dict(DATASETS.build(dataset_cfg).metainfo)
    except Exception as error:  # a missing data root must not stop a demo
        metainfo = dataset_cfg.get('metainfo')
        if metainfo is None:
            raise ValueError(
                'Cannot get the class names: the checkpoint stores no '
                'dataset_meta, the test dataset of the config could not be '
                f'built ({error}) and it has no "metainfo"') from error
        return dict(metainfo)


def _model_num_classes(model: nn.Module) -> Optional[int]:
    """Number of classes the model predicts, when it says (void label)."""
    for holder in (getattr(model, 'panoptic_fusion_head', None), model):
        num_classes = getattr(holder, 'num_classes', None)
        if isinstance(num_classes, int):
            return num_classes
    return None


def init_panoptic_model(config: Union[str, Path, Config],
                        checkpoint: Optional[str] = None,
                        device: str = 'cpu',
                        cfg_options: Optional[Dict] = None) -> nn.Module:
    """Build a panoptic model from a config and load its weights.

    Registers our modules (and sets the default scope), builds the model,
    loads the checkpoint and attaches ``model.dataset_meta`` (classes,
    thing/stuff classes, palette): from the checkpoint's ``meta`` when it
    stores it, else from the config's test dataset (built lazily, no
    annotation is read). Without a checkpoint the model is randomly
    initialised (the backbone's ``Pretrained`` init is not run either, so
    nothing is downloaded).

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file.
        device (str): Device, e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and ``dataset_meta``.
    """
    register_all_modules()
    if isinstance(config, (str, Path)):
        if not osp.isfile(str(config)):
            raise FileNotFoundError(f'Config file not found: {config}')
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    if 'init_cfg' in config.model.get('backbone', {}):
        config.model.backbone.init_cfg = None

    model = MODELS.build(config.model)
    model = revert_sync_batchnorm(model)

    dataset_meta = None
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'Checkpoint file not found: {checkpoint}')
        loaded = load_checkpoint(model, checkpoint, map_location='cpu')
        meta = loaded.get('meta', {}) if isinstance(loaded, dict) else {}
        if 'dataset_meta' in meta:
            dataset_meta = {
                key.lower(): value
                for key, value in meta['dataset_meta'].items()
            }
        else:
            warnings.warn(f'{checkpoint} stores no dataset_meta; the class '
                          'names come from the config')
    if dataset_meta is None:
        dataset_meta = _dataset_meta_from_config(config)
    classes = class_names_from_meta(dataset_meta)
    dataset_meta.setdefault('classes', classes)
    model_classes = _model_num_classes(model)
    if model_classes is not None and model_classes != len(classes):
        raise ValueError(
            f'The model predicts {model_classes} classes but the dataset '
            f'meta lists {len(classes)}: {classes}')

    model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def inference_panoptic(
    model: nn.Module,
    images: Union[ImageType, Sequence[ImageType]],
    test_pipeline: Optional[Compose] = None
) -> Union[DetDataSample, List[DetDataSample]]:
    """Run a panoptic model on one image or a list of images.

    Args:
        model (nn.Module): From :func:`init_panoptic_model`.
        images (str | Path | np.ndarray | Sequence): Image path(s) or BGR
            array(s) (see :func:`load_image` for the accepted forms).
        test_pipeline (Compose, optional): Built by
            :func:`build_inference_pipeline` from ``model.cfg`` when not
            given (pass one to reuse it across calls).

    Returns:
        DetDataSample | list[DetDataSample]: One per image (a list when a
        list was given), with ``pred_panoptic_seg`` (``sem_seg`` of shape
        ``(1, H, W)`` at the image's size) and metainfo ``img_path``
        (``None`` for arrays) and ``ori_shape``.

    Raises:
        FileNotFoundError, ValueError: From :func:`load_image`.
    """
    is_batch = isinstance(images, (list, tuple))
    image_list = list(images) if is_batch else [images]
    if test_pipeline is None:
        test_pipeline = build_inference_pipeline(model.cfg)

    results = []
    for index, image in enumerate(image_list):
        array = load_image(image)
        # mmdet's heads read 'scale_factor', which only Resize sets; seed
        # the identity so that pipelines without Resize work too
        data = test_pipeline(
            dict(img=array, img_id=index, scale_factor=(1.0, 1.0)))
        img_path = str(image) if isinstance(image, (str, Path)) else None
        data['data_samples'].set_metainfo(dict(img_path=img_path))
        batch = dict(
            inputs=[data['inputs']], data_samples=[data['data_samples']])
        with torch.no_grad():
            results.append(model.test_step(batch)[0])
    return results if is_batch else results[0]
