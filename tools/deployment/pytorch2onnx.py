# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Export a RealTimePanoptic model to ONNX.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT \\
        --out model.onnx --shape H W [--opset 17] [--verify [--image IMG]] \\
        [--benchmark N [--threads T]] [--cfg-options KEY=VALUE ...]

The graph takes one raw image (1, 3, H, W) float (BGR pixel values, as the
test pipeline loads them; normalisation and padding are in the graph) and
returns the query boxes, scores, labels, the soft masks of the
parameter-free mask construction, the semantic logits and the number of
valid queries (see ``mmpanoptic_plus.deployment.RTPExportWrapper``). The
panoptic fusion runs after the graph:
``mmpanoptic_plus.deployment.onnx_outputs_to_panoptic(outputs,
**read_rtp_onnx_metadata(path)['postprocess'])``.

CHECKPOINT may be ``none`` for random weights. ``--verify`` runs
onnxruntime on ``--image`` (resized to the export shape) or on a random
image, prints the largest absolute difference of each output against
PyTorch and how many pixels of the panoptic map agree, and exits with 1 when
a difference exceeds ``--tolerance``. ``--benchmark N`` times, in one run and
interleaved, N passes of onnxruntime (graph + the post-processing after it)
against PyTorch eager (``model.predict`` on the same image, padded and
normalised by the model's data preprocessor), after one warm-up pass each,
and prints the medians and their ratio as a JSON line. Needs ``onnx`` (and ``onnxruntime``
for ``--verify``): ``pip install -r requirements/optional.txt``.
"""
import argparse
import copy
import json
import logging
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.runner import load_checkpoint


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a RealTimePanoptic model to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', help='checkpoint file, or "none" for random weights')
    parser.add_argument(
        '--out', default='model.onnx', help='output ONNX file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='input height and width fixed in the graph')
    parser.add_argument(
        '--opset', type=int, default=17, help='ONNX opset (>= 16)')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch on one image')
    parser.add_argument(
        '--image', help='image for --verify (default: a random image)')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=1e-3,
        help='largest absolute output difference --verify accepts')
    parser.add_argument(
        '--benchmark',
        type=int,
        default=0,
        metavar='N',
        help='time N passes of onnxruntime against PyTorch eager')
    parser.add_argument(
        '--threads',
        type=int,
        default=0,
        help='intra-op threads of torch and onnxruntime for --benchmark '
        '(0: their defaults)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. '
        'model.test_cfg.max_per_img=50')
    return parser.parse_args(argv)


def build_model(cfg: Config, checkpoint: Optional[str]) -> torch.nn.Module:
    """The model of ``cfg`` in eval mode on the CPU, random (``init_weights``)
    without checkpoint.

    ``apis.init_panoptic_model`` is not used: it insists on class names from
    the checkpoint or the test dataset, which the export does not need.
    """
    from mmpanoptic_plus.registry import MODELS
    from mmpanoptic_plus.utils import (drop_pretrained_init,
                                       register_all_modules)
    register_all_modules()
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained_init(model_cfg)
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        # init_weights logs every parameter's initialiser at INFO level
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        load_checkpoint(model, checkpoint, map_location='cpu')
    # SyncBN needs a process group; in eval mode BN computes the same
    model = revert_sync_batchnorm(model)
    return model.eval()


def verification_image(height: int,
                       width: int,
                       image_path: Optional[str] = None) -> torch.Tensor:
    """(1, 3, H, W) float BGR pixel values: the image resized to the export
    shape, or uniform random values (seed 0)."""
    if image_path is None:
        generator = torch.Generator().manual_seed(0)
        return torch.randint(
            0, 256, (1, 3, height, width), generator=generator).float()
    import cv2

    from mmpanoptic_plus.apis import load_image
    image = cv2.resize(
        load_image(image_path), (width, height),
        interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()


def verify(onnx_file: str, model: torch.nn.Module, image: torch.Tensor,
           meta: dict) -> dict:
    """Run onnxruntime and the PyTorch wrapper on ``image``.

    Returns:
        dict: ``max_abs_diff`` per output name, ``num_valid`` (onnxruntime,
        PyTorch) and ``panoptic_agreement``, the fraction of pixels where
        the panoptic maps of the two agree.
    """
    import onnxruntime

    from mmpanoptic_plus.deployment import (RTPExportWrapper,
                                            onnx_outputs_to_panoptic)
    session = onnxruntime.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider'])
    onnx_outputs = session.run(None, {'image': image.numpy()})
    wrapper = RTPExportWrapper(
        model, test_cfg=meta['postprocess']['test_cfg']).eval()
    with torch.no_grad():
        torch_outputs = [output.numpy() for output in wrapper(image)]
    differences = {
        name: float(
            np.abs(ours.astype(np.float64) -
                   theirs.astype(np.float64)).max(initial=0.0))
        for name, ours, theirs in zip(meta['outputs'], onnx_outputs,
                                      torch_outputs)
    }
    pans = [
        onnx_outputs_to_panoptic(outputs, **meta['postprocess'])
        ['pan_results'].sem_seg for outputs in (onnx_outputs, torch_outputs)
    ]
    agreement = float((pans[0] == pans[1]).float().mean())
    return dict(
        max_abs_diff=differences,
        num_valid=(int(onnx_outputs[-1]), int(torch_outputs[-1])),
        panoptic_agreement=agreement)


def benchmark(onnx_file: str, model: torch.nn.Module, image: torch.Tensor,
              meta: dict, repeat: int, threads: int = 0) -> dict:
    """Median seconds per image of onnxruntime (session run plus
    :func:`onnx_outputs_to_panoptic`) and of PyTorch eager
    (``model.predict`` through the model's data preprocessor), timed in one
    run with the passes interleaved so that machine load hits both alike.

    Returns:
        dict: ``onnxruntime_s``, ``pytorch_eager_s``, ``ratio`` (onnxruntime
        / eager), ``repeat`` and ``threads``.
    """
    import time

    import onnxruntime
    from mmdet.structures import DetDataSample

    from mmpanoptic_plus.deployment import onnx_outputs_to_panoptic
    if repeat < 1:
        raise ValueError(f'--benchmark needs N >= 1, got {repeat}')
    options = onnxruntime.SessionOptions()
    if threads > 0:
        torch.set_num_threads(threads)
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])
    height, width = image.shape[-2:]

    def run_onnx():
        outputs = session.run(None, {'image': image.numpy()})
        return onnx_outputs_to_panoptic(outputs, **meta['postprocess'])

    def run_eager():
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0)))
        data = model.data_preprocessor(
            dict(inputs=[image[0]], data_samples=[sample]), False)
        return model.predict(data['inputs'], data['data_samples'])

    times = dict(onnx=[], eager=[])
    with torch.no_grad():
        run_onnx(), run_eager()  # warm-up
        for _ in range(repeat):
            for name, run in (('onnx', run_onnx), ('eager', run_eager)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    onnx_s = float(np.median(times['onnx']))
    eager_s = float(np.median(times['eager']))
    return dict(
        onnxruntime_s=onnx_s,
        pytorch_eager_s=eager_s,
        ratio=onnx_s / eager_s,
        repeat=repeat,
        threads=threads)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    model = build_model(cfg, checkpoint)

    from mmpanoptic_plus.deployment import export_rtp_onnx
    out_dir = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(out_dir):
        raise FileNotFoundError(f'output folder does not exist: {out_dir}')
    height, width = args.shape
    meta = export_rtp_onnx(
        model, args.out, (height, width), opset=args.opset)
    print(f'exported {args.out} (input image 1x3x{height}x{width}, '
          f'outputs {", ".join(meta["outputs"])}, opset {args.opset})')
    image = verification_image(height, width, args.image)
    if args.benchmark:
        timing = benchmark(args.out, model, image, meta, args.benchmark,
                           args.threads)
        print(f'onnxruntime {1000 * timing["onnxruntime_s"]:.1f} ms/img, '
              f'PyTorch eager {1000 * timing["pytorch_eager_s"]:.1f} ms/img'
              f' (ratio {timing["ratio"]:.3f}, median of {args.benchmark})')
        print(json.dumps(dict(shape=[height, width], **timing)))
    if not args.verify:
        return 0
    report = verify(args.out, model, image, meta)
    for name, difference in report['max_abs_diff'].items():
        print(f'max abs difference {name}: {difference:.3g}')
    print('valid queries (onnxruntime, PyTorch): '
          f'{report["num_valid"][0]}, {report["num_valid"][1]}')
    print('panoptic pixels that agree: '
          f'{100 * report["panoptic_agreement"]:.2f} %')
    worst = max(report['max_abs_diff'].values())
    if worst > args.tolerance or report['num_valid'][0] != \
            report['num_valid'][1]:
        print(f'verification FAILED (tolerance {args.tolerance})')
        return 1
    print('verification passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
