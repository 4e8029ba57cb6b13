# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RealTimePanoptic (RTP) post-processing: raw head outputs -> panoptic maps.

Hou et al., "Real-Time Panoptic Segmentation from Dense Detections", CVPR
2020, Sec. 3.3: query boxes from NMS on ``class probability x centerness``,
the levelness-chosen dense box map, ``P_loc = IoU(dense box, query box)``,
masks ``P_loc * P_sem(class) >= sigma``, then the panoptic fusion of Kirillov
et al. (CVPR 2019). The pieces live in :mod:`.rtp_dense_box_masks`,
:mod:`.rtp_query_selection` and :mod:`.panoptic_fusion`;
:func:`rtp_panoptic_predict` chains them for a batch. Everything after the
query selection and the soft masks is :func:`rtp_queries_to_panoptic`, which
the ONNX post-processing (``mmpanoptic_plus.deployment``) runs too.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmpanoptic_plus.structures import CroppedMasks
from mmpanoptic_plus.utils.config_utils import merge_test_cfg
from mmpanoptic_plus.models.utils import (box_iou_map, build_dense_boxes,
                                          resample_to_output,
                                          sample_level_regressions)
from .rtp_dense_box_masks import (box_localization_map, rtp_instance_masks,
                                  rtp_mask_probabilities,
                                  threshold_upsampled_masks)
from .semantic_labels import semantic_labels_to_output
from .panoptic_fusion import heuristic_panoptic_fusion
from .rtp_query_selection import select_query_boxes

__all__ = [
    'RTP_TEST_CFG', 'merge_rtp_test_cfg', 'rtp_panoptic_predict',
    'rtp_queries_to_panoptic', 'CroppedMasks', 'box_iou_map',
    'box_localization_map', 'build_dense_boxes', 'resample_to_output',
    'rtp_instance_masks', 'rtp_mask_probabilities',
    'sample_level_regressions', 'semantic_labels_to_output',
    'threshold_upsampled_masks', 'heuristic_panoptic_fusion',
    'select_query_boxes'
]

#: Defaults of :func:`rtp_panoptic_predict`. Query selection follows the
#: released code (score 0.05, top 1000 per level, NMS 0.6, 100 boxes); mask
#: construction the paper (plain IoU, sigma 0.3; the released code's variant
#: is ``iou_type='giou', mask_thr=0.4``); fusion Kirillov et al. with mmdet's
#: Panoptic FPN limits (overlap 0.5, stuff area 4096).
RTP_TEST_CFG = dict(
    score_thr=0.05,
    nms_pre=1000,
    nms=dict(type='nms', iou_threshold=0.6),
    max_per_img=100,
    min_bbox_size=0,
    agnostic_iou_thr=None,
    use_levelness=True,
    iou_type='iou',
    mask_thr=0.3,
    chunk_size=8,
    overlap_thr=0.5,
    stuff_area_limit=4096,
    instance_score_thr=0.0)


def merge_rtp_test_cfg(*overrides: Optional[dict]) -> dict:
    """:data:`RTP_TEST_CFG` updated by each of ``overrides`` in turn
    (None or empty ones skipped).

    Raises:
        KeyError: An override has a key :data:`RTP_TEST_CFG` does not.
    """
    return merge_test_cfg(RTP_TEST_CFG, *overrides, name='RTP')


def rtp_queries_to_panoptic(queries: InstanceData,
                            soft_mask_chunks: Iterable[Tensor],
                            sem_logits: Tensor,
                            img_shape: Tuple[int, int],
                            out_shape: Tuple[int, int],
                            num_things: int,
                            num_stuff: int,
                            test_cfg: dict,
                            stride: int = 4,
                            scale_factor: Optional[Sequence[float]] = None
                            ) -> Dict[str, object]:
    """One image's panoptic map from its query boxes and their soft masks:
    the part of RTP's inference (Sec. 3.3) that ``model.predict`` and the ONNX
    post-processing share.

    The soft masks ``M_j = P_loc_j * P_sem(class_j)`` arrive in chunks of
    ``test_cfg['chunk_size']`` queries, in query order: computed on the fly
    by ``model.predict`` (memory stays at one chunk of stride-4 maps), sliced
    from the graph output after ONNX. Each chunk is bilinearly resampled to
    ``out_shape`` and thresholded at ``mask_thr``
    (:func:`threshold_upsampled_masks`), the semantic logits resampled and
    argmaxed (:func:`semantic_labels_to_output`), both fused by score
    (:func:`heuristic_panoptic_fusion`: overlap rule, stuff area limit) and
    the boxes divided by ``scale_factor``.

    Args:
        queries (InstanceData): ``bboxes`` (N, 4) x1y1x2y2 in input pixels,
            ``scores`` (N,) and ``labels`` (N,) thing labels, by decreasing
            score.
        soft_mask_chunks (Iterable[Tensor]): (n_k, h, w) soft masks of
            consecutive queries, ``n_k <= chunk_size``, N in all.
        sem_logits (Tensor): (C, h, w) semantic logits at ``stride``, things
            first.
        img_shape (tuple[int, int]): Valid (H, W) of the padded input.
        out_shape (tuple[int, int]): (H, W) of the result.
        num_things (int): Thing classes.
        num_stuff (int): Stuff classes.
        test_cfg (dict): Merged :data:`RTP_TEST_CFG` (``mask_thr``,
            ``chunk_size``, ``overlap_thr``, ``stuff_area_limit``,
            ``instance_score_thr`` are read).
        stride (int): Stride of soft masks and logits. Defaults to 4.
        scale_factor (Sequence[float], optional): (w, h) from the output to
            the input, as mmdet's metainfo has it; boxes are divided by it.
            None leaves them in input pixels.

    Returns:
        dict: ``pan_results`` (PixelData ``sem_seg`` (1, H, W) int64 in
        mmdet's panoptic encoding) and ``ins_results`` (InstanceData
        ``bboxes``, ``scores``, ``labels`` and ``masks``, the masks before
        fusion as :class:`CroppedMasks`).
    """
    chunk_size = test_cfg['chunk_size']
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    h, w = sem_logits.shape[-2:]
    chunks = [
        threshold_upsampled_masks(
            soft_masks,
            test_cfg['mask_thr'],
            img_shape,
            out_shape,
            stride,
            max_elements=chunk_size * h * w)
        for soft_masks in soft_mask_chunks
    ]
    if chunks:
        masks = CroppedMasks.cat(chunks)
    else:
        masks = CroppedMasks(
            torch.zeros((0, 4), dtype=torch.long, device=sem_logits.device),
            [], out_shape)
    if len(masks) != len(queries.scores):
        raise ValueError(f'{len(masks)} soft masks for '
                         f'{len(queries.scores)} queries')
    sem_seg = semantic_labels_to_output(sem_logits, img_shape, out_shape,
                                        stride)
    pan = heuristic_panoptic_fusion(
        masks,
        queries.labels,
        queries.scores,
        sem_seg,
        num_things,
        num_stuff,
        overlap_thr=test_cfg['overlap_thr'],
        stuff_area_limit=test_cfg['stuff_area_limit'],
        score_thr=test_cfg['instance_score_thr'])
    bboxes = queries.bboxes
    if scale_factor is not None:
        bboxes = bboxes / bboxes.new_tensor(tuple(scale_factor)).repeat(2)
    return dict(
        pan_results=PixelData(sem_seg=pan[None]),
        ins_results=InstanceData(
            bboxes=bboxes,
            scores=queries.scores,
            labels=queries.labels,
            masks=masks))


def rtp_panoptic_predict(cls_probs: Sequence[Tensor],
                         centernesses: Sequence[Tensor],
                         bbox_preds: Sequence[Tensor],
                         levelness_logits: Optional[Tensor],
                         sem_logits: Tensor,
                         batch_img_metas: Sequence[dict],
                         strides: Sequence[int],
                         num_things: int,
                         num_stuff: int,
                         test_cfg: Optional[dict] = None,
                         rescale: bool = True,
                         stride: int = 4) -> List[Dict[str, object]]:
    """Panoptic maps from RTP's raw predictions for a batch.

    Args:
        cls_probs (Sequence[Tensor]): Per level (B, T, H_l, W_l) thing class
            probabilities (after sigmoid).
        centernesses (Sequence[Tensor]): Per level (B, 1, H_l, W_l)
            centerness logits.
        bbox_preds (Sequence[Tensor]): Per level (B, 4, H_l, W_l) ltrb
            distances in input-image pixels.
        levelness_logits (Tensor, optional): (B, L + 1, h, w) at ``stride``,
            channel 0 = background; unused when ``use_levelness`` is False.
        sem_logits (Tensor): (B, C, h, w) semantic logits at ``stride``,
            things first.
        batch_img_metas (Sequence[dict]): Per image ``img_shape`` (valid part
            of the padded input) and, when ``rescale``, ``ori_shape`` and
            ``scale_factor`` (w, h).
        strides (Sequence[int]): FPN strides, e.g. (8, 16, 32, 64, 128).
        num_things (int): Number of thing classes (T).
        num_stuff (int): Number of stuff classes (C - T).
        test_cfg (dict, optional): Overrides of :data:`RTP_TEST_CFG`.
        rescale (bool): Return results at ``ori_shape`` (boxes divided by
            ``scale_factor``) instead of ``img_shape``. Defaults to True.
        stride (int): Stride of levelness and semantic maps. Defaults to 4.

    Returns:
        list[dict]: Per image ``pan_results`` (PixelData with ``sem_seg``
        (1, H, W) int64 in mmdet's panoptic encoding) and ``ins_results``
        (InstanceData: ``bboxes``, ``scores``, ``labels``, ``masks``, the
        masks before fusion as :class:`CroppedMasks`, whose ``to_dense()``
        gives (N, H, W) bool).
    """
    cfg = merge_rtp_test_cfg(test_cfg)
    if sem_logits.size(1) != num_things + num_stuff:
        raise ValueError(f'semantic logits have {sem_logits.size(1)} '
                         f'channels, expected {num_things} things + '
                         f'{num_stuff} stuff')
    if len(batch_img_metas) != sem_logits.size(0):
        raise ValueError(f'{len(batch_img_metas)} image metas for a batch '
                         f'of {sem_logits.size(0)}')
    img_shapes = [tuple(meta['img_shape'][:2]) for meta in batch_img_metas]
    queries = select_query_boxes(
        cls_probs,
        centernesses,
        bbox_preds,
        strides,
        img_shapes=img_shapes,
        score_thr=cfg['score_thr'],
        nms_pre=cfg['nms_pre'],
        nms_cfg=cfg['nms'],
        max_per_img=cfg['max_per_img'],
        min_bbox_size=cfg['min_bbox_size'],
        agnostic_iou_thr=cfg['agnostic_iou_thr'])
    dense_boxes, valid = build_dense_boxes(
        bbox_preds,
        strides,
        levelness_logits,
        size=tuple(sem_logits.shape[-2:]),
        use_levelness=cfg['use_levelness'],
        out_stride=stride)
    if tuple(dense_boxes.shape[-2:]) != tuple(sem_logits.shape[-2:]):
        raise ValueError(
            f'levelness {tuple(dense_boxes.shape[-2:])} and semantic '
            f'{tuple(sem_logits.shape[-2:])} maps must have the same size')
    sem_probs = sem_logits.softmax(dim=1)
    # chunk_size < 1 is rejected by rtp_queries_to_panoptic, not by split
    chunk_size = max(cfg['chunk_size'], 1)
    results = []
    for img_id, (meta, instances) in enumerate(zip(batch_img_metas,
                                                   queries)):
        img_shape = img_shapes[img_id]
        soft_mask_chunks = (
            rtp_mask_probabilities(bboxes, labels, dense_boxes[img_id],
                                   sem_probs[img_id], valid[img_id],
                                   cfg['iou_type'])
            for bboxes, labels in zip(
                instances.bboxes.split(chunk_size),
                instances.labels.split(chunk_size)))
        results.append(
            rtp_queries_to_panoptic(
                instances,
                soft_mask_chunks,
                sem_logits[img_id],
                img_shape,
                tuple(meta['ori_shape'][:2]) if rescale else img_shape,
                num_things,
                num_stuff,
                cfg,
                stride=stride,
                scale_factor=meta.get('scale_factor', (1.0, 1.0))
                if rescale else None))
    return results
