# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic segmentation of images with a config (and its weights).

    python demo/image_demo.py INPUT CONFIG [--weights W] [--out-dir D]
        [--device cpu] [--score-thr T]

INPUT is an image file, a folder (its images, not recursive) or a glob
pattern (quote it). For each image ``<stem>`` it writes:

- ``D/vis/<stem>.png``: the panoptic segmentation drawn over the image;
- ``D/preds/<stem>.png``: COCO panoptic id PNG (id = R + 256 G + 256^2 B,
  0 = void);
- ``D/preds/<stem>.json``: that PNG's ``segments_info`` (id, category
  name/label, isthing, area, bbox) with the image's path and size.

An image that cannot be read is reported and skipped; the exit code is 0
when at least one image was processed, 1 otherwise.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence

import mmcv

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp', '.ppm', '.pgm', '.jp2')
GLOB_CHARS = ('*', '?', '[')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Panoptic segmentation of images: writes an overlay and '
        'COCO panoptic PNG/JSON per image.')
    parser.add_argument(
        'input', help='an image file, a folder of images or a glob pattern')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--weights',
        help='checkpoint file; without it the model is randomly initialised')
    parser.add_argument(
        '--out-dir', default='outputs/demo', help='output folder')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=None,
        help='score threshold of thing instances; sets the model\'s '
        'test_cfg.rcnn.score_thr (two-stage models such as Panoptic FPN) '
        'or test_cfg.score_thr (single-stage ones such as RealTimePanoptic) '
        'and the visualizer\'s threshold')
    return parser.parse_args(argv)


def collect_inputs(input_spec: str) -> List[str]:
    """The image files named by a path, a folder or a glob pattern.

    Args:
        input_spec (str): File, folder or glob pattern.

    Returns:
        list[str]: Files, sorted. A single file is returned even if its
        extension is unusual (it will fail later with a clear message if it
        is not an image); a folder or pattern yields image extensions only.

    Raises:
        FileNotFoundError: Nothing exists at ``input_spec``.
    """
    if osp.isdir(input_spec):
        files = [
            osp.join(input_spec, name) for name in os.listdir(input_spec)
            if name.lower().endswith(IMAGE_EXTENSIONS)
            and osp.isfile(osp.join(input_spec, name))
        ]
        return sorted(files)
    if osp.exists(input_spec):
        return [input_spec]
    if any(char in input_spec for char in GLOB_CHARS):
        return sorted(
            path for path in glob.glob(input_spec)
            if osp.isfile(path) and path.lower().endswith(IMAGE_EXTENSIONS))
    raise FileNotFoundError(f'No such file or folder: {input_spec}')


def unique_stems(paths: Sequence[str]) -> List[str]:
    """Output name of each input: its stem, with the extension appended
    (``a_jpg``) when two inputs share a stem."""
    stems = [osp.splitext(osp.basename(path))[0] for path in paths]
    names, used = [], set()
    for path, stem in zip(paths, stems):
        name = stem
        if stems.count(stem) > 1:
            name = f'{stem}_{osp.splitext(path)[1].lstrip(".").lower()}'
        base, suffix = name, 1
        while name in used:  # same stem and extension in a glob over folders
            name = f'{base}_{suffix}'
            suffix += 1
        used.add(name)
        names.append(name)
    return names


def warn_random_weights() -> None:
    banner = '!' * 78
    message = ('No --weights given: the model is RANDOMLY INITIALISED and '
               'its predictions are meaningless. Pass --weights CHECKPOINT '
               'for real results.')
    print(f'{banner}\nWARNING: {message}\n{banner}', file=sys.stderr)
    warnings.warn(message)


def process_image(path: str, stem: str, model, visualizer, pipeline,
                  out_dir: str, score_thr: float) -> Dict:
    """Segment one image and write its three outputs.

    Returns:
        dict: The JSON record written to ``preds/<stem>.json``.
    """
    from mmpanoptic_plus.apis import (inference_panoptic, load_image,
                                      panoptic_to_coco_segments)

    image_bgr = load_image(path)
    data_sample = inference_panoptic(model, image_bgr, pipeline)
    data_sample.set_metainfo(dict(img_path=path))
    pan_seg = data_sample.pred_panoptic_seg.sem_seg

    meta = model.dataset_meta
    classes = list(meta['classes'])
    thing_classes = list(meta.get('thing_classes', []))
    # dataset category ids (e.g. COCO's) when the checkpoint recorded them
    id_png, segments_info = panoptic_to_coco_segments(
        pan_seg, classes, thing_classes, category_ids=meta.get('cat_ids'))
    height, width = id_png.shape[:2]
    png_name = f'{stem}.png'
    # cv2 writes BGR: reverse so that the file holds R + 256 G + 256^2 B
    mmcv.imwrite(id_png[..., ::-1], osp.join(out_dir, 'preds', png_name))
    record = dict(
        file_name=png_name,
        image_path=osp.abspath(path),
        height=height,
        width=width,
        segments_info=segments_info)
    with open(osp.join(out_dir, 'preds', f'{stem}.json'), 'w') as file:
        json.dump(record, file, indent=1)

    visualizer.add_datasample(
        stem,
        image_bgr[..., ::-1],
        data_sample,
        draw_gt=False,
        pred_score_thr=score_thr,
        out_file=osp.join(out_dir, 'vis', png_name))
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        inputs = collect_inputs(args.input)
    except FileNotFoundError as error:
        print(f'ERROR: {error}', file=sys.stderr)
        return 1
    if not inputs:
        print(f'ERROR: no image files in {args.input}', file=sys.stderr)
        return 1

    # imported late: --help and argument errors stay fast
    from mmengine.config import Config

    from mmpanoptic_plus.apis import (build_inference_pipeline,
                                      init_panoptic_model)
    from mmpanoptic_plus.visualization import PanopticLocalVisualizer

    if not osp.isfile(args.config):
        print(f'ERROR: config file not found: {args.config}', file=sys.stderr)
        return 1
    if args.weights is None:
        warn_random_weights()
    cfg_options = None
    score_thr = 0.3
    if args.score_thr is not None:
        score_thr = args.score_thr
        config = Config.fromfile(args.config)
        test_cfg = config.model.get('test_cfg', None) or {}
        if test_cfg.get('rcnn') is not None:
            cfg_options = {'model.test_cfg.rcnn.score_thr': args.score_thr}
        elif 'score_thr' in test_cfg:  # single-stage, e.g. RealTimePanoptic
            cfg_options = {'model.test_cfg.score_thr': args.score_thr}
        else:
            warnings.warn('--score-thr: this model has no '
                          'test_cfg.rcnn.score_thr; only the visualizer uses '
                          'it')
    try:
        model = init_panoptic_model(
            args.config, args.weights, device=args.device,
            cfg_options=cfg_options)
    except (FileNotFoundError, ValueError) as error:
        print(f'ERROR: {error}', file=sys.stderr)
        return 1
    pipeline = build_inference_pipeline(model.cfg)
    visualizer = PanopticLocalVisualizer(name='image_demo')
    visualizer.dataset_meta = model.dataset_meta

    os.makedirs(osp.join(args.out_dir, 'vis'), exist_ok=True)
    os.makedirs(osp.join(args.out_dir, 'preds'), exist_ok=True)
    num_done = 0
    for path, stem in zip(inputs, unique_stems(inputs)):
        try:
            record = process_image(path, stem, model, visualizer, pipeline,
                                   args.out_dir, score_thr)
        except (OSError, ValueError) as error:
            # unreadable/corrupt input or an unwritable output: report it and
            # go on with the other images
            print(f'ERROR: {path}: {error}', file=sys.stderr)
            continue
        num_done += 1
        print(f'{path}: {len(record["segments_info"])} segments -> '
              f'{osp.join(args.out_dir, "vis", stem + ".png")}')
    print(f'Processed {num_done}/{len(inputs)} images; results in '
          f'{osp.abspath(args.out_dir)} (vis/, preds/)')
    return 0 if num_done else 1


if __name__ == '__main__':
    sys.exit(main())
