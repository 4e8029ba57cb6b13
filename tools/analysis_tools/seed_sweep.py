# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Train configs with several seeds and report PQ with its spread.

    python tools/analysis_tools/seed_sweep.py CONFIG [CONFIG ...]
        --seeds 0 1 2 --val-dir DIR --work-root DIR [--max-iters N]
        [--cfg-options k=v ...] [--skip-train] [--tag NAME] [--resume]
        [--collect] [--keep-val] [--in-process] [--out PREFIX]

For every config and every seed: train with ``randomness.seed=SEED`` into
``WORK_ROOT/<config folder>_<config name>/seed<SEED>`` (``tools/train.py``'s
config handling: ``build_train_config``), then evaluate the last checkpoint
(``last_checkpoint``) on the val set in ``--val-dir`` (``tools/test.py``'s
``build_test_config`` with ``test_dataloader.dataset.data_root=DIR``; the
config's test pipeline and ``test_evaluator``). A fresh val set that no
training saw, e.g. for the synthetic configs::

    python tools/dataset_converters/make_synthetic.py \\
        --out data/synthetic_eval_s1201 --num-train 0 --num-val 200 \\
        --seed 1201

Each (config, seed) runs in a subprocess of its own (this script with
``--in-process`` and that one seed; its output goes to ``seed_sweep.log``
in the run's work dir), so that a failed run does not end the sweep and
memory is given back; ``--in-process`` runs everything in this process.
``--skip-train`` re-evaluates the existing work dirs (its log is then
``seed_sweep_eval[_NAME].log``; with ``--tag NAME`` its records are kept
apart too, ``eval_<val dir>_NAME.json``: evaluations with other inference
settings). ``--resume`` continues runs cut short from their last
checkpoints; ``--collect`` only reports the records earlier runs left
(e.g. seeds run at different times). ``--max-iters N`` sets
``train_cfg.max_iters`` only (schedules keep their own ends). The in-training
validation is switched off (the measurement is the evaluation on
``--val-dir``) unless ``--keep-val``. ``--cfg-options`` apply to training and
evaluation alike; ``{seed}`` in a value becomes the run's seed, e.g. a second
training stage of every seed's first-stage run::

    --cfg-options load_from=WORK_ROOT/<run name>/seed{seed}/iter_2000.pth

Outputs: ``PREFIX.md`` (default ``WORK_ROOT/seed_sweep``): per config and
metric (PQ, PQ_th, PQ_st) the value of each seed, the mean, the sample
standard deviation (n - 1) and the min-max range; then every config against
the first one: the difference of the means and whether it is larger than
the larger of the two standard deviations and than the spread of the runs
(the two min-max ranges do not overlap). ``PREFIX.json`` holds the same
figures unrounded, every metric of every run and the failures. Every run
also leaves ``eval_<val dir name>.json`` (its metrics and checkpoint) in its
work dir. Exit status 1 when a run failed (the others are still reported).
"""
import argparse
import copy
import datetime
import importlib.util
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
import traceback
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

#: The metrics the table reports, in this order.
REPORTED_METRICS = ('PQ', 'PQ_th', 'PQ_st')

TOOLS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train configs with several seeds, evaluate each run on '
        'a fresh val set, report mean and spread of PQ')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--seeds', type=int, nargs='+', required=True,
        help='training seeds (randomness.seed)')
    parser.add_argument(
        '--val-dir', required=True,
        help='root of the val set to evaluate on (becomes '
        'test_dataloader.dataset.data_root)')
    parser.add_argument(
        '--work-root', required=True,
        help='the runs go to WORK_ROOT/<config folder>_<config name>/'
        'seed<SEED>')
    parser.add_argument(
        '--max-iters', type=int, default=None,
        help='train_cfg.max_iters (default: the config\'s)')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='config overrides for training and evaluation, as in '
        'tools/train.py')
    parser.add_argument(
        '--skip-train', action='store_true',
        help='only evaluate the existing work dirs')
    parser.add_argument(
        '--collect', action='store_true',
        help='train and evaluate nothing: report the records that earlier '
        'runs left in the work dirs (runs made at different times)')
    parser.add_argument(
        '--tag', default=None,
        help='name of this evaluation: its records are eval_<val dir>_<TAG>'
        '.json, so that runs evaluated with other settings (e.g. '
        '--skip-train --tag seeds-off --cfg-options '
        'model.test_cfg.use_seeds=False) keep their first records')
    parser.add_argument(
        '--resume', action='store_true',
        help='continue each run from the last checkpoint in its work dir '
        '(a run cut short, e.g. by a stopped session); a run without one '
        'starts from scratch')
    parser.add_argument(
        '--keep-val', action='store_true',
        help='keep the config\'s validation during training')
    parser.add_argument(
        '--in-process', action='store_true',
        help='run everything in this process (default: a subprocess per '
        'config and seed)')
    parser.add_argument(
        '--out', default=None,
        help='prefix of the .md and .json outputs (default '
        'WORK_ROOT/seed_sweep)')
    args = parser.parse_args(argv)

    for config in args.configs:
        if not osp.isfile(config):
            parser.error(f'config file not found: {config}')
    if args.tag is not None and not re.fullmatch(r'[\w.-]+', args.tag):
        parser.error(f'--tag must be letters, digits, _ . or -: {args.tag}')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a seed: {args.seeds}')
    if not osp.isdir(args.val_dir):
        parser.error(f'--val-dir is not a directory: {args.val_dir}')
    if args.max_iters is not None and args.max_iters < 1:
        parser.error(f'--max-iters must be >= 1, got {args.max_iters}')
    try:
        args.cfg_dict = parse_cfg_options(args.cfg_options)
    except ValueError as error:
        parser.error(str(error))
    names = [run_name(config) for config in args.configs]
    if len(set(names)) != len(names):
        parser.error(f'two configs share a work dir name: {names}')
    for config in args.configs:
        missing = missing_val_annotations(config, args.val_dir,
                                          args.cfg_dict)
        if missing:
            parser.error(f'{config}: the val set has no {missing} (is '
                         f'--val-dir {args.val_dir} the right root?)')
    args.out = args.out or osp.join(args.work_root, 'seed_sweep')
    return args


def parse_cfg_options(pairs: Sequence[str]) -> Dict:
    """``key=value`` strings to a dict, values parsed as ``DictAction``
    does (numbers, booleans, None, lists and tuples)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise ValueError(f'--cfg-options: expected key=value, got '
                             f'{pair!r}')
        options[key] = DictAction._parse_iterable(value)
    return options


def options_for_seed(cfg_options: Dict, seed: int) -> Dict:
    """A copy of ``cfg_options`` with ``{seed}`` in its string values
    (also inside lists and tuples) replaced by ``seed``."""

    def substitute(value):
        if isinstance(value, str):
            return value.replace('{seed}', str(seed))
        if isinstance(value, (list, tuple)):
            return type(value)(substitute(item) for item in value)
        return copy.deepcopy(value)

    return {key: substitute(value) for key, value in cfg_options.items()}


def run_name(config: str) -> str:
    """Work dir name of a config: ``<folder>_<name>``, e.g.
    ``pisr_pdl_r18_synthetic`` (two folders may hold the same name)."""
    folder = osp.basename(osp.dirname(osp.abspath(config)))
    return f'{folder}_{osp.splitext(osp.basename(config))[0]}'


def run_dir(work_root: str, config: str, seed: int) -> str:
    return osp.join(work_root, run_name(config), f'seed{seed}')


def missing_val_annotations(config: str, val_dir: str,
                            cfg_options: Dict) -> Optional[str]:
    """The config's test annotation file under ``val_dir`` when it does not
    exist (None when it does or the config names none)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options)
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    ann_file = dataset.get('ann_file')
    if not ann_file or osp.isfile(osp.join(val_dir, ann_file)):
        return None
    return ann_file


def eval_record_path(work_dir: str, val_dir: str,
                     tag: Optional[str] = None) -> str:
    """``eval_<val dir name>[_<tag>].json`` in the run's work dir."""
    name = osp.basename(osp.normpath(val_dir))
    suffix = f'_{tag}' if tag else ''
    return osp.join(work_dir, f'eval_{name}{suffix}.json')


def _load_tool(relative_path: str):
    """A script of ``tools/`` as a module (they are not a package)."""
    path = osp.join(TOOLS_DIR, relative_path)
    name = 'seed_sweep_' + osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _experiment_name(config: str, seed: int, phase: str) -> str:
    """Unique per runner: mmengine keys its logger and visualizer
    instances by it, and several runners may share this process."""
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S_%f')
    return f'{run_name(config)}_seed{seed}_{phase}_{stamp}'


def train_one(config: str, seed: int, work_dir: str,
              max_iters: Optional[int], cfg_options: Dict,
              keep_val: bool, resume: bool = False) -> None:
    """Train one config with one seed, as ``tools/train.py`` would
    (``resume``: as its ``--resume`` without a path)."""
    from mmengine.runner import Runner
    train_tool = _load_tool('train.py')
    options = options_for_seed(cfg_options, seed)
    options['randomness.seed'] = seed
    if max_iters is not None:
        options['train_cfg.max_iters'] = max_iters
    if not keep_val:
        options.update(val_dataloader=None, val_cfg=None, val_evaluator=None)
    cfg = train_tool.build_train_config(
        argparse.Namespace(
            config=config, work_dir=work_dir, amp=False,
            auto_scale_lr=False, resume='auto' if resume else None,
            cfg_options=options,
            launcher='none'))
    cfg.experiment_name = _experiment_name(config, seed, 'train')
    Runner.from_cfg(cfg).train()


def evaluate_one(config: str, seed: int, work_dir: str, val_dir: str,
                 cfg_options: Dict, tag: Optional[str] = None) -> Dict:
    """Evaluate a run's last checkpoint on ``val_dir`` (``tools/test.py``'s
    config handling) and write its record next to it (under ``tag``, if
    given: an evaluation with other settings keeps its own record).

    Returns:
        dict: ``config``, ``seed``, ``work_dir``, ``checkpoint``,
        ``val_dir``, ``tag``, ``cfg_options`` and ``metrics`` (the
        evaluator's names without their prefix, e.g. ``PQ``, ``PQ_th``).
    """
    from mmengine.runner import Runner
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise FileNotFoundError(f'no {pointer}: was {config} trained with '
                                f'seed {seed} under {work_dir}?')
    with open(pointer) as file:
        checkpoint = file.read().strip()
    test_tool = _load_tool('test.py')
    seed_options = options_for_seed(cfg_options, seed)
    options = copy.deepcopy(seed_options)
    options['test_dataloader.dataset.data_root'] = \
        osp.join(val_dir, '')
    cfg = test_tool.build_test_config(
        argparse.Namespace(
            config=config, checkpoint=checkpoint,
            work_dir=osp.join(work_dir, 'eval'), out=None, show=False,
            show_dir=None, wait_time=0, cfg_options=options,
            launcher='none', tta=False))
    cfg.experiment_name = _experiment_name(config, seed, 'eval')
    metrics = Runner.from_cfg(cfg).test()
    record = dict(
        config=config, seed=seed, work_dir=work_dir, checkpoint=checkpoint,
        val_dir=val_dir, tag=tag, cfg_options=seed_options,
        metrics={key.split('/')[-1]: float(value)
                 for key, value in metrics.items()})
    with open(eval_record_path(work_dir, val_dir, tag), 'w') as file:
        json.dump(record, file, indent=1)
    return record


def run_one(args: argparse.Namespace, config: str, seed: int) -> Dict:
    """Train (unless ``--skip-train``) and evaluate one run, here."""
    work_dir = run_dir(args.work_root, config, seed)
    if not args.skip_train:
        train_one(config, seed, work_dir, args.max_iters, args.cfg_dict,
                  args.keep_val, args.resume)
    return evaluate_one(config, seed, work_dir, args.val_dir, args.cfg_dict,
                        args.tag)


def collect_one(args: argparse.Namespace, config: str, seed: int) -> Dict:
    """The evaluation record an earlier run left in its work dir."""
    work_dir = run_dir(args.work_root, config, seed)
    path = eval_record_path(work_dir, args.val_dir, args.tag)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no {path}: run {config} seed {seed} on '
                                f'{args.val_dir} first')
    with open(path) as file:
        return json.load(file)


def run_in_subprocess(args: argparse.Namespace, config: str,
                      seed: int) -> Dict:
    """``run_one`` in a subprocess (this script, ``--in-process``, one
    seed); its output goes to ``seed_sweep.log`` in the run's work dir
    (``seed_sweep_eval[_TAG].log`` for an evaluation alone)."""
    work_dir = run_dir(args.work_root, config, seed)
    os.makedirs(work_dir, exist_ok=True)
    record_path = eval_record_path(work_dir, args.val_dir, args.tag)
    if osp.isfile(record_path):
        os.remove(record_path)  # a stale record must not pass for this run
    command = [
        sys.executable,
        osp.abspath(__file__), config, '--seeds',
        str(seed), '--val-dir', args.val_dir, '--work-root',
        args.work_root, '--in-process', '--out',
        osp.join(work_dir, 'seed_sweep_run')
    ]
    if args.max_iters is not None:
        command += ['--max-iters', str(args.max_iters)]
    if args.tag:
        command += ['--tag', args.tag]
    if args.cfg_options:
        command += ['--cfg-options'] + list(args.cfg_options)
    command += [
        flag for flag, on in (('--skip-train', args.skip_train),
                              ('--keep-val', args.keep_val),
                              ('--resume', args.resume)) if on
    ]
    # an evaluation alone must not overwrite the training's log
    log_name = 'seed_sweep.log' if not args.skip_train else \
        f'seed_sweep_eval{"_" + args.tag if args.tag else ""}.log'
    log_path = osp.join(work_dir, log_name)
    # a resumed run keeps the log of its first part
    with open(log_path, 'a' if args.resume else 'w') as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    if status != 0 or not osp.isfile(record_path):
        raise RuntimeError(f'exit status {status}; see {log_path}')
    with open(record_path) as file:
        return json.load(file)


def aggregate(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean, sample standard deviation (n - 1 in the denominator; None for
    fewer than two values), min and max.

    Args:
        values (Sequence[float]): One metric of n >= 1 runs.

    Returns:
        dict: ``n``, ``mean``, ``std``, ``min``, ``max``.
    """
    if not values:
        raise ValueError('no values to aggregate')
    count = len(values)
    mean = math.fsum(values) / count
    std = (math.sqrt(math.fsum((v - mean)**2 for v in values) / (count - 1))
           if count > 1 else None)
    return dict(n=count, mean=mean, std=std, min=min(values),
                max=max(values))


def summarize(records: Sequence[Dict], configs: Sequence[str],
              metrics: Sequence[str] = REPORTED_METRICS) -> List[Dict]:
    """Per config: the runs' values of each metric by seed, and their
    :func:`aggregate` (None when no run of the config succeeded)."""
    summary = []
    for config in configs:
        runs = sorted((r for r in records if r['config'] == config),
                      key=lambda r: r['seed'])
        entry = dict(config=config, seeds=[r['seed'] for r in runs],
                     metrics={})
        for metric in metrics:
            values = [r['metrics'][metric] for r in runs]
            entry['metrics'][metric] = dict(
                values=values, **(aggregate(values) if values else {}))
        summary.append(entry)
    return summary


def compare_to_first(summary: Sequence[Dict]) -> List[Dict]:
    """Every config's difference of means to the first config, per metric,
    and whether it exceeds the spread: ``beyond_std`` (larger than the
    larger of the two sample standard deviations) and ``beyond_range``
    (the two min-max ranges do not overlap). None where a side lacks
    runs (or, for ``beyond_std``, has fewer than two)."""
    reference = summary[0]
    comparisons = []
    for entry in summary[1:]:
        row = dict(config=entry['config'], reference=reference['config'],
                   metrics={})
        for metric, stats in entry['metrics'].items():
            ref = reference['metrics'][metric]
            if 'mean' not in stats or 'mean' not in ref:
                row['metrics'][metric] = dict(
                    difference=None, beyond_std=None, beyond_range=None)
                continue
            difference = stats['mean'] - ref['mean']
            stds = (stats['std'], ref['std'])
            row['metrics'][metric] = dict(
                difference=difference,
                beyond_std=(None if None in stds else
                            abs(difference) > max(stds)),
                beyond_range=(stats['min'] > ref['max']
                              or stats['max'] < ref['min']))
        comparisons.append(row)
    return comparisons


def _fmt(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return '-'
    return f'{value:+.1f}' if signed else f'{value:.1f}'


def _yes_no(flag: Optional[bool]) -> str:
    return '-' if flag is None else ('yes' if flag else 'no')


def markdown_report(summary: Sequence[Dict], seeds: Sequence[int],
                    failures: Sequence[Dict], command: str) -> str:
    """The Markdown tables (one decimal)."""
    lines = [
        '```shell', command, '```', '',
        '| config | metric | ' + ' | '.join(f'seed {s}' for s in seeds) +
        ' | mean | std | min-max |',
        '| --- | --- | ' + ' | '.join('---' for _ in seeds) +
        ' | --- | --- | --- |'
    ]
    for entry in summary:
        for metric, stats in entry['metrics'].items():
            by_seed = dict(zip(entry['seeds'], stats['values']))
            cells = [_fmt(by_seed.get(seed)) for seed in seeds]
            spread = (f"{_fmt(stats['min'])}-{_fmt(stats['max'])}"
                      if 'min' in stats else '-')
            lines.append(f"| {entry['config']} | {metric} | " +
                         ' | '.join(cells) +
                         f" | {_fmt(stats.get('mean'))} | "
                         f"{_fmt(stats.get('std'))} | {spread} |")
    comparisons = compare_to_first(summary)
    if comparisons:
        lines += [
            '', f"Against {summary[0]['config']} (difference of the means; "
            'beyond std: larger than the larger sample std of the two; '
            'beyond range: the min-max ranges do not overlap):', '',
            '| config | metric | difference | beyond std | beyond range |',
            '| --- | --- | --- | --- | --- |'
        ]
        for row in comparisons:
            for metric, stats in row['metrics'].items():
                lines.append(
                    f"| {row['config']} | {metric} | "
                    f"{_fmt(stats['difference'], signed=True)} | "
                    f"{_yes_no(stats['beyond_std'])} | "
                    f"{_yes_no(stats['beyond_range'])} |")
    if failures:
        lines += ['', 'Failed runs:', '']
        lines += [
            f"- {f['config']} seed {f['seed']}: {f['error']}"
            for f in failures
        ]
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.in_process:
        from mmpanoptic_plus.utils import register_all_modules

        # the runners set the default scope from the configs
        register_all_modules(init_default_scope=False)
    runs = [(config, seed) for config in args.configs for seed in args.seeds]
    records, failures = [], []
    progress = ProgressBar(len(runs))
    for config, seed in runs:
        try:
            if args.collect:
                record = collect_one(args, config, seed)
            elif args.in_process:
                record = run_one(args, config, seed)
            else:
                record = run_in_subprocess(args, config, seed)
            records.append(record)
        except Exception as error:  # report it, go on with the other runs
            if args.in_process and not args.collect:
                traceback.print_exc()
            failures.append(dict(config=config, seed=seed, error=str(error)))
            print(f'\n{config} seed {seed} failed: {error}', file=sys.stderr)
        progress.update()
    print()
    summary = summarize(records, args.configs)
    command = ' '.join(['python', 'tools/analysis_tools/seed_sweep.py'] +
                       list(argv if argv is not None else sys.argv[1:]))
    report = markdown_report(summary, args.seeds, failures, command)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out + '.md', 'w') as file:
        file.write(report)
    with open(args.out + '.json', 'w') as file:
        json.dump(
            dict(command=command, seeds=args.seeds, val_dir=args.val_dir,
                 summary=summary, comparisons=compare_to_first(summary),
                 runs=records, failures=failures), file, indent=1)
    print(report)
    print(f'written: {args.out}.md, {args.out}.json')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
