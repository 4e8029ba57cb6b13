# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ONNX export of RealTimePanoptic (Hou et al., CVPR 2020).

The paper's point is a single-shot network whose post-processing is
parameter-free and made of dense tensor operations, so that an inference
engine runs nearly all of it. :class:`RTPExportWrapper` puts in one graph:

- the input normalisation and padding of the model's data preprocessor,
- the network (ResNet-FPN + :class:`RTPHead`),
- the query-box selection of Sec. 3.3 (score ``class probability x
  centerness``, per-level top-k, box decoding and clipping, class-wise NMS as
  ONNX ``NonMaxSuppression``, ``max_per_img`` boxes) with fixed-size,
  zero-padded outputs,
- the parameter-free mask construction of Sec. 3.3: the levelness-chosen
  dense box map, ``P_loc = IoU(dense box, query box)`` and the soft masks
  ``P_loc x P_sem(class)`` at stride 4.

The score-ordered panoptic fusion (a sequential rule over the instances), the
bilinear upsampling + thresholding of the soft masks to the output size and
the stuff-area rule stay after the graph: :func:`onnx_outputs_to_panoptic`
runs them with the same functions as ``model.predict``
(:func:`rtp_panoptic_predict`), so the panoptic map is the same.

The graph is traced with the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``): the torch.export-based default
needs ``onnxscript`` and cannot translate mmcv's NMS. Opset >= 16
(``GridSample``).
"""
import json
import math
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmpanoptic_plus.models.postprocess.panoptic_fusion import \
    heuristic_panoptic_fusion
from mmpanoptic_plus.models.postprocess.realtime_panoptic import (
    CroppedMasks, build_dense_boxes, merge_rtp_test_cfg,
    rtp_mask_probabilities, semantic_labels_to_output,
    threshold_upsampled_masks)

#: Output names of the exported graph, in order (see
#: :meth:`RTPExportWrapper.forward`).
RTP_ONNX_OUTPUTS = ('boxes', 'scores', 'labels', 'mask_probs', 'sem_logits',
                    'num_valid')
#: Key of the JSON metadata stored in the ONNX file.
METADATA_KEY = 'mmpanoptic_plus.rtp'
#: ``GridSample`` (dense box map, global heads) exists from opset 16 on.
MIN_OPSET = 16


class _NonMaxSuppression(torch.autograd.Function):
    """Single-class NMS with the interface of ONNX ``NonMaxSuppression``:
    eager runs use mmcv's NMS kernel, export emits the ONNX operator.

    mmcv 2.1's ``nms`` has no ONNX symbolic (its export path went with
    mmcv-full 1.x), and torchvision, whose ``nms`` exports, is not a
    dependency; hence this thin function. Both suppress a box when its IoU
    with a kept, higher-scoring box is strictly above the threshold, and keep
    only scores strictly above ``score_threshold``.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_output: int,
                iou_threshold: float, score_threshold: float) -> Tensor:
        """(1, n, 4) boxes and (1, 1, n) scores -> (k, 3) int64 rows
        ``(batch 0, class 0, box index)`` by decreasing score."""
        from mmcv.ops import nms
        flat_boxes, flat_scores = boxes[0], scores[0, 0]
        candidates = (flat_scores > score_threshold).nonzero().squeeze(1)
        if candidates.numel():
            _, keep = nms(flat_boxes[candidates], flat_scores[candidates],
                          iou_threshold)
            keep = candidates[keep][:max_output]
        else:
            keep = candidates
        zeros = torch.zeros_like(keep)
        return torch.stack((zeros, zeros, keep), 1)

    @staticmethod
    def symbolic(g, boxes, scores, max_output: int, iou_threshold: float,
                 score_threshold: float):
        return g.op(
            'NonMaxSuppression', boxes, scores,
            g.op('Constant',
                 value_t=torch.tensor([max_output], dtype=torch.long)),
            g.op('Constant',
                 value_t=torch.tensor([iou_threshold], dtype=torch.float)),
            g.op('Constant',
                 value_t=torch.tensor([score_threshold], dtype=torch.float)))


def onnx_nms(boxes: Tensor,
             scores: Tensor,
             iou_threshold: float,
             score_threshold: float = 0.0,
             max_output: Optional[int] = None) -> Tensor:
    """Class-agnostic NMS that exports as ONNX ``NonMaxSuppression``.

    Args:
        boxes (Tensor): (n, 4) x1y1x2y2.
        scores (Tensor): (n,) scores.
        iou_threshold (float): A box goes when its IoU with a kept box is
            above this.
        score_threshold (float): Only boxes scoring above it are candidates.
            Defaults to 0.
        max_output (int, optional): At most this many indices. Defaults to
            ``n``.

    Returns:
        Tensor: (k,) int64 indices of the kept boxes, by decreasing score
        (``k`` depends on the data).
    """
    if max_output is None:
        max_output = boxes.size(0)
    selected = _NonMaxSuppression.apply(boxes[None], scores[None, None],
                                        int(max_output), float(iou_threshold),
                                        float(score_threshold))
    return selected[:, 2]


def _decode_and_clip(points: Tensor, ltrb: Tensor,
                     img_shape: Tuple[int, int]) -> Tensor:
    """(n, 2) points + (n, 4) ltrb -> (n, 4) x1y1x2y2 clipped to the image.

    The arithmetic of mmdet's ``distance2bbox`` (so that the boxes equal
    :func:`select_query_boxes`' bit for bit), written out because its ONNX
    branch imports the mmdet 2.x module ``mmdet.core.export``, which mmdet 3
    no longer has.
    """
    x1 = points[:, 0] - ltrb[:, 0]
    y1 = points[:, 1] - ltrb[:, 1]
    x2 = points[:, 0] + ltrb[:, 2]
    y2 = points[:, 1] + ltrb[:, 3]
    height, width = img_shape
    return torch.stack((x1.clamp(0, width), y1.clamp(0, height),
                        x2.clamp(0, width), y2.clamp(0, height)), -1)


def rtp_fixed_query_boxes(cls_probs: Sequence[Tensor],
                          centernesses: Sequence[Tensor],
                          bbox_preds: Sequence[Tensor],
                          strides: Sequence[int],
                          img_shape: Tuple[int, int],
                          score_thr: float = 0.05,
                          nms_pre: int = 1000,
                          iou_threshold: float = 0.6,
                          max_per_img: int = 100,
                          min_bbox_size: float = 0,
                          agnostic_iou_thr: Optional[float] = None
                          ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`select_query_boxes` for one image, traceable, with outputs of
    a fixed size.

    Same selection (Sec. 3.3 of the paper, defaults of the released code):
    candidates whose class probability exceeds ``score_thr``, scored
    ``probability x sigmoid(centerness)``, the ``nms_pre`` best per level,
    boxes decoded at mmdet's point grid and clipped to ``img_shape``, boxes
    narrower than ``min_bbox_size`` dropped, class-wise NMS (mmcv's
    ``batched_nms`` trick: boxes shifted by ``label x (max coordinate + 1)``,
    the maximum over the candidates), optionally a class-agnostic NMS, and
    the ``max_per_img`` best. Where :func:`select_query_boxes` removes
    candidates (data-dependent shapes), this sets their score to 0, which
    the NMS score threshold (strictly above 0) then drops; the first
    ``num_valid`` of the ``max_per_img`` slots hold the queries, by
    decreasing score, the others are padding.

    Args:
        cls_probs (Sequence[Tensor]): Per level (1, T, H_l, W_l) thing class
            probabilities (after sigmoid).
        centernesses (Sequence[Tensor]): Per level (1, 1, H_l, W_l)
            centerness logits.
        bbox_preds (Sequence[Tensor]): Per level (1, 4, H_l, W_l) ltrb
            distances in input pixels.
        strides (Sequence[int]): Stride of each level.
        img_shape (tuple[int, int]): (H, W) the boxes are clipped to.
        score_thr, nms_pre, iou_threshold, max_per_img, min_bbox_size,
            agnostic_iou_thr: As in :func:`select_query_boxes`
            (``iou_threshold`` is its ``nms_cfg['iou_threshold']``).

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]:

        - boxes (Tensor): (max_per_img, 4) x1y1x2y2, 0 in padding slots.
        - scores (Tensor): (max_per_img,), 0 in padding slots.
        - labels (Tensor): (max_per_img,) int64 thing labels, -1 in padding
          slots.
        - num_valid (Tensor): () int64 number of queries.
    """
    if not (len(cls_probs) == len(centernesses) == len(bbox_preds) ==
            len(strides)):
        raise ValueError(
            f'expected {len(strides)} levels of class probabilities, '
            f'centernesses and box regressions, got {len(cls_probs)}, '
            f'{len(centernesses)} and {len(bbox_preds)}')
    if cls_probs[0].size(0) != 1:
        raise ValueError('the export handles one image at a time, got a '
                         f'batch of {cls_probs[0].size(0)}')
    featmap_sizes = [tuple(cls_prob.shape[-2:]) for cls_prob in cls_probs]
    points = MlvlPointGenerator(
        strides, offset=0.5).grid_priors(
            featmap_sizes,
            dtype=bbox_preds[0].dtype,
            device=bbox_preds[0].device)
    level_boxes, level_scores, level_labels = [], [], []
    for cls_prob, centerness, bbox_pred, level_points in zip(
            cls_probs, centernesses, bbox_preds, points):
        num_things = cls_prob.size(1)
        probs = cls_prob[0].permute(1, 2, 0).reshape(-1, num_things)
        ctr = centerness[0].reshape(-1).sigmoid()
        ltrb = bbox_pred[0].permute(1, 2, 0).reshape(-1, 4)
        scores = torch.where(probs > score_thr, probs * ctr[:, None],
                             probs.new_zeros(()))
        scores, flat_index = scores.reshape(-1).topk(
            min(nms_pre, scores.numel()))
        location = torch.div(flat_index, num_things, rounding_mode='floor')
        level_boxes.append(
            _decode_and_clip(level_points[location], ltrb[location],
                             img_shape))
        level_scores.append(scores)
        level_labels.append(flat_index - location * num_things)
    boxes = torch.cat(level_boxes)
    scores = torch.cat(level_scores)
    labels = torch.cat(level_labels)
    if min_bbox_size > 0:
        big = ((boxes[:, 2] - boxes[:, 0]) >= min_bbox_size) & (
            (boxes[:, 3] - boxes[:, 1]) >= min_bbox_size)
        scores = torch.where(big, scores, scores.new_zeros(()))
    # mmcv's batched_nms offset, from the maximum over the candidates only
    # (the padding candidates' boxes must not change it); boxes.min() keeps
    # it finite without candidates
    candidate = scores > 0
    max_coordinate = torch.where(candidate[:, None], boxes,
                                 boxes.min()).max()
    shifted = boxes + (labels.to(boxes) * (max_coordinate + 1))[:, None]
    keep = onnx_nms(
        shifted,
        scores,
        iou_threshold,
        max_output=max_per_img if agnostic_iou_thr is None else None)
    if agnostic_iou_thr is not None:
        keep = keep[onnx_nms(
            boxes[keep],
            scores[keep],
            agnostic_iou_thr,
            max_output=max_per_img)]
    # fixed size: the kept indices, then index 0 as padding, cut at
    # max_per_img; the count stays a tensor so that it is computed in the
    # graph
    num_valid = torch.ones_like(keep).sum().clamp(max=max_per_img)
    slots = torch.cat((keep, keep.new_zeros(max_per_img)))[:max_per_img]
    slot_valid = torch.arange(max_per_img, device=keep.device) < num_valid
    boxes = torch.where(slot_valid[:, None], boxes[slots],
                        boxes.new_zeros(()))
    scores = torch.where(slot_valid, scores[slots], scores.new_zeros(()))
    labels = torch.where(slot_valid, labels[slots], labels.new_full((), -1))
    return boxes, scores, labels, num_valid


def _merged_test_cfg(model: nn.Module,
                     test_cfg: Optional[dict] = None) -> dict:
    """:data:`RTP_TEST_CFG` updated by the model's ``test_cfg`` and then by
    ``test_cfg`` (unknown keys are an error, as in ``model.predict``)."""
    cfg = merge_rtp_test_cfg(getattr(model, 'test_cfg', None), test_cfg)
    nms_cfg = dict(cfg['nms'])
    nms_type = nms_cfg.pop('type', 'nms')
    iou_threshold = nms_cfg.pop('iou_threshold', None)
    if nms_type != 'nms' or iou_threshold is None or nms_cfg:
        raise ValueError(
            'the ONNX export supports test_cfg.nms = dict(type="nms", '
            f'iou_threshold=...) only, got {dict(cfg["nms"])}')
    cfg['nms'] = dict(type='nms', iou_threshold=float(iou_threshold))
    return cfg


class RTPExportWrapper(nn.Module):
    """A :class:`RealTimePanoptic` as one exportable function of an image.

    Input (``preprocess=True``, default): one image as the model's data
    preprocessor receives it, a float tensor ``(1, 3, H, W)`` of raw pixel
    values in the channel order of the test pipeline (BGR as mmcv loads
    images, for the provided configs); the graph converts the channels,
    normalises with the preprocessor's mean/std and pads to its
    ``pad_size_divisor``, exactly as ``model.data_preprocessor`` does. With
    ``preprocess=False`` the input is the preprocessed, padded tensor and
    ``img_shape`` gives its valid (unpadded) size.

    Batch size 1; the export fixes H and W. Resize the image to the export
    size before the graph; :func:`onnx_outputs_to_panoptic` maps the result
    back to the original size.

    Args:
        model (nn.Module): A :class:`RealTimePanoptic` in eval mode.
        test_cfg (dict, optional): Overrides of the model's ``test_cfg``
            (keys of :data:`RTP_TEST_CFG`).
        preprocess (bool): Normalise and pad inside the graph. Defaults to
            True.
        img_shape (tuple[int, int], optional): Valid (H, W) of a
            preprocessed input (``preprocess=False``); defaults to the input
            size.
    """

    def __init__(self,
                 model: nn.Module,
                 test_cfg: Optional[dict] = None,
                 preprocess: bool = True,
                 img_shape: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        head = getattr(model, 'bbox_head', None)
        for attribute in ('num_things', 'num_stuff', 'strides',
                          'semantic_stride'):
            if not hasattr(head, attribute):
                raise TypeError(
                    'RTPExportWrapper needs a RealTimePanoptic model (an '
                    f'RTPHead as bbox_head); {type(model).__name__} has '
                    f'bbox_head {type(head).__name__}')
        if preprocess:
            preprocessor = model.data_preprocessor
            for attribute in ('_channel_conversion', '_enable_normalize',
                              'pad_size_divisor', 'pad_value'):
                if not hasattr(preprocessor, attribute):
                    raise TypeError(
                        'preprocess=True reproduces mmengine\'s '
                        'ImgDataPreprocessor (e.g. DetDataPreprocessor); '
                        f'got {type(preprocessor).__name__}: pass '
                        'preprocessed inputs with preprocess=False')
        self.model = model
        self.test_cfg = _merged_test_cfg(model, test_cfg)
        self.preprocess = preprocess
        self.img_shape = None if img_shape is None else tuple(img_shape)

    @property
    def num_things(self) -> int:
        return self.model.bbox_head.num_things

    @property
    def num_stuff(self) -> int:
        return self.model.bbox_head.num_stuff

    @property
    def stride(self) -> int:
        """Stride of the levelness, semantic and mask probability maps."""
        return self.model.bbox_head.semantic_stride

    def preprocess_image(self, image: Tensor) -> Tensor:
        """``model.data_preprocessor`` on one image: channel conversion,
        float, ``(x - mean) / std``, zero padding (``pad_value``) at the
        bottom and right to a multiple of ``pad_size_divisor``.

        Args:
            image (Tensor): (1, 3, H, W) raw pixel values.

        Returns:
            Tensor: (1, 3, H_pad, W_pad).
        """
        preprocessor = self.model.data_preprocessor
        inputs = image
        if preprocessor._channel_conversion:
            inputs = inputs[:, [2, 1, 0]]
        inputs = inputs.float()
        if preprocessor._enable_normalize:
            inputs = (inputs - preprocessor.mean) / preprocessor.std
        height, width = inputs.shape[-2:]
        divisor = preprocessor.pad_size_divisor
        pad_h = int(math.ceil(height / divisor)) * divisor - height
        pad_w = int(math.ceil(width / divisor)) * divisor - width
        if pad_h or pad_w:
            inputs = nn.functional.pad(inputs, (0, pad_w, 0, pad_h),
                                       'constant', preprocessor.pad_value)
        return inputs

    def valid_shape(self, image: Tensor) -> Tuple[int, int]:
        """(H, W) of the image part of the (padded) network input."""
        if self.preprocess or self.img_shape is None:
            return tuple(int(size) for size in image.shape[-2:])
        return self.img_shape

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        """Network, query selection and soft masks for one image.

        Args:
            image (Tensor): (1, 3, H, W), see the class docstring.

        Returns:
            tuple[Tensor, ...]: In :data:`RTP_ONNX_OUTPUTS` order, with
            ``N = max_per_img`` slots, ``C = T + S`` classes and
            ``(h, w)`` = the padded input size / ``stride`` (4):

            - boxes (Tensor): (N, 4) float x1y1x2y2 in input pixels.
            - scores (Tensor): (N,) float, by decreasing score.
            - labels (Tensor): (N,) int64 thing labels.
            - mask_probs (Tensor): (N, h, w) float ``P_loc x P_sem(label)``
              (Sec. 3.3), before upsampling and thresholding.
            - sem_logits (Tensor): (C, h, w) float semantic logits, things
              first.
            - num_valid (Tensor): () int64; slots ``>= num_valid`` are
              padding (boxes, scores and mask_probs 0, labels -1).
        """
        if image.dim() != 4 or image.size(0) != 1 or image.size(1) != 3:
            raise ValueError('expected one image (1, 3, H, W), got '
                             f'{tuple(image.shape)}')
        img_shape = self.valid_shape(image)
        inputs = self.preprocess_image(image) if self.preprocess else image
        head = self.model.bbox_head
        cfg = self.test_cfg
        feats = self.model.extract_feat(inputs)
        cls_scores, bbox_preds, centernesses, levelness, sem_logits = head(
            feats)
        boxes, scores, labels, num_valid = rtp_fixed_query_boxes(
            [score.sigmoid() for score in cls_scores],
            centernesses,
            bbox_preds,
            head.strides,
            img_shape,
            score_thr=cfg['score_thr'],
            nms_pre=cfg['nms_pre'],
            iou_threshold=cfg['nms']['iou_threshold'],
            max_per_img=cfg['max_per_img'],
            min_bbox_size=cfg['min_bbox_size'],
            agnostic_iou_thr=cfg['agnostic_iou_thr'])
        dense_boxes, valid = build_dense_boxes(
            bbox_preds,
            head.strides,
            levelness,
            size=tuple(sem_logits.shape[-2:]),
            use_levelness=cfg['use_levelness'],
            out_stride=self.stride)
        sem_probs = sem_logits.softmax(dim=1)
        is_query = labels >= 0
        mask_probs = rtp_mask_probabilities(boxes, labels.clamp(min=0),
                                            dense_boxes[0], sem_probs[0],
                                            valid[0], cfg['iou_type'])
        mask_probs = mask_probs * is_query.to(mask_probs.dtype)[:, None, None]
        return boxes, scores, labels, mask_probs, sem_logits[0], num_valid

    def metadata(self, input_shape: Tuple[int, int]) -> dict:
        """What a user of the ONNX file needs besides the graph: the keyword
        arguments of :func:`onnx_outputs_to_panoptic` (``postprocess``), the
        input convention and the output names."""
        preprocessor = self.model.data_preprocessor
        height, width = input_shape
        meta = dict(
            outputs=list(RTP_ONNX_OUTPUTS),
            input=dict(
                name='image',
                shape=[1, 3, height, width],
                preprocess_in_graph=self.preprocess),
            postprocess=dict(
                num_things=self.num_things,
                num_stuff=self.num_stuff,
                img_shape=[height, width] if self.preprocess else list(
                    self.img_shape or input_shape),
                stride=self.stride,
                test_cfg=self.test_cfg))
        if self.preprocess:
            meta['input'].update(
                channel_conversion=bool(preprocessor._channel_conversion),
                mean=preprocessor.mean.flatten().tolist()
                if preprocessor._enable_normalize else None,
                std=preprocessor.std.flatten().tolist()
                if preprocessor._enable_normalize else None,
                pad_size_divisor=preprocessor.pad_size_divisor)
        return meta


def export_rtp_onnx(model: nn.Module,
                    out_file: str,
                    shape: Tuple[int, int],
                    opset: int = 17,
                    test_cfg: Optional[dict] = None,
                    preprocess: bool = True) -> dict:
    """Export a :class:`RealTimePanoptic` to ONNX for ``(1, 3, H, W)``
    inputs (see :class:`RTPExportWrapper`), with the post-processing
    arguments stored as JSON metadata (:func:`read_rtp_onnx_metadata`).

    Args:
        model (nn.Module): The model (set to eval mode here).
        out_file (str): Path of the ``.onnx`` file.
        shape (tuple[int, int]): Input (H, W). With ``preprocess`` any size
            (padded in the graph); without, a multiple of the size divisor.
        opset (int): ONNX opset, >= 16. Defaults to 17.
        test_cfg (dict, optional): Overrides of the model's ``test_cfg``.
        preprocess (bool): Normalise and pad in the graph. Defaults to True.

    Returns:
        dict: The metadata written to the file.
    """
    import onnx
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} has no GridSample; use >= '
                         f'{MIN_OPSET}')
    height, width = (int(size) for size in shape)
    if height <= 0 or width <= 0:
        raise ValueError(f'shape must be positive (H, W), got {shape}')
    model.eval()
    wrapper = RTPExportWrapper(model, test_cfg, preprocess).eval()
    device = next(model.parameters()).device
    # a mid-grey image: any content traces the same graph
    dummy = torch.full((1, 3, height, width), 128.0, device=device)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about every Python number it records as a
        # constant (sizes, strides): all are fixed by the export shape
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        for message in ('.*legacy TorchScript-based ONNX export',
                        '.*Constant folding', '.*torch.meshgrid',
                        '.*torch.jit.* is deprecated',
                        'The feature will be removed'):
            warnings.filterwarnings('ignore', message=message)
        torch.onnx.export(
            wrapper, (dummy, ),
            out_file,
            dynamo=False,
            opset_version=opset,
            input_names=['image'],
            output_names=list(RTP_ONNX_OUTPUTS),
            do_constant_folding=True)
    meta = wrapper.metadata((height, width))
    onnx_model = onnx.load(out_file)
    entry = onnx_model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta)
    onnx.save(onnx_model, out_file)
    return meta


def read_rtp_onnx_metadata(onnx_file: str) -> dict:
    """The metadata :func:`export_rtp_onnx` stored in an ONNX file; its
    ``postprocess`` entry holds the keyword arguments of
    :func:`onnx_outputs_to_panoptic`."""
    import onnx
    onnx_model = onnx.load(onnx_file, load_external_data=False)
    for entry in onnx_model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise KeyError(f'{onnx_file} has no {METADATA_KEY!r} metadata (not '
                   'exported by export_rtp_onnx)')


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

    The soft masks are resampled to ``out_shape`` and thresholded at
    ``mask_thr`` (:func:`threshold_upsampled_masks`, in chunks of
    ``chunk_size`` as :func:`rtp_instance_masks` does), the semantic logits
    resampled and argmaxed (:func:`semantic_labels_to_output`), then fused by
    score (:func:`heuristic_panoptic_fusion`: overlap rule, stuff area
    limit).

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
    boxes, scores = boxes[:count].float(), scores[:count].float()
    labels, mask_probs = labels[:count].long(), mask_probs[:count].float()
    sem_logits = sem_logits.float()
    img_shape = tuple(int(size) for size in img_shape)
    out_shape = img_shape if out_shape is None else tuple(
        int(size) for size in out_shape)
    h, w = mask_probs.shape[-2:]
    chunk_size = cfg['chunk_size']
    chunks: List[CroppedMasks] = [
        threshold_upsampled_masks(
            mask_probs[start:start + chunk_size],
            cfg['mask_thr'],
            img_shape,
            out_shape,
            stride,
            max_elements=chunk_size * h * w)
        for start in range(0, count, chunk_size)
    ]
    if chunks:
        masks = CroppedMasks.cat(chunks)
    else:
        masks = CroppedMasks(
            torch.zeros((0, 4), dtype=torch.long), [], out_shape)
    sem_seg = semantic_labels_to_output(sem_logits, img_shape, out_shape,
                                        stride)
    pan = heuristic_panoptic_fusion(
        masks,
        labels,
        scores,
        sem_seg,
        num_things,
        num_stuff,
        overlap_thr=cfg['overlap_thr'],
        stuff_area_limit=cfg['stuff_area_limit'],
        score_thr=cfg['instance_score_thr'])
    if scale_factor is None and out_shape != img_shape:
        scale_factor = (img_shape[1] / out_shape[1],
                        img_shape[0] / out_shape[0])
    if scale_factor is not None:
        boxes = boxes / boxes.new_tensor(tuple(scale_factor)).repeat(2)
    return dict(
        pan_results=PixelData(sem_seg=pan[None]),
        ins_results=InstanceData(
            bboxes=boxes, scores=scores, labels=labels, masks=masks))
