# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""Panoptic-DeepLab post-processing on hand-built heatmaps, offsets and
semantic maps, and against naive per-pixel / per-segment loops."""
import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET as MMDET_OFFSET

from mmpanoptic_plus.models.postprocess import (find_instance_centers,
                                                group_pixels,
                                                merge_semantic_and_instance,
                                                panoptic_deeplab_postprocess)
from mmpanoptic_plus.structures import INSTANCE_OFFSET

NUM_THINGS, NUM_CLASSES = 2, 4  # labels 0, 1 things; 2, 3 stuff
VOID = NUM_CLASSES


def perfect_offsets(instance_map, centers):
    """(2, H, W) offsets pointing each pixel of instance k (1-based) at
    ``centers[k - 1]``; 0 elsewhere."""
    height, width = instance_map.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing='ij')
    offsets = torch.zeros(2, height, width)
    for k, (center_y, center_x) in enumerate(centers, start=1):
        mask = instance_map == k
        offsets[0][mask] = center_y - ys[mask]
        offsets[1][mask] = center_x - xs[mask]
    return offsets


def one_hot_logits(labels, num_classes=NUM_CLASSES, scale=10.):
    """(1, C, H, W) logits whose argmax is ``labels`` (H, W)."""
    logits = torch.zeros(num_classes, *labels.shape)
    logits.scatter_(0, labels[None], scale)
    return logits[None]


def test_instance_offset_is_mmdets():
    assert INSTANCE_OFFSET == MMDET_OFFSET


def test_find_instance_centers_nms_threshold_topk():
    heatmap = torch.zeros(1, 1, 10, 10)
    heatmap[0, 0, 2, 2] = 0.9
    heatmap[0, 0, 2, 4] = 0.5  # 2 columns from a higher peak
    heatmap[0, 0, 8, 8] = 0.3
    heatmap[0, 0, 5, 5] = 0.1  # not above the threshold
    centers, scores, valid = find_instance_centers(
        heatmap, threshold=0.1, nms_kernel=7, top_k=4)
    assert centers.shape == (1, 4, 2) and centers.dtype == torch.long
    assert centers[0, :2].tolist() == [[2, 2], [8, 8]]
    assert scores[0].tolist() == pytest.approx([0.9, 0.3, 0, 0])
    assert valid[0].tolist() == [True, True, False, False]
    assert centers[0, 2:].eq(0).all()

    # a 3x3 window no longer reaches (2, 2) from (2, 4)
    centers, scores, valid = find_instance_centers(
        heatmap, threshold=0.1, nms_kernel=3, top_k=4)
    assert centers[0, :3].tolist() == [[2, 2], [2, 4], [8, 8]]
    assert valid[0].tolist() == [True, True, True, False]

    centers, scores, valid = find_instance_centers(
        heatmap, threshold=0.1, nms_kernel=3, top_k=1)
    assert centers.tolist() == [[[2, 2]]] and valid.tolist() == [[True]]

    # fewer pixels than top_k: padded
    centers, scores, valid = find_instance_centers(
        heatmap[..., :3, :3], nms_kernel=7, top_k=200)
    assert centers.shape == (1, 200, 2) and valid.sum() == 1

    with pytest.raises(ValueError, match='odd'):
        find_instance_centers(heatmap, nms_kernel=4)
    with pytest.raises(ValueError, match=r'\(B, 1, H, W\)'):
        find_instance_centers(heatmap[0])


def naive_centers(heatmap, threshold, kernel):
    """{(y, x): score} of pixels above threshold that equal the maximum of
    their window, pixel by pixel."""
    height, width = heatmap.shape
    half = kernel // 2
    found = {}
    for y in range(height):
        for x in range(width):
            window = heatmap[max(y - half, 0):y + half + 1,
                             max(x - half, 0):x + half + 1]
            if heatmap[y, x] > threshold and heatmap[y, x] == window.max():
                found[(y, x)] = float(heatmap[y, x])
    return found


@pytest.mark.parametrize('kernel', [3, 7, 41])
def test_find_instance_centers_equals_naive_nms(kernel):
    generator = torch.Generator().manual_seed(kernel)
    # values on a grid of 0.05: many equal neighbours (plateaus)
    heatmaps = (torch.rand(2, 1, 30, 50, generator=generator) * 20).floor()
    heatmaps /= 20
    centers, scores, valid = find_instance_centers(
        heatmaps, threshold=0.3, nms_kernel=kernel, top_k=1000)
    for b in range(2):
        expected = naive_centers(heatmaps[b, 0], 0.3, kernel)
        count = int(valid[b].sum())
        assert count == len(expected) > 0
        assert valid[b, :count].all()
        found = {
            tuple(center): score
            for center, score in zip(centers[b, :count].tolist(),
                                     scores[b, :count].tolist())
        }
        assert found == pytest.approx(expected)
        assert (scores[b, :count].diff() <= 0).all()  # sorted
    # top_k keeps the best ones
    best, best_scores, _ = find_instance_centers(
        heatmaps, threshold=0.3, nms_kernel=kernel, top_k=2)
    assert torch.equal(best_scores, scores[:, :2])


def test_group_two_touching_instances():
    """Two instances sharing a border, perfect offsets; an invalid slot
    placed right on the votes of the left instance is ignored."""
    instance_map = torch.zeros(8, 12, dtype=torch.long)
    instance_map[1:7, 0:6] = 1
    instance_map[1:7, 6:12] = 2
    true_centers = [(3, 2), (4, 9)]
    offsets = perfect_offsets(instance_map, true_centers)
    centers = torch.tensor([[[4, 9], [3, 2], [3, 2]]])  # slot order 2, 1
    valid = torch.tensor([[True, True, False]])
    thing = instance_map > 0
    grouped = group_pixels(
        centers, valid, offsets[None], pixel_mask=thing[None])
    expected = torch.where(instance_map == 1, 2, 0) + torch.where(
        instance_map == 2, 1, 0)
    assert torch.equal(grouped[0], expected)

    # all pixels: the background votes for itself, i.e. the nearest center
    grouped_all = group_pixels(centers, valid, offsets[None])
    assert grouped_all[0, 0, 0] == 2  # (0, 0) nearest to (3, 2)
    assert grouped_all[0, 7, 11] == 1  # (7, 11) nearest to (4, 9)
    assert torch.equal(grouped_all[0][thing], expected[thing])

    none_valid = group_pixels(centers, torch.zeros_like(valid), offsets[None])
    assert none_valid.eq(0).all()


def naive_group(centers, valid, offsets):
    """Pixel by pixel, center by center (float32 as the vectorized one)."""
    batch, _, height, width = offsets.shape
    result = np.zeros((batch, height, width), dtype=np.int64)
    centers = centers.numpy().astype(np.float32)
    offsets = offsets.numpy()
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                vote_y = np.float32(y) + offsets[b, 0, y, x]
                vote_x = np.float32(x) + offsets[b, 1, y, x]
                best, best_distance = 0, np.inf
                for k in range(centers.shape[1]):
                    if not valid[b, k]:
                        continue
                    distance = ((centers[b, k, 0] - vote_y)**2 +
                                (centers[b, k, 1] - vote_x)**2)
                    if distance < best_distance:
                        best, best_distance = k + 1, distance
                result[b, y, x] = best
    return torch.from_numpy(result)


def test_group_pixels_equals_naive_loop():
    generator = torch.Generator().manual_seed(0)
    batch, num_slots, height, width = 3, 6, 9, 11
    centers = torch.stack([
        torch.randint(0, height, (batch, num_slots), generator=generator),
        torch.randint(0, width, (batch, num_slots), generator=generator)
    ], dim=-1)
    valid = torch.rand(batch, num_slots, generator=generator) > 0.4
    valid[2] = False  # an image without centers
    valid[0, -1] = False  # trailing invalid slot
    offsets = torch.randn(batch, 2, height, width, generator=generator) * 4
    expected = naive_group(centers, valid, offsets)
    assert expected[0].gt(0).all() and expected[2].eq(0).all()
    for chunk_elements in (1, 7, 1 << 22):
        grouped = group_pixels(
            centers, valid, offsets, chunk_elements=chunk_elements)
        assert torch.equal(grouped, expected)
    mask = torch.rand(batch, height, width, generator=generator) > 0.5
    grouped = group_pixels(centers, valid, offsets, pixel_mask=mask)
    assert torch.equal(grouped, torch.where(mask, expected, 0))


def test_merge_majority_vote_void_and_stuff_limit():
    # instance 1: 5 pixels of label 0 and 3 of label 1 -> all label 0
    # instance 2: 2 pixels of each thing label -> tie: lowest label (0)
    # instance 3: present in instance_ids but only on stuff pixels -> none
    sem = torch.full((6, 10), 3)
    instance_ids = torch.zeros(6, 10, dtype=torch.long)
    sem[0, 0:5] = 0
    sem[0, 5:8] = 1
    instance_ids[0, 0:8] = 1
    sem[2, 0:2] = 1
    sem[2, 2:4] = 0
    instance_ids[2, 0:4] = 2
    sem[3, 0:2] = 1  # thing pixels with no instance: void
    instance_ids[5, :] = 3  # stuff pixels: stay stuff
    sem[4, 0:3] = 2  # stuff label 2: 3 pixels, below the limit of 4
    panoptic = merge_semantic_and_instance(
        sem[None], instance_ids[None], None, NUM_THINGS, NUM_CLASSES,
        stuff_area_limit=4)[0]
    expected = torch.full((6, 10), 3)
    expected[0, 0:8] = 0 + 1 * INSTANCE_OFFSET
    expected[2, 0:4] = 0 + 2 * INSTANCE_OFFSET
    expected[3, 0:2] = VOID
    expected[4, 0:3] = VOID
    assert torch.equal(panoptic, expected)

    # stuff label 2 reaches the limit when it is 3: kept
    panoptic = merge_semantic_and_instance(
        sem[None], instance_ids[None], None, NUM_THINGS, NUM_CLASSES,
        stuff_area_limit=3)[0]
    assert (panoptic[4, 0:3] == 2).all()
    # custom void label
    panoptic = merge_semantic_and_instance(
        sem[None], instance_ids[None], None, NUM_THINGS, NUM_CLASSES,
        stuff_area_limit=4, void_label=255)[0]
    assert (panoptic[3, 0:2] == 255).all()
    with pytest.raises(ValueError, match='instance_offset'):
        merge_semantic_and_instance(sem[None], instance_ids[None], None, 2,
                                    1000)


def naive_merge(sem, instance_ids, num_things, num_classes, stuff_area):
    """Per instance and per class, with our id convention (id = slot)."""
    panoptic = torch.full_like(sem, num_classes)
    thing = sem < num_things
    for instance in instance_ids.unique().tolist():
        if instance == 0:
            continue
        mask = (instance_ids == instance) & thing
        if not mask.any():
            continue
        votes = torch.bincount(sem[mask], minlength=num_things)
        label = int(votes.argmax())
        panoptic[mask] = label + instance * INSTANCE_OFFSET
    for label in range(num_things, num_classes):
        mask = sem == label
        if mask.sum() >= stuff_area:
            panoptic[mask] = label
    return panoptic


def test_merge_equals_naive_loops_on_random_maps():
    generator = torch.Generator().manual_seed(1)
    sem = torch.randint(0, 5, (2, 12, 16), generator=generator)
    instance_ids = torch.randint(0, 6, (2, 12, 16), generator=generator)
    panoptic = merge_semantic_and_instance(sem, instance_ids, None, 3, 5,
                                           stuff_area_limit=40)
    for b in range(2):
        assert torch.equal(panoptic[b],
                           naive_merge(sem[b], instance_ids[b], 3, 5, 40))
    assert (panoptic == 5).any() and (panoptic >= INSTANCE_OFFSET).any()


def two_car_scene():
    """(H, W) = (16, 24): label 3 sky on top, label 2 road below, two
    touching instances of label 0 and 1 (rows 6..11, cols 4..11 and
    12..19) with perfect offsets and heatmap peaks at their centers."""
    sem = torch.full((16, 24), 2)
    sem[:6] = 3
    instance_map = torch.zeros(16, 24, dtype=torch.long)
    instance_map[6:12, 4:12] = 1
    instance_map[6:12, 12:20] = 2
    sem[instance_map == 1] = 0
    sem[instance_map == 2] = 1
    centers = [(8, 7), (9, 16)]
    offsets = perfect_offsets(instance_map, centers)
    heatmap = torch.zeros(1, 16, 24)
    heatmap[0, 8, 7] = 0.8
    heatmap[0, 9, 16] = 0.6
    heatmap[0, 9, 8] = 0.4  # suppressed by NMS (kernel 7)
    return sem, instance_map, offsets, heatmap


def test_postprocess_two_touching_instances_and_scores():
    sem, instance_map, offsets, heatmap = two_car_scene()
    logits = one_hot_logits(sem, scale=2.)
    result = panoptic_deeplab_postprocess(
        logits, heatmap[None], offsets[None], NUM_THINGS, stuff_area_limit=10)
    panoptic = result.panoptic_seg[0]
    expected = sem.clone()
    expected[instance_map == 1] = 0 + 1 * INSTANCE_OFFSET
    expected[instance_map == 2] = 1 + 2 * INSTANCE_OFFSET
    assert torch.equal(panoptic, expected)
    assert torch.equal(result.sem_labels[0], sem)
    assert result.centers[0, :2].tolist() == [[8, 7], [9, 16]]
    assert result.center_valid[0].sum() == 2
    # softmax of (2, 0, 0, 0): p = e^2 / (e^2 + 3), same at every pixel
    probability = np.exp(2) / (np.exp(2) + 3)
    assert result.instance_scores[0, :2].tolist() == pytest.approx(
        [probability * 0.8, probability * 0.6], rel=1e-5)
    assert result.instance_scores[0, 2:].eq(0).all()
    assert result.instance_labels[0, :3].tolist() == [0, 1, -1]


def test_postprocess_scores_average_the_semantic_probability():
    sem, instance_map, offsets, heatmap = two_car_scene()
    logits = one_hot_logits(sem, scale=2.)
    # half of instance 1 is more confident
    logits[0, 0, 6:9, 4:12] = 5.
    result = panoptic_deeplab_postprocess(
        logits, heatmap[None], offsets[None], NUM_THINGS, stuff_area_limit=10)
    probabilities = torch.softmax(logits[0], dim=0)[0][instance_map == 1]
    assert result.instance_scores[0, 0].item() == pytest.approx(
        probabilities.mean().item() * 0.8, rel=1e-5)


def test_postprocess_no_centers_makes_things_void():
    sem, instance_map, offsets, _ = two_car_scene()
    result = panoptic_deeplab_postprocess(
        one_hot_logits(sem), torch.zeros(1, 1, 16, 24), offsets[None],
        NUM_THINGS, stuff_area_limit=10)
    panoptic = result.panoptic_seg[0]
    assert (panoptic[instance_map > 0] == VOID).all()
    assert torch.equal(panoptic[instance_map == 0], sem[instance_map == 0])
    assert not result.center_valid.any()
    assert result.instance_scores.eq(0).all()
    assert result.instance_labels.eq(-1).all()


def test_postprocess_stuff_only_image():
    sem = torch.full((16, 24), 2)
    sem[:5] = 3
    heatmap = torch.zeros(1, 1, 16, 24)
    heatmap[0, 0, 8, 8] = 0.9  # a center, but no thing pixel to group
    result = panoptic_deeplab_postprocess(
        one_hot_logits(sem), heatmap, torch.randn(1, 2, 16, 24),
        NUM_THINGS, stuff_area_limit=10)
    assert torch.equal(result.panoptic_seg[0], sem)
    assert result.center_valid.sum() == 1
    assert result.instance_scores.eq(0).all()  # no segment for the center
    # the stuff area limit removes sky (5 x 24 = 120 pixels) at 121
    result = panoptic_deeplab_postprocess(
        one_hot_logits(sem), heatmap, torch.zeros(1, 2, 16, 24), NUM_THINGS,
        stuff_area_limit=121)
    assert (result.panoptic_seg[0][:5] == VOID).all()
    assert (result.panoptic_seg[0][5:] == 2).all()


def test_postprocess_crowd_like_region_joins_nearest_instance():
    """A crowd-like thing region without a center of its own, whose offsets
    point nowhere (0): every thing pixel is grouped to its nearest center,
    whatever the distance (Sec. 3.2); a center next to it claims it."""
    sem = torch.full((16, 24), 2)
    sem[2:14, 2:22] = 0  # a large blob of "person" pixels
    offsets = torch.zeros(1, 2, 16, 24)
    heatmap = torch.zeros(1, 1, 16, 24)
    heatmap[0, 0, 4, 4] = 0.7
    heatmap[0, 0, 11, 19] = 0.5
    result = panoptic_deeplab_postprocess(
        one_hot_logits(sem), heatmap, offsets, NUM_THINGS, stuff_area_limit=1)
    panoptic = result.panoptic_seg[0]
    ys, xs = torch.meshgrid(
        torch.arange(16), torch.arange(24), indexing='ij')
    nearer_first = ((ys - 4)**2 + (xs - 4)**2) <= ((ys - 11)**2 +
                                                    (xs - 19)**2)
    blob = sem == 0
    expected = torch.where(nearer_first, 1 * INSTANCE_OFFSET,
                           2 * INSTANCE_OFFSET)
    assert torch.equal(panoptic[blob], expected[blob])
    assert (panoptic[~blob] == 2).all()
    assert (panoptic != VOID).all()


def test_batch_equals_images_alone():
    """Two images with 2 and 3 centers (and different maps) in one batch
    give what each gives alone."""
    sem_a, _, offsets_a, heatmap_a = two_car_scene()
    generator = torch.Generator().manual_seed(3)
    sem_b = torch.randint(0, NUM_CLASSES, (16, 24), generator=generator)
    sem_b[4:12, 4:20] = torch.randint(0, NUM_THINGS, (8, 16),
                                      generator=generator)
    heatmap_b = torch.zeros(1, 16, 24)
    heatmap_b[0, 5, 5], heatmap_b[0, 10, 10], heatmap_b[0, 6, 18] = .9, .5, .3
    offsets_b = torch.randn(2, 16, 24, generator=generator) * 3
    logits = torch.cat([
        one_hot_logits(sem_a) +
        torch.rand(1, NUM_CLASSES, 16, 24, generator=generator),
        one_hot_logits(sem_b) +
        torch.rand(1, NUM_CLASSES, 16, 24, generator=generator)
    ])
    heatmaps = torch.stack([heatmap_a, heatmap_b])
    offsets = torch.stack([offsets_a, offsets_b])
    kwargs = dict(num_things=NUM_THINGS, stuff_area_limit=5, top_k=10)
    batched = panoptic_deeplab_postprocess(logits, heatmaps, offsets,
                                           **kwargs)
    assert batched.center_valid.sum(1).tolist() == [2, 3]
    for b in range(2):
        alone = panoptic_deeplab_postprocess(logits[b:b + 1],
                                             heatmaps[b:b + 1],
                                             offsets[b:b + 1], **kwargs)
        for name, value in alone._asdict().items():
            assert torch.equal(getattr(batched, name)[b:b + 1], value), name
    assert (batched.panoptic_seg[1] >= INSTANCE_OFFSET).any()


def test_postprocess_checks_shapes():
    with pytest.raises(ValueError, match='offsets'):
        panoptic_deeplab_postprocess(
            torch.zeros(2, 4, 8, 8), torch.zeros(2, 1, 8, 8),
            torch.zeros(2, 2, 8, 9), NUM_THINGS)
    with pytest.raises(ValueError, match='num_things'):
        panoptic_deeplab_postprocess(
            torch.zeros(1, 4, 8, 8), torch.zeros(1, 1, 8, 8),
            torch.zeros(1, 2, 8, 8), 5)
