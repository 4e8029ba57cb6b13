# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Pictures of context-specific instance retrieval (PSS Sec. 4.2, Fig. 4-5):
crops of instances in their 3x3 context (laid out beside their retrievals by
:func:`comparison_grid`), and a t-SNE map of a category's prototypes
coloured by their dominant context class."""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np


def context_box(box: Sequence[int], height: int,
                width: int) -> Tuple[int, int, int, int]:
    """The 3x3 neighbourhood of a box (the box and its 8 context regions,
    PSS Fig. 3), clipped to the image.

    Args:
        box (Sequence[int]): x1y1x2y2 (x2, y2 exclusive).
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[int, int, int, int]: Clipped x1y1x2y2.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = x2 - x1, y2 - y1
    return (max(x1 - w, 0), max(y1 - h, 0), min(x2 + w, width),
            min(y2 + h, height))


def context_crop(image: np.ndarray,
                 box: Sequence[int],
                 box_color: Tuple[int, int, int] = (255, 255, 0)
                 ) -> np.ndarray:
    """An instance in its context: the crop of its 3x3 neighbourhood
    (:func:`context_box`) with the instance's box drawn, to be laid out by
    :func:`comparison_grid` (which scales it to its tile).

    Args:
        image (np.ndarray): (H, W, 3) uint8 image.
        box (Sequence[int]): Instance x1y1x2y2 in image pixels.
        box_color (tuple): Colour of the box, in the image's channel order.

    Returns:
        np.ndarray: (h, w, 3) uint8 copy of the crop, h, w >= 1.
    """
    height, width = image.shape[:2]
    cx1, cy1, cx2, cy2 = context_box(box, height, width)
    crop = np.ascontiguousarray(image[cy1:max(cy2, cy1 + 1),
                                      cx1:max(cx2, cx1 + 1)]).copy()
    x1, y1, x2, y2 = (int(v) for v in box)
    # a line of about 1/64 of the crop: ~2 px once scaled to a tile
    thickness = max(1, round(max(crop.shape[:2]) / 64))
    cv2.rectangle(crop, (x1 - cx1, y1 - cy1), (x2 - cx1 - 1, y2 - cy1 - 1),
                  box_color, thickness)
    return crop


def plot_prototype_tsne(prototypes: np.ndarray,
                        context_labels: np.ndarray,
                        class_names: Sequence[str],
                        palette: np.ndarray,
                        out_file: str,
                        title: str = '',
                        is_query: Optional[np.ndarray] = None,
                        seed: int = 0) -> np.ndarray:
    """t-SNE map of instance prototypes coloured by their dominant context
    class (PSS Fig. 5), written to ``out_file``.

    Args:
        prototypes (np.ndarray): (N, D) descriptors, N >= 3.
        context_labels (np.ndarray): (N,) dominant context class of each.
        class_names (Sequence[str]): All class names (legend).
        palette (np.ndarray): (C, 3) uint8 RGB colours of the classes.
        out_file (str): PNG path.
        title (str): Plot title.
        is_query (np.ndarray, optional): (N,) bool: queries drawn as
            circles, database instances as crosses.
        seed (int): t-SNE random state.

    Returns:
        np.ndarray: (N, 2) the embedded points.
    """
    import matplotlib
    matplotlib.use('Agg')  # files only: no display on servers
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    num = len(prototypes)
    perplexity = float(min(30.0, max(1.0, (num - 1) / 3)))
    points = TSNE(
        n_components=2, perplexity=perplexity, init='pca',
        random_state=seed).fit_transform(np.asarray(prototypes, np.float64))
    if is_query is None:
        is_query = np.ones(num, bool)
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    for label in np.unique(context_labels):
        colour = np.asarray(palette[label], np.float64) / 255
        legend = class_names[label]  # one legend entry per class
        for query, marker in ((True, 'o'), (False, 'x')):
            chosen = (context_labels == label) & (is_query == query)
            if chosen.any():
                axes.scatter(
                    points[chosen, 0],
                    points[chosen, 1],
                    s=12,
                    c=[colour],
                    marker=marker,
                    label=legend)
                legend = None
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=9)
    axes.legend(title='dominant context', fontsize=7, title_fontsize=7)
    figure.tight_layout()
    figure.savefig(out_file)
    plt.close(figure)
    return points
