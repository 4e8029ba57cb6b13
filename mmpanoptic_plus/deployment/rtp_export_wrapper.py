# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RealTimePanoptic (Hou et al., CVPR 2020) as one exportable function of an
image.

The paper's point is a single-shot network whose post-processing is
parameter-free and made of dense tensor operations, so that an inference
engine runs nearly all of it. :class:`RTPExportWrapper` puts in one graph:

- the input normalisation and padding of the model's data preprocessor,
- the network (ResNet-FPN + :class:`RTPHead`),
- the query-box selection of Sec. 3.3 (:func:`select_query_slots`, the one
  ``model.predict`` uses: score ``class probability x centerness``,
  per-level top-k, box decoding and clipping, class-wise NMS as ONNX
  ``NonMaxSuppression``, ``max_per_img`` zero-padded slots),
- the parameter-free mask construction of Sec. 3.3: the levelness-chosen
  dense box map, ``P_loc = IoU(dense box, query box)`` and the soft masks
  ``P_loc x P_sem(class)`` at stride 4.

The rest (upsampling + thresholding of the soft masks, the score-ordered
panoptic fusion, a sequential rule over the instances) runs after the graph
in :func:`onnx_outputs_to_panoptic`.
"""
import math
from typing import Optional, Tuple

import torch.nn as nn
from torch import Tensor

from mmpanoptic_plus.models.postprocess.realtime_panoptic import (
    build_dense_boxes, merge_rtp_test_cfg, rtp_mask_probabilities)
from mmpanoptic_plus.models.utils import (nms_iou_threshold,
                                          select_query_slots)

#: Output names of the exported graph, in order (see
#: :meth:`RTPExportWrapper.forward`).
RTP_ONNX_OUTPUTS = ('boxes', 'scores', 'labels', 'mask_probs', 'sem_logits',
                    'num_valid')


def export_test_cfg(model: nn.Module,
                    test_cfg: Optional[dict] = None) -> dict:
    """:data:`RTP_TEST_CFG` updated by the model's ``test_cfg`` and then by
    ``test_cfg`` (unknown keys are an error, as in ``model.predict``), with
    ``nms`` in its canonical form ``dict(type='nms', iou_threshold=x)``.

    Raises:
        KeyError: Unknown keys.
        ValueError: An ``nms`` entry other than plain NMS with an IoU.
    """
    cfg = merge_rtp_test_cfg(getattr(model, 'test_cfg', None), test_cfg)
    cfg['nms'] = dict(type='nms', iou_threshold=nms_iou_threshold(cfg['nms']))
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
        self.test_cfg = export_test_cfg(model, test_cfg)
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
        queries = select_query_slots(
            [score.sigmoid() for score in cls_scores],
            centernesses,
            bbox_preds,
            head.strides,
            img_shapes=[img_shape],
            score_thr=cfg['score_thr'],
            nms_pre=cfg['nms_pre'],
            iou_threshold=cfg['nms']['iou_threshold'],
            max_per_img=cfg['max_per_img'],
            min_bbox_size=cfg['min_bbox_size'],
            agnostic_iou_thr=cfg['agnostic_iou_thr'])
        boxes, scores, labels = (queries.bboxes[0], queries.scores[0],
                                 queries.labels[0])
        num_valid = queries.num_valid[0]
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
