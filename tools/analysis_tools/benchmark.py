# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Inference speed of panoptic models: full inference, network alone, and
post-processing as their difference.

    python tools/analysis_tools/benchmark.py CONFIG --shape H W --repeat N
        [--warmup K] [--statistic mean|min] [--quick] [--checkpoint CKPT]
        [--device cpu|cuda] [--network auto|forward|modules]
        [--cfg-options k=v ...]
    python tools/analysis_tools/benchmark.py --configs A B C --shape H W ...
        [--config-options INDEX k=v ...]  (overrides for one config)

A random ``uint8`` image of shape ``(3, H, W)`` (taken as already resized by
the test pipeline: ``ori_shape == img_shape``, scale factor 1) goes through
the model's own ``data_preprocessor`` and then ``model.predict``
(``mode='predict'``): the full inference, post-processing included ->
``total``. The network alone is timed in two ways:

* ``forward``: preprocessor + ``model._forward`` (``mode='tensor'``), the
  model's own backbone/neck/heads path without post-processing;
* ``modules``: ``total`` minus the time ``predict`` spends outside
  ``nn.Module`` calls (NMS, mask pasting, panoptic fusion, ...), measured
  with forward hooks; it needs no cooperation from the model and always
  covers the work ``predict`` does. The hooks' own cost (microseconds per
  call) lands in the post-processing.

``network_ms`` is the one ``--network`` picks (``auto``: ``forward``, except
for two-stage detectors, whose mmdet ``_forward`` does different work from
``predict``, and where ``_forward`` fails or exceeds ``predict``);
``postprocess = total - network``. Both measurements are in the JSON, and
``notes`` says which was used and why. ``preprocess`` (the data
preprocessor, inside both total and network) is reported apart. ``warmup``
untimed rounds come first, then ``repeat`` timed rounds, each running all
the measurements in turn, so that a change of machine load hits them alike;
means are reported (``--statistic min``: the best of the ``repeat`` runs of
each measurement, less sensitive to a loaded machine). ``--quick`` takes
``total`` from the same ``predict`` run as the module split (one predict run
per round instead of two) and skips ``_forward`` where the network method
will not use it. With several configs (``--configs``) the models are
timed in one process, one after another, and a table of ratios to the first
config is printed.

The last line of the output is one JSON object: for a single config
``{"config", "shape", "device", "total_ms", "network_ms", "postprocess_ms",
"preprocess_ms", "fps", "network_method", "network_forward_ms",
"network_modules_ms", "repeat", "warmup", "statistic", "quick",
"threads", "notes"}``; for several,
``{"results": [one such object per config], "ratios": [...]}``.
"""
import argparse
import copy
import json
import os.path as osp
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmpanoptic_plus.registry import DATASETS, MODELS
from mmpanoptic_plus.utils import drop_pretrained_init, register_all_modules


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time full inference, network and post-processing')
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument(
        '--configs',
        nargs='+',
        default=[],
        help='several configs to time in one process (ratios are printed '
        'relative to the first)')
    parser.add_argument(
        '--checkpoint',
        nargs='+',
        default=[],
        help='checkpoint(s), one per config; random init when omitted')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='input image height and width')
    parser.add_argument(
        '--repeat', type=int, default=10, help='number of timed runs')
    parser.add_argument(
        '--warmup', type=int, default=2, help='number of untimed runs first')
    parser.add_argument(
        '--statistic',
        choices=['mean', 'min'],
        default='mean',
        help='report the mean of the timed runs, or their minimum (best of '
        'N)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='one predict run per round: total from the run that also '
        'times the modules (their hooks add microseconds per call), and no '
        '_forward run where --network will not use it (two-stage models '
        'under auto, --network modules)')
    parser.add_argument(
        '--device', choices=['cpu', 'cuda'], default='cpu', help='device')
    parser.add_argument(
        '--network',
        choices=['auto', 'forward', 'modules'],
        default='auto',
        help='what "network" is: model._forward (forward), total minus the '
        'time predict spends outside nn.Module calls (modules), or auto '
        '(forward unless it fails, is a two-stage detector\'s or exceeds '
        'predict)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (torch.set_num_threads); default: torch\'s')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config, as key=value pairs')
    parser.add_argument(
        '--config-options',
        nargs='+',
        action='append',
        default=[],
        metavar='I_OR_KEY=VALUE',
        help='override settings of one config: its index in --configs '
        '(0-based) then key=value pairs, e.g. --config-options 1 '
        'model.test_cfg.score_thr=0 (repeatable)')
    args = parser.parse_args(argv)

    args.configs = ([args.config] if args.config else []) + args.configs
    if not args.configs:
        parser.error('give a config (positional) or --configs A B ...')
    per_config = [dict() for _ in args.configs]
    for index, *pairs in args.config_options:
        if not index.isdigit() or int(index) >= len(args.configs):
            parser.error(f'--config-options starts with a config index '
                         f'(0..{len(args.configs) - 1}), got {index!r}')
        for pair in pairs:
            key, sep, value = pair.partition('=')
            if not sep:
                parser.error(f'--config-options: expected key=value, got '
                             f'{pair!r}')
            per_config[int(index)][key] = DictAction._parse_iterable(value)
    args.config_options = per_config
    if args.checkpoint and len(args.checkpoint) != len(args.configs):
        parser.error(f'{len(args.checkpoint)} checkpoint(s) for '
                     f'{len(args.configs)} config(s): give one per config')
    if args.repeat < 1 or args.warmup < 0:
        parser.error('--repeat must be >= 1 and --warmup >= 0')
    if min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but CUDA is not available')
    return args


def _dataset_meta(cfg: Config) -> Optional[dict]:
    """``dataset_meta`` as the test dataset would give it (class METAINFO
    updated by the config's ``metainfo``), for models that read it."""
    dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', None)
    while isinstance(dataset_cfg, dict) and 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']  # unwrap e.g. RepeatDataset
    if not isinstance(dataset_cfg, dict) or 'type' not in dataset_cfg:
        return None
    dataset_type = dataset_cfg['type']
    dataset_class = (
        DATASETS.get(dataset_type)
        if isinstance(dataset_type, str) else dataset_type)
    meta = copy.deepcopy(getattr(dataset_class, 'METAINFO', {}))
    meta.update(dataset_cfg.get('metainfo', None) or {})
    return meta or None


def build_model(cfg: Config, checkpoint: Optional[str],
                device: str) -> torch.nn.Module:
    """Build the model of ``cfg`` in eval mode on ``device``.

    Without checkpoint the weights are those ``init_weights`` gives (with any
    ``Pretrained`` init removed); with one they are loaded from it.
    """
    init_default_scope(cfg.get('default_scope', 'mmpanoptic_plus'))
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained_init(model_cfg)
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        if hasattr(model, 'init_weights'):
            model.init_weights()
        meta = None
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        meta = load_checkpoint(
            model, checkpoint, map_location='cpu').get('meta', {})
    dataset_meta = (meta or {}).get('dataset_meta', None) or _dataset_meta(cfg)
    if dataset_meta is not None:
        model.dataset_meta = dataset_meta
    # SyncBN needs a process group; plain BN computes the same in eval mode
    model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def make_batch(height: int, width: int, seed: int = 0) -> dict:
    """A batch of one random ``uint8`` image as a test pipeline packs it.

    Returns:
        dict: ``inputs``: [uint8 tensor (3, H, W)]; ``data_samples``:
        [:obj:`DetDataSample`] with ``img_shape == ori_shape == (H, W)`` and
        ``scale_factor (1, 1)``.
    """
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(
        0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
    data_sample = DetDataSample(
        metainfo=dict(
            img_id=0,
            img_path='random.png',
            ori_shape=(height, width),
            img_shape=(height, width),
            scale_factor=(1.0, 1.0)))
    return dict(inputs=[image], data_samples=[data_sample])


class ModuleTimer:
    """Wall time spent inside ``nn.Module`` calls, outermost calls only.

    Forward pre/post hooks on every sub-module of ``model`` except the
    excluded ones (and their children) start and stop a clock when the
    call depth goes 0 -> 1 and 1 -> 0, so nested modules count once. Code
    that runs outside any module call (NMS, mask pasting, fusion of the
    panoptic map, ...) is not counted: within ``predict`` this separates the
    network from the post-processing without the model's cooperation.

    Args:
        model (nn.Module): The model; the model itself is not hooked.
        sync (Callable): Called before reading the clock
            (``torch.cuda.synchronize`` on GPU).
        exclude (Sequence[nn.Module]): Sub-modules not to count, with their
            children (the data preprocessor, timed apart).
    """

    def __init__(self, model: torch.nn.Module, sync: Callable[[], None],
                 exclude: Sequence[torch.nn.Module] = ()) -> None:
        self.sync = sync
        self.elapsed_ms = 0.0
        self._depth = 0
        self._start = 0.0
        excluded = {id(model)}
        for module in exclude:
            excluded.update(id(child) for child in module.modules())
        self._handles = []
        for module in model.modules():
            if id(module) in excluded:
                continue
            self._handles.append(
                module.register_forward_pre_hook(self._enter))
            self._handles.append(module.register_forward_hook(self._exit))

    def _enter(self, module, args) -> None:
        if self._depth == 0:
            self.sync()
            self._start = time.perf_counter()
        self._depth += 1

    def _exit(self, module, args, output) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.sync()
            self.elapsed_ms += (time.perf_counter() - self._start) * 1000.0

    def reset(self) -> None:
        self.elapsed_ms = 0.0
        self._depth = 0

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _timed(run: Callable[[dict], None], batch: dict,
           sync: Callable[[], None]) -> float:
    """Milliseconds ``run`` takes on a fresh copy of ``batch`` (copied
    before the clock starts: the preprocessor and predict write into the
    data samples)."""
    batch = copy.deepcopy(batch)
    sync()
    start = time.perf_counter()
    run(batch)
    sync()
    return (time.perf_counter() - start) * 1000.0


def time_model(model: torch.nn.Module,
               batch: dict,
               repeat: int,
               warmup: int,
               device: str,
               statistic: str = 'mean',
               quick: bool = False,
               run_forward: bool = True) -> Dict[str, Optional[float]]:
    """Milliseconds per image of preprocessing, full inference and the
    network alone, the latter measured in two ways: the mean of the timed
    runs of each measurement, or their minimum (``statistic='min'``).

    Each of ``repeat`` rounds runs, on copies of ``batch``: the data
    preprocessor alone; preprocessor + ``predict`` (total); ``predict`` with
    a :class:`ModuleTimer` (the time spent outside modules is the
    post-processing, measured directly, in the same run as its complement);
    preprocessor + ``_forward`` (the model's own network-only path).
    ``warmup`` rounds of the latter three come first, untimed.

    ``quick=True`` drops the separate ``predict`` run: total is the
    preprocessor's time plus that of the ``predict`` with the module timer,
    whose hooks add microseconds per module call (a third less work for
    large models). ``run_forward=False`` skips ``_forward`` (when the
    caller will not use it); ``network_forward_ms`` is then None.

    Returns:
        dict: ``preprocess_ms``, ``total_ms``, ``outside_modules_ms``,
        ``network_modules_ms`` (preprocessing + time in modules, from the
        same hooked run),
        ``network_forward_ms`` (None when ``_forward`` fails, with the
        reason in ``forward_error``, or was not run).
    """
    if statistic not in ('mean', 'min'):
        raise ValueError(f'statistic must be "mean" or "min", got '
                         f'{statistic!r}')
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

    def preprocess(data: dict) -> dict:
        return model.data_preprocessor(data, False)

    def predict(data: dict) -> None:
        model(**preprocess(data), mode='predict')

    def forward(data: dict) -> None:
        model(**preprocess(data), mode='tensor')

    def predict_outside_modules(data: dict) -> Tuple[float, float]:
        """The preprocessed predict's time, and its part outside
        modules."""
        data = preprocess(copy.deepcopy(data))
        timer = ModuleTimer(model, sync, exclude=[model.data_preprocessor])
        try:
            elapsed_ms = _timed(lambda d: model(**d, mode='predict'), data,
                                sync)
        finally:
            timer.remove()
        return elapsed_ms, elapsed_ms - timer.elapsed_ms

    result: Dict[str, Optional[float]] = dict(forward_error=None)
    with torch.no_grad():
        # the first _forward run doubles as a warm-up and as the check that
        # the model can run its network alone
        forward_ok = False
        if run_forward:
            try:
                _timed(forward, batch, sync)
                forward_ok = True
            except Exception as error:  # noqa: BLE001 - reported
                result['forward_error'] = f'{type(error).__name__}: {error}'
        for _ in range(max(warmup - 1, 0) if forward_ok else 0):
            _timed(forward, batch, sync)
        for _ in range(warmup):
            if not quick:
                _timed(predict, batch, sync)
            predict_outside_modules(batch)
        preprocesses, totals, outsides, forwards = [], [], [], []
        # time in modules (+ preprocessing) of the same hooked run: a
        # difference of two separate runs can go negative on a loaded
        # machine for a small model
        networks = []
        for _ in range(repeat):
            preprocesses.append(_timed(preprocess, batch, sync))
            if not quick:
                totals.append(_timed(predict, batch, sync))
            hooked_ms, outside_ms = predict_outside_modules(batch)
            if quick:
                totals.append(preprocesses[-1] + hooked_ms)
            outsides.append(outside_ms)
            networks.append(preprocesses[-1] + hooked_ms - outside_ms)
            if forward_ok:
                forwards.append(_timed(forward, batch, sync))
    num_images = len(batch['inputs'])

    def reduce(values: List[float]) -> float:
        if statistic == 'min':
            return min(values) / num_images
        return sum(values) / len(values) / num_images

    result['preprocess_ms'] = reduce(preprocesses)
    result['total_ms'] = reduce(totals)
    result['outside_modules_ms'] = reduce(outsides)
    result['network_modules_ms'] = reduce(networks)
    result['network_forward_ms'] = reduce(forwards) if forward_ok else None
    return result


def _is_two_stage(model: torch.nn.Module) -> bool:
    return all(
        getattr(model, name, None) is not None
        for name in ('rpn_head', 'roi_head'))


def choose_network_method(model: torch.nn.Module, timing: dict,
                          requested: str) -> Tuple[str, List[str]]:
    """Which measurement is "network": ``'forward'`` (``_forward``) or
    ``'modules'`` (total minus the time ``predict`` spends outside modules),
    and why.

    ``auto`` takes ``_forward`` (the model's own definition of its network)
    unless it failed, or the model is a two-stage detector (mmdet's
    ``_forward`` there runs the mask head on 100 proposals instead of the
    final detections: different work from ``predict``), or it took longer
    than the whole ``predict``.
    """
    forward_ms = timing['network_forward_ms']
    notes = []
    if requested == 'forward':
        if forward_ms is None:
            raise RuntimeError('--network forward: model._forward failed: '
                               f'{timing["forward_error"]}')
        return 'forward', notes
    if requested == 'modules':
        return 'modules', notes
    if forward_ms is None and timing['forward_error'] is not None:
        notes.append('model._forward failed '
                     f'({timing["forward_error"]}): network timed as total '
                     'minus the time predict spends outside modules')
        return 'modules', notes
    if _is_two_stage(model):
        notes.append('two-stage model: mmdet\'s _forward runs the mask head '
                     'on up to 100 RPN proposals where predict runs it on '
                     'the final detections; network timed as total minus '
                     'the time predict spends outside modules (RPN/RoI NMS, '
                     'mask pasting, semantic upsampling and fusion count '
                     'as post-processing)')
        return 'modules', notes
    if forward_ms is None:  # not run: the caller did not need it
        return 'modules', notes
    if forward_ms > timing['total_ms']:
        notes.append('model._forward took longer than predict: network timed '
                     'as total minus the time predict spends outside modules')
        return 'modules', notes
    return 'forward', notes


def benchmark_config(config: str,
                     checkpoint: Optional[str],
                     args: argparse.Namespace,
                     options: Optional[dict] = None) -> dict:
    """Build and time one config (``options``: its own overrides, applied
    after ``args.cfg_options``); returns its JSON record."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if options:
        cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = build_model(cfg, checkpoint, args.device)
    height, width = args.shape
    # --quick: no _forward where the network method will not use it
    run_forward = not args.quick or args.network == 'forward' or (
        args.network == 'auto' and not _is_two_stage(model))
    timing = time_model(model, make_batch(height, width), args.repeat,
                        args.warmup, args.device, args.statistic, args.quick,
                        run_forward)
    method, notes = choose_network_method(model, timing, args.network)
    if checkpoint is None:
        notes.append('random weights: the post-processing time depends on '
                     'how many candidates pass the score thresholds, which '
                     'differs with trained weights')

    def rounded(value: Optional[float]) -> Optional[float]:
        return None if value is None else round(value, 3)

    # rounded first, so that the JSON satisfies total = network + postprocess
    total = rounded(timing['total_ms'])
    network_forward = rounded(timing['network_forward_ms'])
    # total minus the time predict spends outside modules, both from the
    # hooked run (capped by the separately timed total)
    network_modules = min(total, rounded(timing['network_modules_ms']))
    network = network_forward if method == 'forward' else network_modules
    postprocess = round(total - network, 3)
    if postprocess < 0:
        notes.append('network > total: the difference is run-to-run noise '
                     'or work that predict skips, not post-processing')
    return dict(
        config=config,
        shape=[height, width],
        device=args.device,
        total_ms=total,
        network_ms=network,
        postprocess_ms=postprocess,
        preprocess_ms=rounded(timing['preprocess_ms']),
        fps=round(1000.0 / total, 3),
        network_method=method,
        network_forward_ms=network_forward,
        network_modules_ms=network_modules,
        repeat=args.repeat,
        warmup=args.warmup,
        statistic=args.statistic,
        quick=args.quick,
        threads=torch.get_num_threads(),
        notes=notes)


def _ms(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.2f} ms'


def format_record(record: dict) -> str:
    """Human-readable block for one config."""

    def row(name: str, value: Optional[float]) -> str:
        if value is None:
            return f'  {name:<12} {"n/a":>12} {"n/a":>10}'
        fps = f'{1000.0 / value:>10.2f}' if value > 0 else f'{"n/a":>10}'
        return f'  {name:<12} {value:>12.2f} {fps}'

    height, width = record['shape']
    lines = [
        f'{record["config"]}  shape {height}x{width}  device '
        f'{record["device"]}  threads {record["threads"]}  repeat '
        f'{record["repeat"]} ({record["statistic"]})  warmup '
        f'{record["warmup"]}',
        f'  {"stage":<12} {"ms/img":>12} {"FPS":>10}',
        row('total', record['total_ms']),
        row('network', record['network_ms']),
        row('postprocess', record['postprocess_ms']),
        row('(preprocess)', record['preprocess_ms']),
        f'  network = {record["network_method"]}; network by _forward: '
        f'{_ms(record["network_forward_ms"])}, by total - time outside '
        f'modules: {_ms(record["network_modules_ms"])}',
    ]
    lines += [f'  note: {note}' for note in record['notes']]
    return '\n'.join(lines)


def ratio_table(records: List[dict]) -> List[dict]:
    """Ratios of each config's times to the first config's."""
    reference = records[0]

    def ratio(record: dict, key: str) -> Optional[float]:
        if record[key] is None or not reference[key]:
            return None
        return round(record[key] / reference[key], 3)

    return [
        dict(
            config=record['config'],
            total=ratio(record, 'total_ms'),
            network=ratio(record, 'network_ms'),
            postprocess=ratio(record, 'postprocess_ms')) for record in records
    ]


def format_ratios(ratios: List[dict]) -> str:

    def cell(value: Optional[float]) -> str:
        return f'{"n/a":>12}' if value is None else f'{value:>12.3f}'

    lines = [
        f'ratios to {ratios[0]["config"]}:',
        f'  {"config":<50} {"total":>12} {"network":>12} {"postprocess":>12}'
    ]
    for item in ratios:
        lines.append(f'  {item["config"]:<50} {cell(item["total"])} '
                     f'{cell(item["network"])} {cell(item["postprocess"])}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    # keep the output to the figures: mmengine logs init info at INFO level
    MMLogger.get_instance('benchmark', log_level='WARNING')
    register_all_modules(init_default_scope=False)
    default_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        checkpoints = args.checkpoint or [None] * len(args.configs)
        records = []
        for config, checkpoint, options in zip(args.configs, checkpoints,
                                               args.config_options):
            record = benchmark_config(config, checkpoint, args, options)
            if options:
                record['config_options'] = options
            print(format_record(record), flush=True)
            records.append(record)
    finally:
        # main() is also called in-process (tests): leave torch as found
        torch.set_num_threads(default_threads)
    if len(records) == 1:
        summary = records[0]
    else:
        ratios = ratio_table(records)
        print(format_ratios(ratios))
        summary = dict(results=records, ratios=ratios)
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == '__main__':
    main()
