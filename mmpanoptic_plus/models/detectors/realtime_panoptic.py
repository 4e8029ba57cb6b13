# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RealTimePanoptic detector (Hou et al., "Real-Time Panoptic Segmentation
from Dense Detections", CVPR 2020)."""
from mmdet.models.detectors import SingleStageDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from mmpanoptic_plus.models.postprocess.realtime_panoptic import \
    rtp_panoptic_predict
from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class RealTimePanoptic(SingleStageDetector):
    """Single-shot panoptic network: ResNet-FPN (P3-P7) + :class:`RTPHead`,
    with the parameter-free mask construction and panoptic fusion of
    :func:`rtp_panoptic_predict` at inference.

    ``loss`` and ``_forward`` (raw head outputs: the "network" the benchmark
    times) are :class:`SingleStageDetector`'s; the head's ``loss`` reads
    ``gt_instances``, ``ignored_instances`` and ``gt_sem_seg``. ``predict``
    post-processes the head's raw outputs here (heads do not import
    ``models/postprocess``).

    Inputs of any size work as long as the data preprocessor pads to a
    multiple of 32 (so that P3 is exactly 1/8 of the padded input and the
    stride-4 maps exactly 1/4); P6/P7 may round up, which the head and the
    post-processing resample with exact alignment.
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
            ``pred_instances`` (``bboxes``, ``scores``, ``labels``,
            ``masks`` (N, H, W) bool, the masks before fusion).
        """
        feats = self.extract_feat(batch_inputs)
        head = self.bbox_head
        cls_scores, bbox_preds, centernesses, levelness_logits, sem_logits = \
            head(feats)
        results = rtp_panoptic_predict(
            [score.sigmoid() for score in cls_scores],
            centernesses,
            bbox_preds,
            levelness_logits,
            sem_logits,
            [ds.metainfo for ds in batch_data_samples],
            head.strides,
            head.num_things,
            head.num_stuff,
            test_cfg=dict(head.test_cfg) if head.test_cfg else None,
            rescale=rescale,
            stride=head.semantic_stride)
        for data_sample, result in zip(batch_data_samples, results):
            data_sample.pred_panoptic_seg = result['pan_results']
            instances = result['ins_results']
            data_sample.pred_instances = InstanceData(
                bboxes=instances.bboxes,
                scores=instances.scores,
                labels=instances.labels,
                masks=instances.masks.to_dense())
        return batch_data_samples
