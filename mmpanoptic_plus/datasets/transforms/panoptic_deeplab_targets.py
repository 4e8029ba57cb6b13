# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from typing import Dict, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmpanoptic_plus.models.utils import instance_index_map
from mmpanoptic_plus.registry import TRANSFORMS
from .panoptic_target_inputs import read_semantic_and_instances

IGNORE_LABEL = 255

#: ``results`` keys written by :class:`GeneratePanopticDeepLabTargets` and
#: the value to pad each with (``DetDataPreprocessor`` pads only
#: ``gt_sem_seg``, so whoever batches these targets pads them with these
#: values: padded pixels carry no Gaussian, no offset and zero loss weight).
PANOPTIC_DEEPLAB_TARGET_PAD_VALUES: Dict[str, float] = {
    'gt_center_heatmap': 0.,
    'gt_center_weights': 0.,
    'gt_offsets': 0.,
    'gt_offset_weights': 0.,
    'gt_semantic_weights': 0.,
}


def gaussian_window(sigma: float) -> np.ndarray:
    """Unnormalized 2-D Gaussian window pasted at each instance center.

    The window has ``6 * sigma + 3`` pixels per side (rounded down for a
    non-integer ``sigma``), peak 1 at index ``3 * sigma + 1``, as in the
    reference Panoptic-DeepLab target generator.

    Args:
        sigma (float): Standard deviation in pixels.

    Returns:
        np.ndarray: (S, S) float32 window, ``S = int(6 * sigma + 3)``.
    """
    size = int(6 * sigma + 3)
    peak = int(3 * sigma + 1)
    axis = np.arange(size, dtype=np.float64) - peak
    squared_radius = axis[:, None]**2 + axis[None, :]**2
    return np.exp(-squared_radius / (2 * sigma**2)).astype(np.float32)


@TRANSFORMS.register_module()
class GeneratePanopticDeepLabTargets(BaseTransform):
    """Dense training targets of Panoptic-DeepLab (Cheng et al., CVPR 2020),
    Sec. 3.1/3.2: instance center heatmap, center offsets and loss weights.

    Run it after ``LoadPanopticAnnotations`` and the geometric augmentation
    (flip, resize, crop, pad keep ``gt_masks`` and ``gt_seg_map`` aligned)
    and before ``PackPanopticInputs``. Instances come from ``gt_masks``
    (non-crowd and crowd thing instances, ``gt_ignore_flags`` True for crowd);
    ``gt_panoptic_seg`` is not used because geometric transforms do not
    update it.

    Targets, following the paper and the reference implementation
    (detectron2 ``projects/Panoptic-DeepLab``):

    - ``gt_center_heatmap``: one 2-D Gaussian (std ``sigma``, window
      ``6 * sigma + 3``, peak 1) per instance, centered at the rounded mass
      center of its pixels, overlapping Gaussians merged by maximum (Sec.
      3.1, instance center prediction). Crowd regions get a Gaussian too,
      as in the reference (``center_on_crowd=True``), although their own
      pixels carry no center loss. Instances with no pixel left (cropped
      away) get none.
    - ``gt_center_weights``: 1 on pixels of non-crowd segments, things and
      stuff alike; 0 on void (255 in ``gt_seg_map``) and crowd pixels.
    - ``gt_offsets``: ``(center_y - y, center_x - x)`` from each instance
      pixel (crowd included) to the *unrounded* mass center of its instance
      (Sec. 3.1, center offset regression); 0 elsewhere.
    - ``gt_offset_weights``: 1 on non-crowd instance pixels; with
      ``ignore_stuff_in_offset=False`` also 1 on the stuff pixels (the
      ``gt_center_weights``).
    - ``gt_semantic_weights``: ``small_instance_weight`` on pixels of
      instances (crowd included, as the reference) whose pixel count in the
      current (cropped) image is below ``small_instance_area``; 1 elsewhere
      (Sec. 3.1: small instances weighted 3 in the semantic loss).
    - ``ignore_crowd_in_semantic=True`` sets crowd pixels of ``gt_seg_map``
      to 255 (the original TensorFlow code does; the reference Cityscapes
      config keeps them: default False).

    Required Keys:

    - gt_seg_map (np.uint8, (H, W)): semantic labels, 255 for void
    - gt_masks (BitmapMasks, (N, H, W)): thing instances, crowd included
    - gt_ignore_flags (bool, (N, )): True for crowd instances
    - gt_bboxes_labels (np.int64, (N, )): only its length is checked

    Modified Keys:

    - gt_seg_map (crowd pixels set to 255 when
      ``ignore_crowd_in_semantic``)

    Added Keys (all np.float32, padded with 0, see
    :data:`PANOPTIC_DEEPLAB_TARGET_PAD_VALUES`):

    - gt_center_heatmap ((1, H, W))
    - gt_center_weights ((H, W))
    - gt_offsets ((2, H, W)): (dy, dx)
    - gt_offset_weights ((H, W))
    - gt_semantic_weights ((H, W))

    The model expects the packer to put them in the data sample as
    ``data_sample.gt_center_heatmap = PixelData(data=(1, H, W))``,
    ``data_sample.gt_center_weights = PixelData(data=(1, H, W))``,
    ``data_sample.gt_offsets = PixelData(data=(2, H, W))``,
    ``data_sample.gt_offset_weights = PixelData(data=(1, H, W))`` and
    ``data_sample.gt_semantic_weights = PixelData(data=(1, H, W))``
    (float32 tensors; the (H, W) weights gain a leading axis).

    Args:
        sigma (float): Std of the center Gaussians in pixels. Defaults to 8
            (paper, Sec. 3.1, and the reference generator's default;
            detectron2's config default is 10).
        ignore_stuff_in_offset (bool): Zero offset weight on stuff pixels.
            Defaults to True.
        small_instance_area (int): Instances with fewer pixels are "small".
            Defaults to 4096.
        small_instance_weight (float): Semantic loss weight of small
            instance pixels. Defaults to 3.
        ignore_crowd_in_semantic (bool): Set crowd pixels of ``gt_seg_map``
            to 255. Defaults to False.
        center_on_crowd (bool): Place a Gaussian at crowd regions' centers
            too, as the reference does. Defaults to True.
    """

    def __init__(self,
                 sigma: float = 8,
                 ignore_stuff_in_offset: bool = True,
                 small_instance_area: int = 4096,
                 small_instance_weight: float = 3,
                 ignore_crowd_in_semantic: bool = False,
                 center_on_crowd: bool = True) -> None:
        if sigma <= 0:
            raise ValueError(f'sigma must be positive, got {sigma}')
        self.sigma = sigma
        self.ignore_stuff_in_offset = ignore_stuff_in_offset
        self.small_instance_area = small_instance_area
        self.small_instance_weight = small_instance_weight
        self.ignore_crowd_in_semantic = ignore_crowd_in_semantic
        self.center_on_crowd = center_on_crowd
        self.window = gaussian_window(sigma)
        # offset of the window's first row/column from its peak
        self.window_radius = int(3 * sigma + 1)

    def _paste_gaussians(self, heatmap: np.ndarray,
                         centers_yx: np.ndarray) -> None:
        """Merge one Gaussian window per center into ``heatmap`` by max.

        A loop over instances, each step O(window): the windows are small
        and few, a vectorized paste would need an (N, H, W) buffer.

        Args:
            heatmap (np.ndarray): (H, W) float32, modified in place.
            centers_yx (np.ndarray): (M, 2) integer peak positions.
        """
        height, width = heatmap.shape
        size = self.window.shape[0]
        for peak_y, peak_x in centers_yx.tolist():
            top = peak_y - self.window_radius
            left = peak_x - self.window_radius
            y0, y1 = max(top, 0), min(top + size, height)
            x0, x1 = max(left, 0), min(left + size, width)
            if y0 >= y1 or x0 >= x1:
                continue
            np.maximum(
                heatmap[y0:y1, x0:x1],
                self.window[y0 - top:y1 - top, x0 - left:x1 - left],
                out=heatmap[y0:y1, x0:x1])

    def _check_inputs(
            self, results: dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        semantic, masks, crowd = read_semantic_and_instances(
            results, 'GeneratePanopticDeepLabTargets',
            ('gt_seg_map', 'gt_masks', 'gt_ignore_flags'),
            'with_seg=True, with_mask=True, with_bbox=True')
        num_labels = len(results.get('gt_bboxes_labels', crowd))
        if crowd.shape != (masks.shape[0], ) or num_labels != len(crowd):
            raise ValueError(
                f'{masks.shape[0]} masks, {len(crowd)} ignore flags and '
                f'{num_labels} labels: they must describe the same instances '
                f'({results.get("img_path")})')
        return semantic, masks, crowd

    def transform(self, results: dict) -> dict:
        """Add the Panoptic-DeepLab targets of one image.

        Args:
            results (dict): Result dict with the required keys.

        Returns:
            dict: ``results`` with the added keys of the class docstring.
        """
        semantic, masks, crowd = self._check_inputs(results)
        height, width = semantic.shape
        num_instances = masks.shape[0]

        # 1 + index of the instance covering each pixel (first wins), 0 where
        # none does
        instance_index = instance_index_map(masks).numpy()
        flat_index = instance_index.ravel()
        pixels = np.flatnonzero(flat_index)  # flat positions of instances
        owner = flat_index[pixels]  # 1 + instance index of each
        pixel_y = pixels // width
        pixel_x = pixels % width

        # mass centers of all instances at once, slot 0 = background
        slots = num_instances + 1
        counts = np.bincount(owner, minlength=slots)
        sum_y = np.bincount(owner, weights=pixel_y, minlength=slots)
        sum_x = np.bincount(owner, weights=pixel_x, minlength=slots)
        present = counts > 0
        present[0] = False
        safe_counts = np.maximum(counts, 1)
        center_y = sum_y / safe_counts
        center_x = sum_x / safe_counts

        # offsets: one gather of each pixel's instance center
        offsets = np.zeros((2, height * width), dtype=np.float32)
        offsets[0, pixels] = center_y[owner] - pixel_y
        offsets[1, pixels] = center_x[owner] - pixel_x

        heatmap = np.zeros((height, width), dtype=np.float32)
        with_center = present[1:] & (self.center_on_crowd | ~crowd)
        # np.round: half to even, as the reference's round() on numpy floats
        peaks = np.stack([
            np.round(center_y[1:][with_center]),
            np.round(center_x[1:][with_center])
        ], axis=1).astype(np.int64)
        self._paste_gaussians(heatmap, peaks)

        # per-pixel flags through lookup tables indexed by instance_index
        is_crowd_table = np.concatenate([[False], crowd])
        crowd_pixels = is_crowd_table[instance_index]
        instance_pixels = instance_index > 0
        void_pixels = semantic == IGNORE_LABEL

        center_weights = (~void_pixels & ~crowd_pixels).astype(np.float32)
        if self.ignore_stuff_in_offset:
            offset_weights = (instance_pixels & ~crowd_pixels).astype(
                np.float32)
        else:
            offset_weights = center_weights.copy()

        is_small_table = counts < self.small_instance_area
        is_small_table[0] = False
        semantic_weights = np.where(is_small_table[instance_index],
                                    np.float32(self.small_instance_weight),
                                    np.float32(1)).astype(np.float32)

        if self.ignore_crowd_in_semantic and crowd.any():
            semantic = semantic.copy()
            semantic[crowd_pixels] = IGNORE_LABEL
            results['gt_seg_map'] = semantic

        results['gt_center_heatmap'] = heatmap[None]
        results['gt_center_weights'] = center_weights
        results['gt_offsets'] = offsets.reshape(2, height, width)
        results['gt_offset_weights'] = offset_weights
        results['gt_semantic_weights'] = semantic_weights
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma={self.sigma}, '
                f'ignore_stuff_in_offset={self.ignore_stuff_in_offset}, '
                f'small_instance_area={self.small_instance_area}, '
                f'small_instance_weight={self.small_instance_weight}, '
                f'ignore_crowd_in_semantic={self.ignore_crowd_in_semantic}, '
                f'center_on_crowd={self.center_on_crowd})')
