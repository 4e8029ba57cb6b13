# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE detector (Gao et al., "Learning Category- and Instance-Aware Pixel
Embedding for Fast Panoptic Segmentation", IEEE TIP 2021 / arXiv
2009.13342)."""
import torch.nn.functional as F
from mmdet.models.detectors import SingleStageDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from mmpanoptic_plus.models.postprocess.ciae import ciae_panoptic_predict
from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class CIAE(SingleStageDetector):
    """One-stage panoptic segmentation with category- and instance-aware
    pixel embeddings: ResNet-FPN (P2-P7) + :class:`CIAEHead` (FCOS proposal
    head on P3-P7, embedding branch on P2-P5), and the similarity-argmax
    inference of :func:`ciae_panoptic_predict` (Sec. IV-C).

    ``loss`` and ``_forward`` (raw head outputs: the network the benchmark
    times) are :class:`SingleStageDetector`'s; the head's ``loss`` reads
    ``gt_instances``, ``ignored_instances``, ``gt_segment_ids`` and
    ``gt_segments`` (``GeneratePanopticSegmentIds``). ``predict`` runs the
    post-processing here (heads do not import ``models/postprocess``).

    With ``test_cfg.with_embedding=True`` (False by default; as PSS's
    switch) ``predict`` also writes ``pred_embedding = PixelData(
    embedding=(E, h, w))``: ``P = L2norm(P' + P'')`` at stride 4 over the
    valid image (``img_shape``, not rescaled), the map the proposals query,
    for retrieval and the Context Error metric.

    Pad inputs to a multiple of 32 (the data preprocessor's
    ``pad_size_divisor``) so that P2-P5 are exactly 1/4-1/32 of the input.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic prediction.

        Args:
            batch_inputs (Tensor): (B, 3, H, W) padded inputs.
            batch_data_samples (list[DetDataSample]): With metainfo
                ``img_shape``, ``ori_shape`` and ``scale_factor``.
            rescale (bool): Results at ``ori_shape`` (True) or
                ``img_shape``.

        Returns:
            list[DetDataSample]: each with ``pred_panoptic_seg``
            (PixelData ``sem_seg`` (1, H, W) int64, ``label + instance_id *
            INSTANCE_OFFSET``, void = ``num_things + num_stuff``) and
            ``pred_instances`` (``bboxes``, ``scores``, ``labels`` of the
            proposals that queried the embedding map), and
            ``pred_embedding`` when ``test_cfg.with_embedding``.
        """
        feats = self.extract_feat(batch_inputs)
        head = self.bbox_head
        cls_scores, bbox_preds, centernesses, pixel_embeds = head(feats)
        test_cfg = dict(head.test_cfg or {})
        # an output switch, not a key of CIAE_TEST_CFG
        with_embedding = test_cfg.pop('with_embedding', False)
        results = ciae_panoptic_predict(
            [score.sigmoid() for score in cls_scores],
            centernesses,
            bbox_preds,
            pixel_embeds,
            head.stuff_memory(),
            [ds.metainfo for ds in batch_data_samples],
            head.strides,
            head.num_things,
            head.num_stuff,
            test_cfg=test_cfg,
            rescale=rescale)
        stride = head.strides[0] // 2  # P2, where the embeddings live
        for b, (data_sample, result) in enumerate(
                zip(batch_data_samples, results)):
            data_sample.pred_panoptic_seg = result['pan_results']
            if with_embedding:
                height, width = data_sample.metainfo['img_shape'][:2]
                data_sample.pred_embedding = PixelData(
                    embedding=F.normalize(
                        pixel_embeds[b, :, :-(-height // stride), :-(
                            -width // stride)],
                        dim=0))
            instances = result['ins_results']
            data_sample.pred_instances = InstanceData(
                bboxes=instances.bboxes,
                scores=instances.scores,
                labels=instances.labels)
        return batch_data_samples
