# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Deployment helpers (ONNX export). Not imported by the package itself:
nothing here is on the training or ``model.predict`` path."""
from .rtp_onnx import (RTP_ONNX_OUTPUTS, RTPExportWrapper, export_rtp_onnx,
                       onnx_nms, onnx_outputs_to_panoptic,
                       read_rtp_onnx_metadata, rtp_fixed_query_boxes)

__all__ = [
    'RTP_ONNX_OUTPUTS', 'RTPExportWrapper', 'export_rtp_onnx', 'onnx_nms',
    'onnx_outputs_to_panoptic', 'read_rtp_onnx_metadata',
    'rtp_fixed_query_boxes'
]
