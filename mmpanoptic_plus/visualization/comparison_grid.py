# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""A titled grid of pictures: rows of images, one column per method.

Built with numpy and OpenCV's Hershey font (no matplotlib figure), so the
output is the same on every machine and every backend.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

ColorType = Tuple[int, int, int]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (255, 255, 255)
_PLACEHOLDER = (200, 200, 200)
_TEXT = (0, 0, 0)


def _wrap(text: str, width: int, scale: float) -> list:
    """Split ``text`` into lines no wider than ``width`` pixels (a word
    longer than the width keeps a line of its own)."""
    lines, line = [], ''
    for word in text.split():
        candidate = f'{line} {word}'.strip()
        if line and cv2.getTextSize(candidate, _FONT, scale,
                                    1)[0][0] > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + [line] if line else lines


def _put_lines(canvas: np.ndarray, text: str, box: Tuple[int, int, int, int],
               scale: float) -> None:
    """Write ``text`` wrapped and centred in ``box = (x, y, w, h)``."""
    x, y, width, height = box
    lines = _wrap(text, width - 4, scale)
    line_height = int(round(30 * scale)) + 2
    top = y + max((height - line_height * len(lines)) // 2, 0)
    for index, line in enumerate(lines):
        (text_width, text_height), _ = cv2.getTextSize(line, _FONT, scale, 1)
        origin = (x + max((width - text_width) // 2, 0),
                  top + index * line_height + text_height + 2)
        cv2.putText(canvas, line, origin, _FONT, scale, _TEXT, 1,
                    cv2.LINE_AA)


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled to fit a ``size x size`` tile, centred on white."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_size = (max(int(round(width * scale)), 1),
                max(int(round(height * scale)), 1))
    resized = cv2.resize(
        image, new_size,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    tile = np.full((size, size, 3), _BACKGROUND, dtype=np.uint8)
    top = (size - new_size[1]) // 2
    left = (size - new_size[0]) // 2
    tile[top:top + new_size[1], left:left + new_size[0]] = resized
    return tile


def comparison_grid(tiles: Sequence[Sequence[Optional[np.ndarray]]],
                    column_titles: Sequence[str],
                    row_titles: Sequence[str],
                    placeholders: Optional[Sequence[Sequence[str]]] = None,
                    legend: Sequence[Tuple[str, ColorType]] = (),
                    tile_size: int = 192,
                    gap: int = 4,
                    font_scale: float = 0.45) -> np.ndarray:
    """Lay out pictures in a grid with column and row titles.

    Args:
        tiles (Sequence[Sequence[np.ndarray | None]]): ``R`` rows of ``C``
            RGB uint8 images ``(H, W, 3)`` (any size: each is scaled to fit
            a ``tile_size`` square, keeping its aspect ratio) or ``None``
            (a grey tile showing the matching ``placeholders`` text).
        column_titles (Sequence[str]): ``C`` titles, written above.
        row_titles (Sequence[str]): ``R`` titles, written on the left.
        placeholders (Sequence[Sequence[str]], optional): ``R x C`` texts
            for the ``None`` tiles (e.g. "no checkpoint").
        legend (Sequence[tuple]): ``(name, (R, G, B))`` swatches written
            in one line under the grid.
        tile_size (int): Side of a tile in pixels.
        gap (int): Pixels between tiles.
        font_scale (float): OpenCV font scale of the texts.

    Returns:
        np.ndarray: RGB uint8 image ``(header + R * (tile_size + gap) +
        legend, row_title + C * (tile_size + gap), 3)``, wider when the
        legend needs it.
    """
    num_rows, num_columns = len(tiles), len(column_titles)
    if len(row_titles) != num_rows or any(
            len(row) != num_columns for row in tiles):
        raise ValueError(
            f'{num_rows} rows of tiles need {num_rows} row titles (got '
            f'{len(row_titles)}) and {num_columns} tiles each (got '
            f'{[len(row) for row in tiles]})')
    header, title_width = 48, 110
    legend_height = 28 if legend else 0
    # each swatch: 16 px square, 4 px, the name, 8 px
    legend_widths = [
        28 + cv2.getTextSize(name, _FONT, font_scale, 1)[0][0]
        for name, _ in legend
    ]
    step = tile_size + gap
    canvas = np.full((header + num_rows * step + legend_height,
                      title_width + max(num_columns * step,
                                        sum(legend_widths)), 3),
                     _BACKGROUND,
                     dtype=np.uint8)
    for column, title in enumerate(column_titles):
        _put_lines(canvas, title,
                   (title_width + column * step, 0, tile_size, header),
                   font_scale)
    for row, title in enumerate(row_titles):
        top = header + row * step
        _put_lines(canvas, title, (0, top, title_width, tile_size),
                   font_scale)
        for column, image in enumerate(tiles[row]):
            left = title_width + column * step
            if image is None:
                canvas[top:top + tile_size,
                       left:left + tile_size] = _PLACEHOLDER
                text = placeholders[row][column] if placeholders else ''
                _put_lines(canvas, text, (left, top, tile_size, tile_size),
                           font_scale)
            else:
                canvas[top:top + tile_size,
                       left:left + tile_size] = _fit(image, tile_size)
    x = title_width
    y = header + num_rows * step
    for (name, color), width in zip(legend, legend_widths):
        cv2.rectangle(canvas, (x, y + 6), (x + 16, y + 22),
                      tuple(int(c) for c in color), -1)
        cv2.putText(canvas, name, (x + 20, y + 20), _FONT, font_scale, _TEXT,
                    1, cv2.LINE_AA)
        x += width
    return canvas
