# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""The exportable NMS, re-exported: it lives in
:mod:`mmpanoptic_plus.models.utils.exportable_nms` next to the query
selection that calls it."""
from mmpanoptic_plus.models.utils.exportable_nms import onnx_nms

__all__ = ['onnx_nms']
