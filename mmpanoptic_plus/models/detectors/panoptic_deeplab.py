# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, List, Tuple

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from torch import Tensor

from mmpanoptic_plus.registry import MODELS
from mmpanoptic_plus.utils.config_utils import merge_test_cfg
from ..heads.panoptic_deeplab_utils import (crop_and_resize,
                                            resize_center_and_offsets)
from ..postprocess import panoptic_deeplab_postprocess

#: Inference settings of the paper / detectron2 for Cityscapes (COCO:
#: ``nms_kernel=41, stuff_area_limit=4096``).
PANOPTIC_DEEPLAB_TEST_CFG = dict(
    center_threshold=0.1, nms_kernel=7, top_k=200, stuff_area_limit=2048)
#: Fusion head type built when the config names none (Sec. 3.2: majority
#: vote).
DEFAULT_PANOPTIC_FUSION_HEAD = 'MajorityVoteFusionHead'


@MODELS.register_module()
class PanopticDeepLab(BaseDetector):
    """Panoptic-DeepLab (Cheng et al., CVPR 2020): a backbone, a semantic
    branch and a class-agnostic instance branch (dual ASPP, dual decoder),
    grouped bottom-up at inference (Sec. 3.2).

    ``loss`` adds the semantic loss (``loss_sem``) and the instance losses
    (``loss_center``, ``loss_offset``) of the two heads. ``predict`` runs
    the heads, upsamples their stride-4 outputs to the padded input size
    (offsets scaled by the ratio), crops the padding, resizes to
    ``ori_shape`` when ``rescale`` (semantic logits and center bilinearly,
    offsets bilinearly and multiplied by the resize ratio: they are pixel
    displacements) and calls :func:`panoptic_deeplab_postprocess`. It fills
    ``pred_panoptic_seg = PixelData(sem_seg=(1, H, W) int64)`` (``label +
    id * 1000``, void ``num_classes``) and ``pred_sem_seg =
    PixelData(sem_seg=(1, H, W) int64 labels)``.

    Args:
        backbone (dict): Backbone config (mmdet ``ResNet``, out_indices
            (0, 1, 2, 3), output stride 16 in the paper configs).
        semantic_head (dict): :class:`PanopticDeepLabSemanticHead` config.
        instance_head (dict): :class:`PanopticDeepLabInstanceHead` config.
        num_things_classes (int): Thing classes (labels ``0 ..
            num_things_classes - 1``).
        num_stuff_classes (int): Stuff classes.
        train_cfg (dict, optional): Unused, kept for the mmdet interface.
        test_cfg (dict, optional): ``center_threshold``, ``nms_kernel``,
            ``top_k``, ``stuff_area_limit`` (defaults
            :data:`PANOPTIC_DEEPLAB_TEST_CFG`).
        panoptic_fusion_head (dict, optional): The fusion of the semantic
            labels and the grouped instances: a head whose ``predict(
            sem_labels, instance_ids, thing_mask)`` returns (B, H, W)
            panoptic maps, keeping the ids of ``instance_ids`` (e.g. a
            :class:`MajorityVoteFusionHead` with other settings). The
            detector fills in ``num_things_classes`` / ``num_stuff_classes``
            and, when the head config does not set it,
            ``stuff_area_limit`` from ``test_cfg``. Defaults to None:
            ``MajorityVoteFusionHead`` (the paper's majority vote, today's
            numbers).
        data_preprocessor (dict, optional): Usually
            ``PanopticDataPreprocessor`` with ``pad_seg=True`` and the
            dense target pad values.
        init_cfg (dict or list[dict], optional): Initialization config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 semantic_head: ConfigType,
                 instance_head: ConfigType,
                 num_things_classes: int,
                 num_stuff_classes: int,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 panoptic_fusion_head: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        semantic_head = ConfigDict(semantic_head)
        semantic_head.setdefault('num_classes', self.num_classes)
        if semantic_head.num_classes != self.num_classes:
            raise ValueError(
                f'semantic_head.num_classes={semantic_head.num_classes} but '
                f'{num_things_classes} things + {num_stuff_classes} stuff')
        self.backbone = MODELS.build(backbone)
        self.semantic_head = MODELS.build(semantic_head)
        self.instance_head = MODELS.build(instance_head)
        self.train_cfg = train_cfg
        self.test_cfg = ConfigDict(
            merge_test_cfg(PANOPTIC_DEEPLAB_TEST_CFG, test_cfg))
        self.panoptic_fusion_head = self._build_fusion_head(
            panoptic_fusion_head, test_cfg)

    def _build_fusion_head(self, fusion_cfg: OptConfigType,
                           test_cfg: OptConfigType) -> torch.nn.Module:
        """The configured fusion head (default the majority vote), with
        this detector's class counts and ``test_cfg.stuff_area_limit``
        unless the head sets its own."""
        fusion_cfg = ConfigDict(
            fusion_cfg or dict(type=DEFAULT_PANOPTIC_FUSION_HEAD))
        for key, value in (('num_things_classes', self.num_things_classes),
                           ('num_stuff_classes', self.num_stuff_classes)):
            fusion_cfg.setdefault(key, value)
            if fusion_cfg[key] != value:
                raise ValueError(f'panoptic_fusion_head.{key}='
                                 f'{fusion_cfg[key]} but the detector has '
                                 f'{value}')
        explicit = (test_cfg or {}).get('stuff_area_limit')
        if 'stuff_area_limit' in fusion_cfg and explicit is not None and \
                explicit != fusion_cfg.stuff_area_limit:
            raise ValueError(
                f'test_cfg.stuff_area_limit={explicit} but '
                f'panoptic_fusion_head.stuff_area_limit='
                f'{fusion_cfg.stuff_area_limit}: they must agree')
        fusion_cfg.setdefault('stuff_area_limit',
                              self.test_cfg.stuff_area_limit)
        return MODELS.build(fusion_cfg)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone features.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.

        Returns:
            tuple[Tensor]: Backbone outputs (strides 4, 8, 16, 16 for a
            dilated ResNet).
        """
        return self.backbone(batch_inputs)

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: SampleList = None
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """Raw stride-4 outputs of both heads.

        Returns:
            tuple[Tensor, Tensor, Tensor]: (B, num_classes, H/4, W/4)
            semantic logits, (B, 1, H/4, W/4) center heatmap, (B, 2, H/4,
            W/4) offsets (stride-4 pixels).
        """
        feats = self.extract_feat(batch_inputs)
        center, offsets = self.instance_head(feats)
        return self.semantic_head(feats), center, offsets

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Training losses.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                and the Panoptic-DeepLab dense targets, padded.

        Returns:
            dict[str, Tensor]: ``loss_sem``, ``loss_center``,
            ``loss_offset``.
        """
        feats = self.extract_feat(batch_inputs)
        losses = self.semantic_head.loss(feats, batch_data_samples)
        losses.update(self.instance_head.loss(feats, batch_data_samples))
        return losses

    def predict_maps(self,
                     batch_inputs: Tensor,
                     batch_data_samples: SampleList,
                     rescale: bool = True) -> List[Tuple[Tensor, ...]]:
        """Per-image semantic logits, center heatmap and offsets at the
        output size (``ori_shape`` if ``rescale`` else ``img_shape``).

        Returns:
            list[tuple[Tensor, Tensor, Tensor]]: Per image (1, C, H, W),
            (1, 1, H, W), (1, 2, H, W).
        """
        sem_logits, center, offsets = self._forward(batch_inputs)
        align_corners = self.semantic_head.align_corners
        input_size = batch_inputs.shape[-2:]
        sem_logits = torch.nn.functional.interpolate(
            sem_logits,
            size=input_size,
            mode='bilinear',
            align_corners=align_corners)
        center, offsets = resize_center_and_offsets(center, offsets,
                                                    input_size, align_corners)
        outputs = []
        for index, data_sample in enumerate(batch_data_samples):
            img_shape = data_sample.metainfo.get('img_shape', input_size)
            out_shape = data_sample.metainfo.get('ori_shape', img_shape) \
                if rescale else img_shape
            outputs.append(
                crop_and_resize((sem_logits[index:index + 1],
                                 center[index:index + 1],
                                 offsets[index:index + 1]),
                                tuple(img_shape)[:2],
                                tuple(out_shape)[:2], align_corners))
        return outputs

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic and semantic predictions.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) images.
            batch_data_samples (list[DetDataSample]): With ``img_shape``
                and ``ori_shape`` metainfo.
            rescale (bool): Predict at ``ori_shape`` (else ``img_shape``).
                Defaults to True.

        Returns:
            list[DetDataSample]: With ``pred_panoptic_seg`` and
            ``pred_sem_seg`` (each (1, H, W) int64).
        """
        outputs = self.predict_maps(batch_inputs, batch_data_samples,
                                    rescale)
        cfg = self.test_cfg
        shapes = {maps[0].shape[-2:] for maps in outputs}
        if len(shapes) == 1:  # one batched call when sizes agree
            groups = [list(range(len(outputs)))]
        else:
            groups = [[index] for index in range(len(outputs))]
        for group in groups:
            sem_logits, center, offsets = (torch.cat(
                [outputs[index][k] for index in group]) for k in range(3))
            result = panoptic_deeplab_postprocess(
                sem_logits,
                center,
                offsets,
                num_things=self.num_things_classes,
                threshold=cfg.center_threshold,
                nms_kernel=cfg.nms_kernel,
                top_k=cfg.top_k,
                void_label=self.num_classes,
                fusion=self.panoptic_fusion_head)
            for position, index in enumerate(group):
                data_sample = batch_data_samples[index]
                data_sample.pred_panoptic_seg = PixelData(
                    sem_seg=result.panoptic_seg[position][None])
                data_sample.pred_sem_seg = PixelData(
                    sem_seg=result.sem_labels[position][None])
        return batch_data_samples
