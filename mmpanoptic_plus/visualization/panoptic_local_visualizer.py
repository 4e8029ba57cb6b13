# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Local visualizer for panoptic predictions and ground truth."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.dist import master_only

from mmpanoptic_plus.registry import VISUALIZERS
from mmpanoptic_plus.structures import INSTANCE_OFFSET
from .panoptic_drawing import (class_names_from_meta, panoptic_boundaries,
                               panoptic_to_rgb, segment_ids_to_panoptic,
                               segment_label_points, split_panoptic_values,
                               to_numpy_map)


@VISUALIZERS.register_module()
class PanopticLocalVisualizer(DetLocalVisualizer):
    """Draws panoptic maps over images: stuff coloured by class, things by
    instance, white outlines between segments and a class name in each.

    mmdet's :class:`DetLocalVisualizer` draws panoptic maps too, but one
    matplotlib mask and polygon per segment, with every instance in its class
    colour; here the colours come from one look-up table
    (:func:`panoptic_to_rgb`) and the blend and outlines are numpy
    operations, only the texts go through matplotlib. Samples without panoptic
    fields are drawn by the parent (instances, semantic maps).

    The ground truth is read from ``gt_panoptic_seg`` (raw segment ids of the
    panoptic PNG) with ``segments_info`` from the sample's metainfo (or that
    of ``gt_panoptic_seg``); without ``segments_info`` it is taken to be
    encoded like predictions (``label + id * INSTANCE_OFFSET``).

    Args:
        name (str): Instance name.
        image (np.ndarray, optional): Image to draw (RGB).
        vis_backends (list[dict], optional): Visual backend configs.
        save_dir (str, optional): Directory the backends save to.
        alpha (float): Opacity of the segment colours. Defaults to 0.5.
        outline_color (tuple, optional): RGB colour of the segment outlines;
            ``None`` draws none. Defaults to white.
        void_color (tuple, optional): RGB colour blended over void pixels;
            ``None`` (default) leaves void pixels as in the image.
        draw_labels (bool): Write class names. Defaults to True.
        text_color (tuple): RGB colour of the class names.
        **kwargs: Other arguments of :class:`DetLocalVisualizer`
            (``bbox_color``, ``mask_color``, ``line_width``), used for samples
            drawn by the parent.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[Dict]] = None,
                 save_dir: Optional[str] = None,
                 alpha: float = 0.5,
                 outline_color: Optional[Tuple[int, int, int]] = (255, 255,
                                                                  255),
                 void_color: Optional[Tuple[int, int, int]] = None,
                 draw_labels: bool = True,
                 text_color: Tuple[int, int, int] = (255, 255, 255),
                 **kwargs) -> None:
        super().__init__(
            name=name,
            image=image,
            vis_backends=vis_backends,
            save_dir=save_dir,
            text_color=text_color,
            alpha=alpha,
            **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        self.outline_color = outline_color
        self.void_color = void_color
        self.draw_labels = draw_labels

    def draw_panoptic_map(self,
                          image: np.ndarray,
                          pan_map: Union[np.ndarray, torch.Tensor],
                          classes: Sequence[str],
                          palette: Optional[Union[str, Sequence]] = None
                          ) -> np.ndarray:
        """Blend an encoded panoptic map over an image.

        Args:
            image (np.ndarray): RGB uint8 image ``(H, W, 3)``.
            pan_map (np.ndarray | torch.Tensor): ``(H, W)`` or ``(1, H, W)``
                map holding ``label + id * INSTANCE_OFFSET``, void =
                ``len(classes)``.
            classes (Sequence[str]): Class names, things first.
            palette (str | Sequence, optional): Class colours.

        Returns:
            np.ndarray: The drawn RGB image ``(H, W, 3)``.
        """
        pan_map = to_numpy_map(pan_map)
        if pan_map.shape != image.shape[:2]:
            raise ValueError(
                f'The panoptic map is {pan_map.shape} but the image is '
                f'{image.shape[:2]}; predictions must be at the original '
                'image size')
        num_classes = len(classes)
        colors = panoptic_to_rgb(pan_map, num_classes, palette)
        _, _, is_void = split_panoptic_values(pan_map, num_classes)

        blend = np.full(pan_map.shape, self.alpha, dtype=np.float32)
        if self.void_color is None:
            blend[is_void] = 0.0
        else:
            colors[is_void] = np.asarray(self.void_color, dtype=np.uint8)
        blend = blend[..., None]
        drawn = image.astype(np.float32) * (1.0 - blend) + \
            colors.astype(np.float32) * blend
        if self.outline_color is not None:
            drawn[panoptic_boundaries(pan_map)] = self.outline_color
        drawn = np.clip(np.round(drawn), 0, 255).astype(np.uint8)

        self.set_image(drawn)
        if self.draw_labels:
            self._draw_segment_labels(pan_map, classes)
        return self.get_image()

    def _draw_segment_labels(self, pan_map: np.ndarray,
                             classes: Sequence[str]) -> None:
        """Write each non-void segment's class name at its deepest pixel."""
        values, points, areas = segment_label_points(pan_map)
        labels, _, is_void = split_panoptic_values(values, len(classes))
        keep = ~is_void
        if not keep.any():
            return
        labels, points, areas = labels[keep], points[keep], areas[keep]
        # grows with the segment's size; mmdet's _get_adaptive_scales only
        # gives 6 or 13 pt, and 6 pt for anything under 30k pixels
        font_sizes = np.clip(np.sqrt(areas) / 5, 7, 14).astype(int)
        self.draw_texts(
            [classes[label] for label in labels],
            points,
            colors=self.text_color,
            font_sizes=font_sizes.tolist(),
            vertical_alignments='center',
            horizontal_alignments='center',
            bboxes=[{
                'facecolor': 'black',
                'alpha': 0.6,
                'pad': 0.5,
                'edgecolor': 'none'
            }] * int(keep.sum()))

    def gt_panoptic_map(self, data_sample: DetDataSample,
                        num_classes: int) -> np.ndarray:
        """The ground truth of a sample as an encoded panoptic map.

        Args:
            data_sample (DetDataSample): With ``gt_panoptic_seg``.
            num_classes (int): Number of classes.

        Returns:
            np.ndarray: int64 ``(H, W)`` encoded map.
        """
        gt_panoptic_seg = data_sample.gt_panoptic_seg
        segments_info = data_sample.metainfo.get(
            'segments_info', gt_panoptic_seg.metainfo.get('segments_info'))
        seg_map = to_numpy_map(gt_panoptic_seg.sem_seg)
        if segments_info is None:
            return seg_map
        known_ids = {int(info['id']) for info in segments_info} | {0}
        unknown = set(np.unique(seg_map).tolist()) - known_ids
        if unknown:
            # The metric will complain; a picture should still be drawn.
            warnings.warn(
                f'gt_panoptic_seg of {data_sample.metainfo.get("img_path")} '
                f'holds segment ids {sorted(unknown)[:10]} missing from '
                'segments_info; they are drawn as void')
        return segment_ids_to_panoptic(seg_map, segments_info, num_classes,
                                       INSTANCE_OFFSET)

    @staticmethod
    def _has_gt(data_sample: Optional[DetDataSample]) -> bool:
        """Whether there is ground truth to draw (the Pack transforms add
        empty ``gt_instances`` to samples of bare images)."""
        if data_sample is None:
            return False
        return 'gt_panoptic_seg' in data_sample or \
            'gt_sem_seg' in data_sample or (
                'gt_instances' in data_sample
                and len(data_sample.gt_instances) > 0)

    @staticmethod
    def _has_pred(data_sample: Optional[DetDataSample]) -> bool:
        """Whether there is a prediction to draw."""
        if data_sample is None:
            return False
        return any(key in data_sample for key in (
            'pred_panoptic_seg', 'pred_sem_seg', 'pred_instances'))

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0) -> None:
        """Draw a sample and save it to the backends or ``out_file``.

        Ground truth (left) and prediction (right) are put side by side when
        both are drawn; a sample without ground truth gives the prediction
        only, one without prediction the ground truth only. Arguments as
        :meth:`DetLocalVisualizer.add_datasample`.

        Args:
            name (str): Image identifier.
            image (np.ndarray): RGB image ``(H, W, 3)``.
            data_sample (DetDataSample, optional): With ``pred_panoptic_seg``
                and/or ``gt_panoptic_seg`` (or instance/semantic fields).
            draw_gt (bool): Draw the ground truth.
            draw_pred (bool): Draw the prediction.
            show (bool): Show in a window instead of saving to backends.
            wait_time (float): Seconds to show the window.
            out_file (str, optional): Save the drawing here (any mmcv image
                extension) instead of to the backends.
            pred_score_thr (float): Score threshold for ``pred_instances``.
            step (int): Global step recorded by the backends.
        """
        image = image.clip(0, 255).astype(np.uint8)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        palette = self.dataset_meta.get('palette', None)
        classes = None

        def get_classes() -> List[str]:
            nonlocal classes
            if classes is None:
                classes = class_names_from_meta(self.dataset_meta)
            return classes

        gt_img_data = None
        pred_img_data = None
        if data_sample is not None:
            data_sample = data_sample.cpu()

        if draw_gt and self._has_gt(data_sample):
            if 'gt_panoptic_seg' in data_sample:
                gt_map = self.gt_panoptic_map(data_sample,
                                              len(get_classes()))
                gt_img_data = self.draw_panoptic_map(image, gt_map,
                                                     get_classes(), palette)
            else:
                gt_img_data = image
                meta_classes = self.dataset_meta.get('classes', None)
                if 'gt_instances' in data_sample:
                    gt_img_data = self._draw_instances(
                        gt_img_data, data_sample.gt_instances, meta_classes,
                        palette)
                if 'gt_sem_seg' in data_sample:
                    gt_img_data = self._draw_sem_seg(
                        gt_img_data, data_sample.gt_sem_seg, meta_classes,
                        palette)

        if draw_pred and self._has_pred(data_sample):
            if 'pred_panoptic_seg' in data_sample:
                pred_img_data = self.draw_panoptic_map(
                    image, data_sample.pred_panoptic_seg.sem_seg,
                    get_classes(), palette)
            else:
                pred_img_data = image
                meta_classes = self.dataset_meta.get('classes', None)
                if 'pred_instances' in data_sample:
                    instances = data_sample.pred_instances
                    instances = instances[instances.scores > pred_score_thr]
                    pred_img_data = self._draw_instances(
                        pred_img_data, instances, meta_classes, palette)
                if 'pred_sem_seg' in data_sample:
                    pred_img_data = self._draw_sem_seg(
                        pred_img_data, data_sample.pred_sem_seg, meta_classes,
                        palette)

        if gt_img_data is not None and pred_img_data is not None:
            drawn_img = np.concatenate((gt_img_data, pred_img_data), axis=1)
        elif gt_img_data is not None:
            drawn_img = gt_img_data
        elif pred_img_data is not None:
            drawn_img = pred_img_data
        else:
            drawn_img = image

        self.set_image(drawn_img)
        if show:
            self.show(drawn_img, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn_img[..., ::-1], out_file)
        else:
            self.add_image(name, drawn_img, step)
