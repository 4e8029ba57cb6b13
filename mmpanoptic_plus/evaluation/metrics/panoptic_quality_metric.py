# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic Quality (and semantic mIoU) computed in memory during test."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from terminaltables import AsciiTable

from mmpanoptic_plus.registry import METRICS
from mmpanoptic_plus.structures import (coco_panoptic_segments,
                                        read_panoptic_ids, write_panoptic_ids)
from ..functional import (FIRST_SEGMENT_INDEX, PQStat, average_pq,
                          index_segment_ids, intersection_table,
                          parse_segments_info, pq_stat_from_table,
                          split_panoptic_map)


def _to_numpy(data) -> np.ndarray:
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    return np.asarray(data)


def _as_hw(panoptic_map: np.ndarray, what: str) -> np.ndarray:
    """(1, H, W) or (H, W) -> (H, W)."""
    if panoptic_map.ndim == 3 and panoptic_map.shape[0] == 1:
        return panoptic_map[0]
    if panoptic_map.ndim != 2:
        raise ValueError(f'{what} must have shape (1, H, W) or (H, W), got '
                         f'{panoptic_map.shape}.')
    return panoptic_map


@METRICS.register_module()
class PanopticQualityMetric(BaseMetric):
    """Panoptic Quality (Kirillov et al., CVPR 2019, Eq. 1) and semantic
    mIoU, computed from the data samples without temporary files.

    Per image, the prediction ``pred_panoptic_seg.sem_seg`` (values
    ``label + instance_id * INSTANCE_OFFSET``, VOID ``= num_classes``) and
    the ground truth ``gt_panoptic_seg.sem_seg`` (raw segment ids, read from
    ``seg_map_path`` when absent) with its metainfo ``segments_info`` are
    reduced to per-category PQ statistics with the same core as
    :func:`mmpanoptic_plus.evaluation.functional.pq_compute`, i.e. the
    COCO / Cityscapes reference rules (annotated gt areas, VOID and crowd
    handling). Each ``self.results`` entry holds only those statistics and
    the non-zero entries of the image's semantic confusion matrix, so the
    distributed collection stays small.

    The semantic confusion matrix has rows = gt labels (the category of the
    gt segment; VOID and unannotated gt pixels are ignored) and columns =
    predicted labels ``value % INSTANCE_OFFSET`` plus one column for
    predicted VOID, which counts as wrong.

    Args:
        classwise (bool): Log a per-class table. Defaults to False.
        format_only (bool): Only dump the predictions in COCO panoptic
            format (``<outfile_prefix>.panoptic.json`` and PNGs in
            ``<outfile_prefix>.panoptic/``), e.g. for a test server, and
            return no metric. Defaults to False.
        outfile_prefix (str, optional): Required with ``format_only``.
        cat_id_key (str): Key of ``dataset_meta`` giving the category id
            written for each label (Cityscapes also provides ``label_ids``
            for the test server). Falls back to ``label + 1`` when the key
            is missing. Defaults to ``'cat_ids'``.
        strip_img_suffix (str): Removed from the end of the ``img_path``
            stem to form the ``image_id`` of a dumped prediction, so that
            Cityscapes' ``<city>_<seq>_<frame>_leftImg8bit.png`` becomes the
            ``<city>_<seq>_<frame>`` used by its panoptic JSONs. Defaults
            to ``'_leftImg8bit'``.
        backend_args (dict, optional): mmengine file backend arguments for
            reading ``seg_map_path``.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names; defaults to
            ``'panoptic'``.
    """
    default_prefix: Optional[str] = 'panoptic'

    def __init__(self,
                 classwise: bool = False,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 cat_id_key: str = 'cat_ids',
                 strip_img_suffix: str = '_leftImg8bit',
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and not outfile_prefix:
            raise ValueError('format_only=True needs an outfile_prefix to '
                             'write the predictions to.')
        self.classwise = classwise
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix
        self.cat_id_key = cat_id_key
        self.strip_img_suffix = strip_img_suffix
        self.backend_args = backend_args

    # ------------------------------------------------------------------
    # dataset information
    @property
    def num_classes(self) -> int:
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise RuntimeError('PanopticQualityMetric needs dataset_meta '
                               'with "classes" and "thing_classes".')
        return len(self.dataset_meta['classes'])

    @property
    def num_things(self) -> int:
        if 'thing_classes' not in self.dataset_meta:
            raise RuntimeError('dataset_meta has no "thing_classes"; classes '
                               'must be ordered things first, then stuff.')
        return len(self.dataset_meta['thing_classes'])

    def _category_ids(self) -> List[int]:
        """Category id written for each label (``label + 1`` fallback)."""
        cat_ids = self.dataset_meta.get(self.cat_id_key)
        if cat_ids is None:
            return list(range(1, self.num_classes + 1))
        if len(cat_ids) != self.num_classes:
            raise ValueError(
                f'dataset_meta["{self.cat_id_key}"] has {len(cat_ids)} '
                f'entries for {self.num_classes} classes.')
        return [int(cat_id) for cat_id in cat_ids]

    # ------------------------------------------------------------------
    # per-batch processing
    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Reduce each data sample to small statistics in ``self.results``.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | DetDataSample]): Predictions and
                ground truth (see the class docstring).
        """
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            pred = data_sample['pred_panoptic_seg']
            panoptic_map = _as_hw(
                _to_numpy(pred['sem_seg']), 'pred_panoptic_seg.sem_seg')
            index_map, values, labels = split_panoptic_map(
                panoptic_map, self.num_classes, pred.get('ignore_index'))
            if self.format_only:
                self.results.append(
                    self._dump_prediction(index_map, labels, data_sample))
            else:
                self.results.append(
                    self._image_statistics(index_map, labels, data_sample))

    def _read_gt(self, data_sample: dict) -> np.ndarray:
        gt = data_sample.get('gt_panoptic_seg')
        if gt is not None:
            return _as_hw(_to_numpy(gt['sem_seg']), 'gt_panoptic_seg.sem_seg')
        if data_sample.get('seg_map_path') is None:
            raise KeyError('A data sample has neither gt_panoptic_seg nor '
                           'seg_map_path; cannot evaluate PQ on '
                           f'{data_sample.get("img_path")}.')
        return read_panoptic_ids(data_sample['seg_map_path'],
                                 self.backend_args)

    def _image_statistics(self, pred_index: np.ndarray,
                          pred_labels: np.ndarray, data_sample: dict) -> dict:
        """PQ statistics and sparse semantic confusion of one image."""
        num_classes = self.num_classes
        image_name = data_sample.get('img_path', data_sample.get('img_id'))
        if 'segments_info' not in data_sample:
            raise KeyError(f'The data sample of {image_name} has no '
                           '"segments_info" metainfo.')
        gt_ids = self._read_gt(data_sample)
        if gt_ids.shape != pred_index.shape:
            raise ValueError(
                f'For {image_name} the ground truth is {gt_ids.shape} and '
                f'the prediction {pred_index.shape}; predictions must be at '
                'the original image size.')
        gt = parse_segments_info(
            data_sample['segments_info'],
            {label: label
             for label in range(num_classes)},
            image_id=image_name,
            category_key='category')
        gt_index = index_segment_ids(gt_ids, gt.ids)
        table = intersection_table(gt_index, pred_index, len(gt),
                                   len(pred_labels))
        pq_stat = pq_stat_from_table(table, gt, pred_labels, num_classes)

        # Semantic confusion from the same table: pixels of (gt segment,
        # pred segment) pairs fall in (gt label, pred label). Columns OTHER
        # and VOID of the prediction are the 'wrong' column num_classes.
        labelled_rows = np.flatnonzero(gt.slots < num_classes)
        col_labels = np.concatenate(
            [np.full(FIRST_SEGMENT_INDEX, num_classes), pred_labels])
        counts = table[FIRST_SEGMENT_INDEX + labelled_rows]
        codes = (
            gt.slots[labelled_rows, None] * (num_classes + 1) +
            col_labels[None, :])
        nonzero = counts > 0
        return dict(
            pq_stat=pq_stat,
            confusion_index=codes[nonzero].astype(np.int64),
            confusion_count=counts[nonzero].astype(np.int64))

    def _image_id(self, data_sample: dict) -> str:
        img_path = data_sample.get('img_path')
        if img_path is None:
            raise KeyError('format_only needs the img_path metainfo to name '
                           'the dumped prediction.')
        stem = osp.splitext(osp.basename(img_path))[0]
        if self.strip_img_suffix and stem.endswith(self.strip_img_suffix):
            stem = stem[:-len(self.strip_img_suffix)]
        return stem

    def _dump_prediction(self, index_map: np.ndarray, labels: np.ndarray,
                         data_sample: dict) -> dict:
        """Write one prediction PNG; return its COCO panoptic annotation."""
        image_id = self._image_id(data_sample)
        file_name = f'{image_id}.png'
        # Segment ids 1..N in the PNG, 0 for VOID.
        id_map, segments_info = coco_panoptic_segments(
            index_map.astype(np.int64) - FIRST_SEGMENT_INDEX, labels,
            self._category_ids())
        write_panoptic_ids(
            osp.join(f'{self.outfile_prefix}.panoptic', file_name), id_map)
        return dict(
            image_id=image_id,
            file_name=file_name,
            segments_info=segments_info)

    # ------------------------------------------------------------------
    # final metrics
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Average the collected statistics.

        Returns:
            dict: ``PQ, SQ, RQ, PQ_th, SQ_th, RQ_th, PQ_st, SQ_st, RQ_st``
            and ``mIoU``, in percent (a group without any category gets 0,
            mIoU is NaN when no class has pixels); empty with
            ``format_only``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            self._write_prediction_json(results)
            logger.info('Panoptic predictions are saved in '
                        f'{self.outfile_prefix}.panoptic.json and '
                        f'{self.outfile_prefix}.panoptic/')
            return dict()

        num_classes = self.num_classes
        labels = list(range(num_classes))
        thing_mask = [label < self.num_things for label in labels]
        pq_stat = PQStat.zeros(num_classes)
        for result in results:
            pq_stat += result['pq_stat']
        pq_results = average_pq(pq_stat, labels, thing_mask)

        confusion = np.zeros(num_classes * (num_classes + 1), np.int64)
        for result in results:
            np.add.at(confusion, result['confusion_index'],
                      result['confusion_count'])
        confusion = confusion.reshape(num_classes, num_classes + 1)
        class_iou = semantic_iou(confusion)

        metrics = {}
        for group, suffix in (('All', ''), ('Things', '_th'), ('Stuff',
                                                               '_st')):
            for key in ('pq', 'sq', 'rq'):
                metrics[key.upper() + suffix] = 100 * pq_results[group][key]
        valid = ~np.isnan(class_iou)
        metrics['mIoU'] = (100 * float(class_iou[valid].mean())
                           if valid.any() else float('nan'))

        self._log_tables(pq_results, class_iou, metrics['mIoU'], logger)
        return metrics

    def _write_prediction_json(self, annotations: list) -> None:
        classes = self.dataset_meta['classes']
        categories = [
            dict(id=cat_id, name=name, isthing=int(label < self.num_things))
            for label, (cat_id,
                        name) in enumerate(zip(self._category_ids(), classes))
        ]
        folder = osp.dirname(self.outfile_prefix)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(f'{self.outfile_prefix}.panoptic.json', 'w') as f:
            json.dump(dict(annotations=annotations, categories=categories), f)

    def _log_tables(self, pq_results: dict, class_iou: np.ndarray, miou: float,
                    logger: MMLogger) -> None:
        rows = [['', 'PQ', 'SQ', 'RQ', 'categories']]
        for group in ('All', 'Things', 'Stuff'):
            rows.append([group] + [
                f'{100 * pq_results[group][key]:.3f}'
                for key in ('pq', 'sq', 'rq')
            ] + [pq_results[group]['n']])
        print_log(
            'Panoptic Evaluation Results:\n' + AsciiTable(rows).table +
            f'\nmIoU: {miou:.3f}',
            logger=logger)
        if not self.classwise:
            return
        rows = [['class', 'PQ', 'SQ', 'RQ', 'IoU']]
        for label, name in enumerate(self.dataset_meta['classes']):
            per_class = pq_results['per_class'][label]
            rows.append(
                [name] +
                [f'{100 * per_class[key]:.3f}' for key in ('pq', 'sq', 'rq')] +
                [f'{100 * class_iou[label]:.3f}'])
        print_log(
            'Per-class Panoptic Evaluation Results:\n' +
            AsciiTable(rows).table,
            logger=logger)


def semantic_iou(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU of a semantic confusion matrix.

    Args:
        confusion (np.ndarray): Pixel counts, shape (C, C + 1): rows gt
            labels, columns predicted labels plus a last 'wrong' column
            (predicted VOID).

    Returns:
        np.ndarray: IoU per class, shape (C,), NaN for a class absent from
        both gt and prediction (mmseg's convention, left out of the mean).
    """
    num_classes = confusion.shape[0]
    intersection = np.diagonal(confusion[:, :num_classes]).astype(np.float64)
    union = (
        confusion.sum(axis=1) + confusion[:, :num_classes].sum(axis=0) -
        intersection)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, intersection / union, np.nan)
