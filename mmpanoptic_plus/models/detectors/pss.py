# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""PSS detector ("Contextual Image Parsing via Panoptic Segment Sorting",
Sec. 3 and 4.1)."""
from typing import Dict, Tuple

from mmdet.models.detectors.base import BaseDetector
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.structures import PixelData
from torch import Tensor

from mmpanoptic_plus.models.postprocess.pss import pss_panoptic_predict
from mmpanoptic_plus.registry import MODELS


@MODELS.register_module()
class PSS(BaseDetector):
    """Panoptic Segment Sorting: ResNet-FPN, :class:`PSSHead` (embedding
    and seeding branches, segment classifier) and the clustering and
    merging inference of :func:`pss_panoptic_predict`.

    ``predict`` fills ``pred_panoptic_seg`` and, unless ``test_cfg`` sets
    ``with_embedding=False``, ``pred_embedding``: ``PixelData(embedding=(C,
    h, w))``, the unit-length panoptic embeddings at stride 4 over the
    valid image (``img_shape``, not rescaled), which retrieval and the
    Context Error metric read (Sec. 4.2).

    Pad inputs to a multiple of 32 so that P2 is exactly 1/4 of the input.

    Args:
        backbone (dict): Backbone config.
        neck (dict): FPN config (P2-P5 used by the head).
        panoptic_head (dict): :class:`PSSHead` config.
        train_cfg (dict, optional): Unused (the head holds the training
            settings).
        test_cfg (dict, optional): Keys of ``PSS_TEST_CFG`` plus
            ``with_embedding``.
        data_preprocessor (dict, optional): Data preprocessor.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 panoptic_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.panoptic_head = MODELS.build(panoptic_head)
        self.train_cfg = train_cfg
        self.test_cfg = dict(test_cfg or {})

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """Backbone and FPN features."""
        return self.neck(self.backbone(batch_inputs))

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of :meth:`PSSHead.loss`."""
        return self.panoptic_head.loss(
            self.extract_feat(batch_inputs), batch_data_samples)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> Tuple[Tensor, ...]:
        """Raw branch outputs (embeddings, then seed heatmap and offsets):
        the network the benchmark times apart from clustering/merging."""
        outs = self.panoptic_head(self.extract_feat(batch_inputs))
        return tuple(outs.values())

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Panoptic prediction (and the embedding map).

        Args:
            batch_inputs (Tensor): (B, 3, H, W) padded inputs.
            batch_data_samples (list[DetDataSample]): With metainfo
                ``img_shape`` and ``ori_shape``.
            rescale (bool): Results at ``ori_shape`` (True) or
                ``img_shape``.

        Returns:
            list[DetDataSample]: with ``pred_panoptic_seg`` (``sem_seg`` (1,
            H, W) int64) and ``pred_embedding``.
        """
        outs = self.panoptic_head(self.extract_feat(batch_inputs))
        return self.predict_by_feat(outs, batch_data_samples, rescale)

    def predict_by_feat(self, outs: Dict[str, Tensor],
                        batch_data_samples: SampleList,
                        rescale: bool = True) -> SampleList:
        """Post-processing of :meth:`PSSHead.forward` outputs (timed apart
        by the benchmark)."""
        head = self.panoptic_head
        cfg = {
            k: v
            for k, v in self.test_cfg.items() if k != 'with_embedding'
        }
        metas = [ds.metainfo for ds in batch_data_samples]
        results = pss_panoptic_predict(
            outs['embeddings'],
            head.classify,
            metas,
            head.num_things,
            head.num_stuff,
            seed_heatmap=outs.get('seed_heatmap'),
            seed_offsets=outs.get('seed_offsets'),
            test_cfg=cfg,
            rescale=rescale,
            stride=head.stride)
        stride = head.stride
        for b, (data_sample, result) in enumerate(
                zip(batch_data_samples, results)):
            data_sample.pred_panoptic_seg = result
            if self.test_cfg.get('with_embedding', True):
                height, width = data_sample.metainfo['img_shape'][:2]
                data_sample.pred_embedding = PixelData(
                    embedding=outs['embeddings'][b, :, :-(-height // stride),
                                                 :-(-width // stride)])
        return batch_data_samples
