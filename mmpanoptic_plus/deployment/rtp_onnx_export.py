# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""ONNX export of RealTimePanoptic (:class:`RTPExportWrapper`) and the JSON
metadata stored with it.

The graph is traced with the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``): the torch.export-based default
needs ``onnxscript`` and cannot translate the NMS autograd function. Opset
>= 16 (``GridSample``).
"""
import json
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .rtp_export_wrapper import RTP_ONNX_OUTPUTS, RTPExportWrapper

#: Key of the JSON metadata stored in the ONNX file.
METADATA_KEY = 'mmpanoptic_plus.rtp'
#: ``GridSample`` (dense box map, global heads) exists from opset 16 on.
MIN_OPSET = 16


def export_rtp_onnx(model: nn.Module,
                    out_file: str,
                    shape: Tuple[int, int],
                    opset: int = 17,
                    test_cfg: Optional[dict] = None,
                    preprocess: bool = True) -> dict:
    """Export a :class:`RealTimePanoptic` to ONNX for ``(1, 3, H, W)``
    inputs (see :class:`RTPExportWrapper`), with the post-processing
    arguments stored as JSON metadata (:func:`read_rtp_onnx_metadata`).

    Args:
        model (nn.Module): The model (set to eval mode here).
        out_file (str): Path of the ``.onnx`` file.
        shape (tuple[int, int]): Input (H, W). With ``preprocess`` any size
            (padded in the graph); without, a multiple of the size divisor.
        opset (int): ONNX opset, >= 16. Defaults to 17.
        test_cfg (dict, optional): Overrides of the model's ``test_cfg``.
        preprocess (bool): Normalise and pad in the graph. Defaults to True.

    Returns:
        dict: The metadata written to the file.
    """
    import onnx
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} has no GridSample; use >= '
                         f'{MIN_OPSET}')
    height, width = (int(size) for size in shape)
    if height <= 0 or width <= 0:
        raise ValueError(f'shape must be positive (H, W), got {shape}')
    model.eval()
    wrapper = RTPExportWrapper(model, test_cfg, preprocess).eval()
    device = next(model.parameters()).device
    # a mid-grey image: any content traces the same graph
    dummy = torch.full((1, 3, height, width), 128.0, device=device)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns about every Python number it records as a
        # constant (sizes, strides): all are fixed by the export shape
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        for message in ('.*legacy TorchScript-based ONNX export',
                        '.*Constant folding', '.*torch.meshgrid',
                        '.*torch.jit.* is deprecated',
                        'The feature will be removed'):
            warnings.filterwarnings('ignore', message=message)
        torch.onnx.export(
            wrapper, (dummy, ),
            out_file,
            dynamo=False,
            opset_version=opset,
            input_names=['image'],
            output_names=list(RTP_ONNX_OUTPUTS),
            do_constant_folding=True)
    meta = wrapper.metadata((height, width))
    onnx_model = onnx.load(out_file)
    entry = onnx_model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta)
    onnx.save(onnx_model, out_file)
    return meta


def read_rtp_onnx_metadata(onnx_file: str) -> dict:
    """The metadata :func:`export_rtp_onnx` stored in an ONNX file; its
    ``postprocess`` entry holds the keyword arguments of
    :func:`onnx_outputs_to_panoptic`."""
    import onnx
    onnx_model = onnx.load(onnx_file, load_external_data=False)
    for entry in onnx_model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise KeyError(f'{onnx_file} has no {METADATA_KEY!r} metadata (not '
                   'exported by export_rtp_onnx)')
