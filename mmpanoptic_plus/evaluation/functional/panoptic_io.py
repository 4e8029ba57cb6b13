# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Reading and writing COCO panoptic id PNGs: the codec lives in
:mod:`mmpanoptic_plus.structures.panoptic_png`; these names stay importable
from here for the evaluation code and its users."""
from mmpanoptic_plus.structures.panoptic_png import (MAX_PANOPTIC_ID,
                                                     ids_to_rgb,
                                                     read_panoptic_ids,
                                                     write_panoptic_ids)

__all__ = [
    'MAX_PANOPTIC_ID', 'read_panoptic_ids', 'write_panoptic_ids', 'ids_to_rgb'
]
