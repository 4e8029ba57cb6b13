# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The panoptic map from the outputs of the exported RealTimePanoptic graph,
by the same function ``model.predict`` ends with
(:func:`rtp_queries_to_panoptic`), so that the two maps are equal."""
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmpanoptic_plus.models.postprocess.realtime_panoptic import (
    merge_rtp_test_cfg, rtp_queries_to_panoptic)
from .rtp_export_wrapper import RTP_ONNX_OUTPUTS


def _as_tensor(value: Union[Tensor, np.ndarray]) -> Tensor:
    return value if isinstance(value, Tensor) else torch.from_numpy(
        np.asarray(value))


def onnx_outputs_to_panoptic(
        outputs: Union[Sequence, Dict[str, object]],
        num_things: int,
        num_stuff: int,
        img_shape: Sequence[int],
        out_shape: Optional[Sequence[int]] = None,
        test_cfg: Optional[dict] = None,
        stride: int = 4,
        scale_factor: Optional[Sequence[float]] = None) -> dict:
    """Panoptic map from the graph's outputs, as ``model.predict`` makes it.

    The valid query slots and their soft masks go through
    :func:`rtp_queries_to_panoptic` in chunks of ``chunk_size``: masks
    resampled to ``out_shape`` and thresholded at ``mask_thr``, semantic
    logits resampled and argmaxed, fusion by score (overlap rule, stuff area
    limit), boxes divided by ``scale_factor``.

    Args:
        outputs (Sequence | dict): The six outputs (numpy arrays or
            tensors) in :data:`RTP_ONNX_OUTPUTS` order, or a dict by name.
        num_things (int): Thing classes.
        num_stuff (int): Stuff classes.
        img_shape (Sequence[int]): Valid (H, W) of the graph input.
        out_shape (Sequence[int], optional): (H, W) of the result, e.g. the
            original image size. Defaults to ``img_shape``.
        test_cfg (dict, optional): The post-processing settings, keys of
            :data:`RTP_TEST_CFG` (``mask_thr``, ``chunk_size``,
            ``overlap_thr``, ``stuff_area_limit``, ``instance_score_thr``
            matter here). Defaults to :data:`RTP_TEST_CFG`; pass the
            exported one (``read_rtp_onnx_metadata(f)['postprocess']``).
        stride (int): Stride of the soft masks and logits. Defaults to 4.
        scale_factor (Sequence[float], optional): (w, h) factor from the
            output to the graph input, as mmdet's metainfo has it; boxes are
            divided by it. Defaults to ``img_shape / out_shape``.

    Returns:
        dict: As one image of :func:`rtp_panoptic_predict`:
        ``pan_results`` (PixelData ``sem_seg`` (1, H, W) int64, ``label +
        instance_id * INSTANCE_OFFSET``, void ``num_things + num_stuff``)
        and ``ins_results`` (InstanceData ``bboxes``, ``scores``,
        ``labels``, ``masks`` as :class:`CroppedMasks`).
    """
    if isinstance(outputs, dict):
        missing = [name for name in RTP_ONNX_OUTPUTS if name not in outputs]
        if missing:
            raise KeyError(f'outputs lack {missing}')
        outputs = [outputs[name] for name in RTP_ONNX_OUTPUTS]
    if len(outputs) != len(RTP_ONNX_OUTPUTS):
        raise ValueError(f'expected the {len(RTP_ONNX_OUTPUTS)} outputs '
                         f'{RTP_ONNX_OUTPUTS}, got {len(outputs)}')
    boxes, scores, labels, mask_probs, sem_logits, num_valid = (
        _as_tensor(value) for value in outputs)
    cfg = merge_rtp_test_cfg(test_cfg)
    num_classes = num_things + num_stuff
    if sem_logits.dim() != 3 or sem_logits.size(0) != num_classes:
        raise ValueError(f'sem_logits must be ({num_classes}, h, w) for '
                         f'{num_things} things + {num_stuff} stuff, got '
                         f'{tuple(sem_logits.shape)}')
    count = int(num_valid)
    if not 0 <= count <= len(boxes):
        raise ValueError(f'num_valid={count} outside [0, {len(boxes)}]')
    queries = InstanceData(
        bboxes=boxes[:count].float(),
        scores=scores[:count].float(),
        labels=labels[:count].long())
    img_shape = tuple(int(size) for size in img_shape)
    out_shape = img_shape if out_shape is None else tuple(
        int(size) for size in out_shape)
    if scale_factor is None and out_shape != img_shape:
        scale_factor = (img_shape[1] / out_shape[1],
                        img_shape[0] / out_shape[0])
    return rtp_queries_to_panoptic(
        queries,
        # chunk_size < 1 is rejected there, not by split
        mask_probs[:count].float().split(max(cfg['chunk_size'], 1)),
        sem_logits.float(),
        img_shape,
        out_shape,
        num_things,
        num_stuff,
        cfg,
        stride=stride,
        scale_factor=scale_factor)
