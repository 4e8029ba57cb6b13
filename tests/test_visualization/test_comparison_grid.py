# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
import numpy as np
import pytest

from mmpanoptic_plus.visualization import comparison_grid

# the layout constants of comparison_grid
HEADER, TITLE_WIDTH, LEGEND = 48, 110, 28


def _solid(height, width, color):
    return np.broadcast_to(np.array(color, np.uint8),
                           (height, width, 3)).copy()


def test_tiles_land_in_their_cells():
    size, gap = 20, 4
    red = _solid(20, 20, (255, 0, 0))
    wide_blue = _solid(10, 20, (0, 0, 255))  # half as high as wide
    big_green = _solid(40, 40, (0, 255, 0))  # scaled down to 20 x 20
    grid = comparison_grid([[red, None], [wide_blue, big_green]],
                           ['a', 'b'], ['row 1', 'row 2'],
                           placeholders=[['', 'no checkpoint'], ['', '']],
                           tile_size=size,
                           gap=gap)
    step = size + gap
    assert grid.shape == (HEADER + 2 * step, TITLE_WIDTH + 2 * step, 3)
    assert grid.dtype == np.uint8

    def cell(row, column):
        top, left = HEADER + row * step, TITLE_WIDTH + column * step
        return grid[top:top + size, left:left + size]

    assert (cell(0, 0) == (255, 0, 0)).all()
    assert (cell(1, 1) == (0, 255, 0)).all()
    # the wide tile keeps its aspect ratio: 10 rows of blue, centred, white
    # above and below
    blue = cell(1, 0)
    assert (blue[5:15] == (0, 0, 255)).all()
    assert (blue[:5] == 255).all() and (blue[15:] == 255).all()
    # the missing tile is grey, with its text written in dark pixels
    placeholder = cell(0, 1)
    grey = (placeholder == 200).all(axis=2)
    assert grey.mean() > 0.5 and (placeholder < 150).any()
    # titles are written in the header and the left column
    assert (grid[:HEADER] < 128).any() and (grid[HEADER:, :TITLE_WIDTH] <
                                            128).any()
    # the gaps stay white
    assert (grid[HEADER:, TITLE_WIDTH + size:TITLE_WIDTH + step] == 255).all()


def test_legend_swatches_in_their_colors():
    tile = _solid(8, 8, (9, 9, 9))
    grid = comparison_grid([[tile]], ['a'], ['r'],
                           legend=[('sky', (1, 2, 3)), ('ground', (4, 5, 6))],
                           tile_size=8,
                           gap=2)
    assert grid.shape[0] == HEADER + 10 + LEGEND
    legend = grid[HEADER + 10:]
    for color in ((1, 2, 3), (4, 5, 6)):
        assert (legend == color).all(axis=2).sum() == 17 * 17


def test_mismatched_rows_are_refused():
    tile = _solid(4, 4, (0, 0, 0))
    with pytest.raises(ValueError, match='row titles'):
        comparison_grid([[tile]], ['a'], ['r1', 'r2'])
    with pytest.raises(ValueError, match='tiles each'):
        comparison_grid([[tile, tile]], ['a'], ['r'])
