# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Write the synthetic panoptic set (COCO panoptic format).

    python tools/dataset_converters/make_synthetic.py --out data/synthetic \
        --num-train 200 --num-val 50 --size 256 256 --seed 0

The generator is :func:`mmpanoptic_plus.datasets.synthetic.
generate_synthetic_panoptic`; this script is its command line.
"""
import argparse
import os.path as osp
import sys
import time

try:
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..',
                                            '..')))
    from mmpanoptic_plus.datasets.synthetic import generate_synthetic_panoptic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic panoptic segmentation set')
    parser.add_argument('--out', required=True, help='output root folder')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=(256, 256),
        metavar=('H', 'W'),
        help='image height and width')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    ann_files = generate_synthetic_panoptic(
        args.out,
        args.num_train,
        args.num_val,
        size=tuple(args.size),
        seed=args.seed)
    print(f'wrote {args.num_train} train and {args.num_val} val images to '
          f'{args.out} in {time.perf_counter() - start:.1f}s '
          f'({", ".join(ann_files.values())})')


if __name__ == '__main__':
    main()
