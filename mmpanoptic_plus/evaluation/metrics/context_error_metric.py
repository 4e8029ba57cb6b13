# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Context Error of context-specific instance retrieval (PSS, "Contextual
Image Parsing via Panoptic Segment Sorting", Sec. 4.2, Eq. 4, Table 1)."""
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from terminaltables import AsciiTable

from mmpanoptic_plus.models.utils import (instance_index_map,
                                          output_sample_coordinates,
                                          segment_sums)
from mmpanoptic_plus.registry import METRICS
from mmpanoptic_plus.structures import areas_and_boxes_of_ids
from ..functional.context_error import (class_integral_image,
                                        context_distributions_from_table,
                                        context_errors)
from ..functional.instance_retrieval import nearest_neighbours

#: Instance descriptors :class:`ContextErrorMetric` retrieves with.
DESCRIPTORS = ('embedding', 'mean_color')


def _field(data, key: str):
    """``data[key]`` of a dict (what mmengine's Evaluator passes) or the
    attribute of a data element (what a direct caller passes); None when
    absent."""
    if isinstance(data, dict):
        return data.get(key)
    return getattr(data, key, None)


def _numpy(data) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    return np.asarray(data)


def embedding_means(embedding: torch.Tensor,
                    img_shape: Sequence[int],
                    instance_ids: torch.Tensor,
                    num_instances: int,
                    stride: int = 4,
                    band_pixels: int = 1 << 20) -> torch.Tensor:
    """Unit mean of the L2-normalised pixel embeddings over each instance,
    at the resolution of the ground truth.

    The stride-``stride`` map (it covers the valid ``img_shape`` part of
    the input, the padding cut) is bilinearly resampled to the size of
    ``instance_ids`` (the ground truth, i.e. ``ori_shape``) with
    ``align_corners=False`` -- the same sampling as
    :func:`mmpanoptic_plus.models.utils.resample_to_output`, whose
    coordinates it reuses, but in bands of rows so that a Cityscapes-size
    map of 64 channels is never held whole. Each pixel is L2-normalised,
    summed per instance and the sum normalised (a SegSort prototype).

    Args:
        embedding (Tensor): (E, h, w) embedding map.
        img_shape (Sequence[int]): Valid (H_img, W_img) of the input.
        instance_ids (Tensor): (H, W) int64, ``1 + n`` on instance ``n``,
            0 elsewhere (:func:`instance_index_map`).
        num_instances (int): N.
        stride (int): Stride of ``embedding``. Defaults to 4.
        band_pixels (int): Output pixels resampled at once.

    Returns:
        Tensor: (N, E) unit prototypes (zeros for an instance without
        pixels).
    """
    embedding = embedding.float()
    height, width = instance_ids.shape
    channels, map_h, map_w = embedding.shape
    ys = output_sample_coordinates(height, int(img_shape[0]), map_h, stride,
                                   embedding.device, embedding.dtype)
    xs = output_sample_coordinates(width, int(img_shape[1]), map_w, stride,
                                   embedding.device, embedding.dtype)
    ids = instance_ids.to(embedding.device).long() - 1  # -1: no instance
    sums = embedding.new_zeros((num_instances, channels))
    rows = max(1, band_pixels // max(width, 1))
    for top in range(0, height, rows):
        band_ys = ys[top:top + rows]
        grid = torch.stack((xs[None].expand(len(band_ys), width),
                            band_ys[:, None].expand(len(band_ys), width)), -1)
        band = F.grid_sample(
            embedding[None],
            grid[None],
            mode='bilinear',
            padding_mode='border',
            align_corners=False)
        band_sums, _ = segment_sums(ids[None, top:top + rows],
                                    F.normalize(band, dim=1), num_instances,
                                    -1)
        sums += band_sums[0]
    return F.normalize(sums, dim=1)


def mean_colours(image: np.ndarray, instance_ids: np.ndarray,
                 num_instances: int) -> np.ndarray:
    """Mean image colour over each instance (the baseline descriptor).

    Args:
        image (np.ndarray): (H, W, 3) image at the size of ``instance_ids``.
        instance_ids (np.ndarray): (H, W) int, ``1 + n`` on instance ``n``.
        num_instances (int): N.

    Returns:
        np.ndarray: (N, 3) float64 mean colours in the channel order of
        ``image`` (zeros for an instance without pixels).
    """
    ids = instance_ids.ravel()
    counts = np.bincount(ids, minlength=num_instances + 1)[1:]
    sums = np.stack([
        np.bincount(ids, image[..., c].ravel(), num_instances + 1)[1:]
        for c in range(image.shape[-1])
    ], 1)
    return sums / np.maximum(counts, 1)[:, None]


@METRICS.register_module()
class ContextErrorMetric(BaseMetric):
    """Context Error (CE) of instance retrieval (PSS Sec. 4.2, Eq. 4).

    Per image, every ground-truth thing instance (``gt_instances``; crowd
    regions, in ``ignored_instances``, are not instances) gets:

    - a descriptor: with ``descriptor='embedding'`` the unit mean of the
      L2-normalised pixel embeddings over its ground-truth mask
      (:func:`embedding_means`: ``pred_embedding.embedding``, (E, h, w) at
      ``embedding_stride`` over ``img_shape``, bilinearly resampled to the
      size of the ground truth), compared by cosine similarity; with
      ``'mean_color'`` the mean image colour over the mask (the baseline;
      the raw image of ``data_batch['inputs']``, resized bilinearly to the
      ground-truth size when the pipeline resized it), compared by
      Euclidean distance (cosine would ignore brightness);
    - its class, its tight box and its context
      (:func:`context_distributions_from_table` on ``gt_sem_seg``).

    ``compute_metrics`` retrieves for every query its ``k`` nearest
    database instances of the same category (itself excluded), with one
    matrix product per category (:func:`nearest_neighbours`), and reports
    CE (Eq. 4) averaged over the queries of each thing category, and the
    mean over the categories that have queries (the paper's "mean CE").

    **Splits.** A sample belongs to the split named by its metainfo key
    ``split_key`` (``data_sample.set_metainfo({'split': 'train'})``, what
    ``tools/analysis_tools/context_retrieval.py`` does for each dataset it
    runs), and to ``query_split`` when it has no such key. With the default
    ``database_split='train'`` the training images must therefore be fed
    too (the tool runs both); in a runner's single validation loop set
    ``database_split=None`` (or equal to ``query_split``) to retrieve among
    the queries themselves, leave-one-out.

    Args:
        k (int): Retrievals per query. Defaults to 20 (the paper's K).
        descriptor (str): ``'embedding'`` or ``'mean_color'``.
        query_split (str): Split of the queries. Defaults to ``'val'``.
        database_split (str, optional): Split retrieved from; None: the
            query split. Defaults to ``'train'`` (Fig. 4 retrieves from the
            training images).
        split_key (str): Metainfo key naming a sample's split.
        embedding_stride (int): Stride of ``pred_embedding``. Defaults to 4
            (PSS, CIAE).
        zero_prob (float): Stand-in for a zero probability (the paper's
            0.1).
        ignore_index (int): Unlabelled label of ``gt_sem_seg``.
        collect_device (str): 'cpu' or 'gpu'.
        prefix (str, optional): Defaults to ``'context'``.
    """
    default_prefix: Optional[str] = 'context'

    def __init__(self,
                 k: int = 20,
                 descriptor: str = 'embedding',
                 query_split: str = 'val',
                 database_split: Optional[str] = 'train',
                 split_key: str = 'split',
                 embedding_stride: int = 4,
                 zero_prob: float = 0.1,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if descriptor not in DESCRIPTORS:
            raise ValueError(f'descriptor must be one of {DESCRIPTORS}, got '
                             f'{descriptor!r}')
        if k < 1:
            raise ValueError(f'k must be positive, got {k}')
        self.k = k
        self.descriptor = descriptor
        self.query_split = query_split
        self.database_split = (
            query_split if database_split is None else database_split)
        self.split_key = split_key
        self.embedding_stride = embedding_stride
        self.zero_prob = zero_prob
        self.ignore_index = ignore_index

    @property
    def same_split(self) -> bool:
        """Queries retrieve among themselves (leave-one-out)."""
        return self.database_split == self.query_split

    def _class_names(self) -> List[str]:
        if not self.dataset_meta or 'thing_classes' not in self.dataset_meta:
            raise RuntimeError('ContextErrorMetric needs dataset_meta with '
                               '"classes" and "thing_classes".')
        return list(self.dataset_meta['thing_classes'])

    # ------------------------------------------------------------------
    # per-batch processing
    def _descriptors(self, sample, image, instance_ids: torch.Tensor,
                     num_instances: int) -> np.ndarray:
        """(N, D) descriptors of the instances of one sample."""
        height, width = instance_ids.shape
        if self.descriptor == 'mean_color':
            if image is None:
                raise ValueError('descriptor="mean_color" needs the images: '
                                 'pass data_batch with "inputs"')
            image = _numpy(image).transpose(1, 2, 0).astype(np.float32)
            if image.shape[:2] != (height, width):
                image = cv2.resize(
                    image, (width, height), interpolation=cv2.INTER_LINEAR)
            return mean_colours(image[..., ::-1], instance_ids.numpy(),
                                num_instances)  # BGR -> RGB
        embedding = _field(_field(sample, 'pred_embedding'), 'embedding')
        if embedding is None:
            raise ValueError(
                'descriptor="embedding" needs pred_embedding.embedding in '
                'the predictions: set the model\'s test_cfg '
                'with_embedding=True (PSS, CIAE)')
        img_shape = _field(sample, 'img_shape') or (height, width)
        return embedding_means(
            torch.as_tensor(embedding), img_shape[:2], instance_ids,
            num_instances, self.embedding_stride).cpu().numpy()

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Reduce each sample to its instances' split, class, box, context
        and descriptor.

        Args:
            data_batch (dict): The raw batch; ``inputs`` (the (3, H, W)
                uint8 BGR images) is read for ``'mean_color'``.
            data_samples (Sequence[dict | DetDataSample]): With
                ``gt_instances`` (``masks``, ``labels``), ``gt_sem_seg``,
                ``img_shape``, ``pred_embedding`` (``'embedding'``).
        """
        num_classes = len(self.dataset_meta['classes'])
        images = (data_batch or {}).get('inputs')
        for index, sample in enumerate(data_samples):
            split = _field(sample, self.split_key) or self.query_split
            if split not in (self.query_split, self.database_split):
                raise ValueError(
                    f'A sample of split {split!r}; this metric compares '
                    f'queries of {self.query_split!r} with a database of '
                    f'{self.database_split!r}')
            sem_seg = _numpy(_field(_field(sample, 'gt_sem_seg'), 'sem_seg'))
            sem_seg = sem_seg.reshape(sem_seg.shape[-2:])
            instances = _field(sample, 'gt_instances')
            masks = _field(instances, 'masks')
            labels = _numpy(_field(instances, 'labels')).astype(np.int64)
            num = len(labels)
            if num:
                instance_ids = instance_index_map(masks).cpu()
            else:
                instance_ids = torch.zeros(sem_seg.shape, dtype=torch.long)
            areas, coco_boxes = areas_and_boxes_of_ids(
                instance_ids.numpy(), num)
            boxes = np.concatenate(
                (coco_boxes[:, :2], coco_boxes[:, :2] + coco_boxes[:, 2:]), 1)
            contexts = context_distributions_from_table(
                class_integral_image(sem_seg, num_classes, self.ignore_index),
                boxes)
            image = images[index] if images is not None else None
            descriptors = self._descriptors(sample, image, instance_ids, num)
            keep = areas > 0  # an instance hidden by others has no pixel
            self.results.append(
                dict(
                    split=split,
                    img_path=_field(sample, 'img_path'),
                    labels=labels[keep],
                    boxes=boxes[keep].astype(np.int32),
                    contexts=contexts[keep].astype(np.float32),
                    descriptors=descriptors[keep].astype(np.float32)))

    # ------------------------------------------------------------------
    # retrieval and CE
    def retrieve(self, results: List[dict]) -> Dict[str, np.ndarray]:
        """Nearest neighbours of every query within its category, and its
        CE (Eq. 4).

        Args:
            results (list[dict]): ``self.results`` entries.

        Returns:
            dict[str, np.ndarray]: over all instances, ``image`` (M,)
            index into ``results`` and ``instance`` (M,) index within it;
            over the Q queries, ``query`` (Q,) instance rows, ``retrieved``
            (Q, K) instance rows best first (-1 padding), ``scores`` (Q, K)
            similarities and ``ce`` (Q,) Context Errors (NaN without
            retrievals); ``labels`` (M,) classes.
        """
        counts = [len(r['labels']) for r in results]
        image = np.repeat(np.arange(len(results)), counts)
        instance = np.concatenate(
            [np.arange(n) for n in counts]) if counts else np.zeros(0, int)
        if sum(counts) == 0:
            raise ValueError('No ground-truth thing instance was processed')
        labels = np.concatenate([r['labels'] for r in results])
        contexts = np.concatenate([r['contexts'] for r in results])
        descriptors = np.concatenate([r['descriptors'] for r in results])
        splits = np.array([r['split'] for r in results])[image]
        is_query = splits == self.query_split
        is_database = splits == self.database_split
        if not is_database.any():
            raise ValueError(
                f'No instance of the database split {self.database_split!r} '
                f'was processed: feed its images with metainfo '
                f'{self.split_key}={self.database_split!r}, or set '
                'database_split=None to retrieve among the queries')
        similarity = ('cosine'
                      if self.descriptor == 'embedding' else 'euclidean')
        query_rows, retrieved, scores, errors = [], [], [], []
        for label in np.unique(labels[is_query]):
            queries = np.flatnonzero(is_query & (labels == label))
            database = np.flatnonzero(is_database & (labels == label))
            # the query set is the database: exclude each query's own row
            exclude = (
                np.searchsorted(database, queries)
                if self.same_split else None)
            neighbours, similarities = nearest_neighbours(
                descriptors[queries], descriptors[database], self.k,
                exclude, similarity)
            valid = neighbours >= 0
            rows = np.where(valid, database[neighbours.clip(0)], -1)
            pad = self.k - rows.shape[1]  # fewer candidates than K
            rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
            similarities = np.pad(
                similarities, ((0, 0), (0, pad)), constant_values=-np.inf)
            valid = rows >= 0
            errors.append(
                context_errors(contexts[queries], contexts[rows.clip(0)],
                               self.zero_prob, valid))
            query_rows.append(queries)
            retrieved.append(rows)
            scores.append(similarities)
        empty = np.zeros((0, self.k))
        return dict(
            image=image,
            instance=instance,
            labels=labels,
            query=np.concatenate(query_rows or [np.zeros(0, int)]),
            retrieved=np.concatenate(retrieved or [empty.astype(int)]),
            scores=np.concatenate(scores or [empty]),
            ce=np.concatenate(errors or [np.zeros(0)]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """CE per thing category (mean over its queries) and their mean.

        Returns:
            dict[str, float]: ``'CE'`` (mean over the categories with
            queries), ``'CE_<class>'`` per such category, and
            ``'num_queries'``.
        """
        logger = MMLogger.get_current_instance()
        names = self._class_names()
        retrieval = self.retrieve(results)
        query_labels = retrieval['labels'][retrieval['query']]
        ce = retrieval['ce']
        metrics, rows = {}, [['category', 'queries', 'CE']]
        per_class = []
        for label, name in enumerate(names):
            values = ce[(query_labels == label) & np.isfinite(ce)]
            if len(values) == 0:
                rows.append([name, 0, '-'])
                continue
            metrics[f'CE_{name}'] = float(values.mean())
            per_class.append(metrics[f'CE_{name}'])
            rows.append([name, len(values), f'{values.mean():.3f}'])
        metrics['CE'] = float(np.mean(per_class)) if per_class else float(
            'nan')
        metrics['num_queries'] = int(np.isfinite(ce).sum())
        rows.append(['mean', metrics['num_queries'], f'{metrics["CE"]:.3f}'])
        print_log(
            f'Context Error ({self.descriptor}, K={self.k}, queries '
            f'{self.query_split}, database {self.database_split}):\n' +
            AsciiTable(rows).table,
            logger=logger)
        return metrics
