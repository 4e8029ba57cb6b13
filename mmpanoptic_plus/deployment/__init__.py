# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Deployment helpers (ONNX export). Not imported by the package itself:
nothing here is on the training or ``model.predict`` path."""
from .rtp_export_wrapper import (RTP_ONNX_OUTPUTS, RTPExportWrapper,
                                 export_test_cfg)
from .rtp_onnx_export import (METADATA_KEY, MIN_OPSET, export_rtp_onnx,
                              read_rtp_onnx_metadata)
from .rtp_onnx_postprocess import onnx_outputs_to_panoptic

__all__ = [
    'RTP_ONNX_OUTPUTS', 'RTPExportWrapper', 'export_test_cfg',
    'METADATA_KEY', 'MIN_OPSET', 'export_rtp_onnx', 'read_rtp_onnx_metadata',
    'onnx_outputs_to_panoptic'
]
