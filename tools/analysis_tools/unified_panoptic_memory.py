# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Peak CPU memory of Unified's panoptic submodule (dynamic potential +
dense instance affinity, Eq. 1-4) at given input sizes, each in a fresh
process:

    python tools/analysis_tools/unified_panoptic_memory.py \
        --shapes 800 1344 1024 2048 --detections 100

V (N_th + N_st = 133 COCO classes), Q's two embeddings (C = 128), D pasted
28x28 masks, all at stride 4, are allocated first; the peak resident set
size (``ru_maxrss``) added by computing P (forward, and forward + backward
with ``--backward``) is reported next to the size of the HW x HW affinity
matrix that Eq. 3 avoids. One JSON line per shape.
"""
import argparse
import json
import resource
import subprocess
import sys


def measure(height: int, width: int, detections: int, backward: bool,
            threads: int) -> dict:
    import torch

    from mmpanoptic_plus.models.heads import (UnifiedAffinityHead,
                                              UnifiedDynamicPotentialHead)
    from mmpanoptic_plus.models.layers.paste_masks import \
        paste_masks_in_grid
    from mmpanoptic_plus.utils import register_all_modules
    register_all_modules()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    stride, channels, things, stuff = 4, 128, 80, 53
    h, w = height // stride, width // stride
    head = UnifiedAffinityHead(
        extractor=dict(
            type='UPSNetSemanticHead',
            num_things_classes=0,
            num_stuff_classes=0,
            in_channels=8,
            feat_channels=8,
            conv_cfg=None,
            norm_cfg=None),
        channels=channels)
    potential_head = UnifiedDynamicPotentialHead(things, stuff, 'B', stride)
    sem = torch.rand(things + stuff, h, w).softmax(0).requires_grad_(backward)
    phi0 = torch.randn(channels, h, w, requires_grad=backward)
    phi1 = torch.randn(channels, h, w, requires_grad=backward)
    xy = torch.rand(detections, 2) * torch.tensor([width, height]) * 0.8
    wh = torch.rand(detections, 2) * torch.tensor([width, height]) * 0.3 + 8
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(detections, requires_grad=backward)
    labels = torch.randint(0, things, (detections, ))
    mask_probs = torch.rand(detections, 28, 28, requires_grad=backward)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    masks = paste_masks_in_grid(mask_probs, boxes, (h, w), stride)
    psi = potential_head(sem, boxes, scores, labels, masks)
    p = head.apply_affinity(psi, phi0, phi1)
    if backward:
        p.sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(
        shape=[height, width],
        grid=[h, w],
        pixels=h * w,
        detections=detections,
        channels_P=int(p.shape[0]),
        backward=backward,
        peak_added_mib=round((peak - base) / 1024, 1),
        P_mib=round(p.numel() * 4 / 2**20, 1),
        naive_affinity_matrix_gib=round((h * w)**2 * 4 / 2**30, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', type=int, nargs='+',
                        default=[800, 1344, 1024, 2048])
    parser.add_argument('--detections', type=int, default=100)
    parser.add_argument('--backward', action='store_true')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--one', type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.detections, args.backward,
                                 args.threads)))
        return
    shapes = list(zip(args.shapes[::2], args.shapes[1::2]))
    for height, width in shapes:
        cmd = [sys.executable, __file__, '--one', str(height), str(width),
               '--detections', str(args.detections), '--threads',
               str(args.threads)] + (['--backward'] if args.backward else [])
        print(subprocess.run(cmd, capture_output=True, text=True,
                             check=True).stdout.strip())


if __name__ == '__main__':
    main()
