# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""CIAE inference on hand-built embeddings and detections where the answer
is known: query embeddings read at the proposals' locations, S = P V^T with
remote filtering against a naive loop, two instances with the same
embedding told apart only by their boxes, rescaling to ori_shape."""
import pytest
import torch
import torch.nn.functional as F

from mmpanoptic_plus.models.postprocess import (assign_pixels,
                                                ciae_panoptic_predict,
                                                merge_ciae_test_cfg,
                                                query_embeddings_at_locations)

STRIDES = (8, 16, 32, 64, 128)
E_X, E_Y, E_Z = torch.eye(3)


def scene():
    """64x64 input; stride-4 embeddings: top half E_X (stuff class 2),
    bottom half E_Y (stuff class 3), two instance regions with the same
    embedding E_Z (cells 2-5 and 10-13 on both axes); two class-0
    detections at level 0, cells (2, 2) and (6, 6), whose boxes are the two
    regions (pixels 8-24 and 40-56)."""
    embeds = torch.zeros(1, 3, 16, 16)
    embeds[0, :, :8] = E_X[:, None, None]
    embeds[0, :, 8:] = E_Y[:, None, None]
    embeds[0, :, 2:6, 2:6] = E_Z[:, None, None]
    embeds[0, :, 10:14, 10:14] = E_Z[:, None, None]
    sizes = [8, 4, 2, 1, 1]
    cls_probs = [torch.zeros(1, 2, s, s) for s in sizes]
    centernesses = [torch.zeros(1, 1, s, s) for s in sizes]
    bbox_preds = [torch.ones(1, 4, s, s) for s in sizes]
    cls_probs[0][0, 0, 2, 2] = 0.9
    cls_probs[0][0, 0, 6, 6] = 0.8
    # location of cell (i, j) on stride 8: (8 j + 4, 8 i + 4) = 20 / 52
    bbox_preds[0][0, :, 2, 2] = torch.tensor([12., 12., 4., 4.])
    bbox_preds[0][0, :, 6, 6] = torch.tensor([12., 12., 4., 4.])
    return cls_probs, centernesses, bbox_preds, embeds


def naive_assignment(embeds_full, queries, boxes, num_stuff):
    """Loop over queries: cosine similarity, 0 outside a box, argmax."""
    pixels = F.normalize(embeds_full, dim=0)
    _, height, width = pixels.shape
    scores = []
    for k, query in enumerate(queries):
        sim = (pixels * query[:, None, None]).sum(0)
        if boxes is not None and k >= num_stuff:
            x1, y1, x2, y2 = boxes[k - num_stuff].tolist()
            for y in range(height):
                for x in range(width):
                    if not (x1 <= x + 0.5 <= x2 and y1 <= y + 0.5 <= y2):
                        sim[y, x] = 0
        scores.append(sim)
    return torch.stack(scores).argmax(0)


def test_query_embeddings_equal_upsampled_map_at_location():
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(2, 5, 16, 24, generator=gen)
    levels = torch.tensor([[0, 1, 2, 3], [3, 0, 1, 0]])
    cells = torch.tensor([[[3, 5], [1, 2], [0, 1], [0, 0]],
                          [[0, 0], [7, 11], [3, 4], [0, 0]]])
    queries = query_embeddings_at_locations(embeds, levels, cells, STRIDES)
    full = F.interpolate(
        embeds, scale_factor=4, mode='bilinear', align_corners=False)
    for b in range(2):
        for n in range(4):
            s = STRIDES[int(levels[b, n])]
            y = int(cells[b, n, 0]) * s + s // 2
            x = int(cells[b, n, 1]) * s + s // 2
            expected = F.normalize(full[b, :, y, x], dim=0)
            torch.testing.assert_close(queries[b, n], expected)


@pytest.mark.parametrize('chunk_pixels', [1 << 18, 50])
def test_assign_pixels_equals_naive_loop(chunk_pixels):
    gen = torch.Generator().manual_seed(1)
    embeds = torch.randn(4, 9, 13, generator=gen)
    queries = F.normalize(torch.randn(5, 4, generator=gen), dim=1)
    boxes = torch.tensor([[1., 1., 6., 7.], [4., 0., 13., 3.5],
                          [0., 0., 2., 2.]])
    out = assign_pixels(embeds, queries, boxes, 2, chunk_pixels=chunk_pixels)
    assert torch.equal(out, naive_assignment(embeds, queries, boxes, 2))
    out = assign_pixels(embeds, queries, None, 2, chunk_pixels=chunk_pixels)
    assert torch.equal(out, naive_assignment(embeds, queries, None, 2))
    empty = assign_pixels(embeds, queries[:0], None, 0)
    assert (empty == -1).all()


def _predict(test_cfg, meta=None):
    cls_probs, centernesses, bbox_preds, embeds = scene()
    meta = meta or dict(img_shape=(64, 64), ori_shape=(64, 64),
                        scale_factor=(1.0, 1.0))
    cfg = dict(stuff_area_limit=0)
    cfg.update(test_cfg)
    return ciae_panoptic_predict(
        cls_probs, centernesses, bbox_preds, embeds,
        torch.stack((E_X, E_Y)), [meta], STRIDES, 2, 2, test_cfg=cfg)[0]


def test_two_instances_with_one_embedding_are_split_by_their_boxes():
    result = _predict({})
    pan = result['pan_results'].sem_seg[0]
    assert pan.shape == (64, 64)
    instances = result['ins_results']
    assert instances.labels.tolist() == [0, 0]
    assert instances.bboxes.tolist() == [[8., 8., 24., 24.],
                                         [40., 40., 56., 56.]]
    assert instances.scores.tolist() == pytest.approx([0.45, 0.4])
    # the expected map from the naive loop on the upsampled embeddings
    _, _, _, embeds = scene()
    full = F.interpolate(
        embeds, scale_factor=4, mode='bilinear', align_corners=False)[0]
    queries = torch.stack((E_X, E_Y, E_Z, E_Z))
    segments = naive_assignment(full, queries, instances.bboxes, 2)
    expected = torch.tensor([2, 3, 1000, 2000])[segments]
    assert torch.equal(pan, expected)
    # known facts: both instances present, inside their boxes, stuff halves
    assert set(pan.unique().tolist()) == {2, 3, 1000, 2000}
    ys, xs = torch.nonzero(pan == 2000, as_tuple=True)
    assert xs.min() >= 40 and ys.max() < 56
    assert pan[0, 0] == 2 and pan[63, 0] == 3 and pan[16, 16] == 1000
    assert pan[48, 48] == 2000


def test_without_remote_filtering_the_first_query_takes_both_regions():
    pan = _predict(dict(remote_filtering=False))['pan_results'].sem_seg[0]
    assert pan[16, 16] == 1000 and pan[48, 48] == 1000
    assert (pan == 2000).sum() == 0


def test_score_threshold_and_stuff_area_limit():
    result = _predict(dict(instance_score_thr=0.42))
    pan = result['pan_results'].sem_seg[0]
    assert len(result['ins_results']) == 1
    # region B (orthogonal to both stuff queries) becomes stuff
    assert pan[48, 48] in (2, 3) and pan[16, 16] == 1000
    assert not (pan >= 2000).any()
    pan = _predict(dict(stuff_area_limit=64 * 64))['pan_results'].sem_seg[0]
    assert (pan == 4).any()  # stuff below the limit became void (4)
    assert not (pan == 2).any() and not (pan == 3).any()


def test_rescale_to_ori_shape():
    meta = dict(img_shape=(64, 64), ori_shape=(32, 32),
                scale_factor=(2.0, 2.0))
    result = _predict({}, meta)
    pan = result['pan_results'].sem_seg[0]
    assert pan.shape == (32, 32)
    assert result['ins_results'].bboxes.tolist() == [[4., 4., 12., 12.],
                                                     [20., 20., 28., 28.]]
    assert pan[8, 8] == 1000 and pan[24, 24] == 2000 and pan[0, 0] == 2


def test_merge_test_cfg_rejects_unknown_keys():
    assert merge_ciae_test_cfg(dict(score_thr=0.3))['score_thr'] == 0.3
    with pytest.raises(KeyError):
        merge_ciae_test_cfg(dict(mask_thr=0.4))
