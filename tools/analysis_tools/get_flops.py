# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Parameters and MACs of a panoptic model's network (mmdet's
``tools/analysis_tools/get_flops.py`` for our models).

    python tools/analysis_tools/get_flops.py CONFIG --shape H W
        [--device cpu|cuda] [--cfg-options k=v ...]

The network is what ``model._forward`` runs (``mode='tensor'``: backbone,
neck and heads, no post-processing) on one random image of ``(3, H, W)``
after the model's own data preprocessor. It is traced with PyTorch's JIT
by mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (fvcore's counter,
which mmengine's ``get_model_complexity_info`` also uses) and counted per
operator: a convolution, linear layer, matmul or einsum counts one per
multiply-add (what mmengine calls "flops" are MACs); normalisation and
upsampling add their small element-wise counts. mmcv's deformable
convolutions (Python autograd functions, unknown to the counter) are
counted like the convolutions they are. Operators the counter has no rule
for (NMS, sorting, ...) are listed in ``uncounted_ops``.

For a two-stage detector (Panoptic FPN, Unified) mmdet's ``_forward`` runs
the RoI heads on the RPN proposals (up to the test config's
``rpn.max_per_img``), not on the final detections as ``predict`` does.

The last output line is one JSON object: ``{"config", "shape", "params",
"macs", "uncounted_ops"}``.
"""
import argparse
import copy
import json
import os.path as osp
import sys
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import conv_flop_count, get_shape
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark import build_model, make_batch  # noqa: E402

from mmpanoptic_plus.utils import register_all_modules  # noqa: E402


def _deform_conv_handle(weight_index: int):
    """MACs of an mmcv deformable convolution: those of a convolution with
    the same weight and output (the bilinear sampling is not counted).

    ``DeformConv2dFunction`` takes ``(input, offset, weight, ...)``,
    ``ModulatedDeformConv2dFunction`` ``(input, offset, mask, weight,
    bias, ...)``.
    """

    def handle(inputs: List[Any], outputs: List[Any]) -> Counter:
        return Counter({
            'deform_conv':
            conv_flop_count(
                get_shape(inputs[0]), get_shape(inputs[weight_index]),
                get_shape(outputs[0]))
        })

    return handle


DEFORM_CONV_HANDLES = {
    'prim::PythonOp.DeformConv2dFunction': _deform_conv_handle(2),
    'prim::PythonOp.ModulatedDeformConv2dFunction': _deform_conv_handle(3),
}


def _tensors(output: Any) -> List[torch.Tensor]:
    """The tensors of a nested tuple / list / dict, in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [tensor for item in output for tensor in _tensors(item)]
    return []


class _NetworkOnly(nn.Module):
    """``model._forward`` with fixed data samples, returning a flat tuple of
    tensors (what the JIT tracer accepts)."""

    def __init__(self, model: nn.Module, data_samples: list) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor) -> tuple:
        return tuple(_tensors(self.model._forward(inputs, self.data_samples)))


def network_complexity(model: nn.Module, batch: dict) -> Dict[str, Any]:
    """Parameters of ``model`` and MACs of its network on ``batch``.

    Args:
        model (nn.Module): A model in eval mode (e.g. from
            :func:`benchmark.build_model`).
        batch (dict): ``inputs`` (list of uint8 ``(3, H, W)`` tensors) and
            ``data_samples``, as :func:`benchmark.make_batch` gives.

    Returns:
        dict: ``params`` (int, all parameters of the model), ``macs``
        (int, per batch) and ``uncounted_ops`` (dict: operator -> number
        of calls the counter has no rule for).
    """
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        analyzer = FlopAnalyzer(
            _NetworkOnly(model, data['data_samples']), (data['inputs'], ))
        analyzer.set_op_handle(**DEFORM_CONV_HANDLES)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        macs = int(analyzer.total())
        uncounted = dict(sorted(analyzer.unsupported_ops().items()))
    return dict(
        params=int(parameter_count(model)['']),
        macs=macs,
        uncounted_ops=uncounted)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and MACs of a model\'s network')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[1024, 2048],
        metavar=('H', 'W'),
        help='input image height and width')
    parser.add_argument(
        '--device', choices=['cpu', 'cuda'], default='cpu', help='device')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    args = parser.parse_args(argv)
    if min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape}')
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but CUDA is not available')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    MMLogger.get_instance('get_flops', log_level='WARNING')
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(0)
    model = build_model(cfg, None, args.device)
    batch = make_batch(*args.shape)
    record = dict(config=args.config, shape=list(args.shape))
    record.update(network_complexity(model, batch))
    print(f'{args.config}  input {args.shape[0]}x{args.shape[1]}\n'
          f'  parameters {record["params"] / 1e6:.2f} M\n'
          f'  network MACs {record["macs"] / 1e9:.1f} G')
    if record['uncounted_ops']:
        print('  not counted (no rule): ' + ', '.join(
            f'{op} x{calls}' for op, calls in record['uncounted_ops'].items()))
    print(json.dumps(record), flush=True)
    return record


if __name__ == '__main__':
    main()
