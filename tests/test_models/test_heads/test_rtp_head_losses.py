# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""RTPHead's losses (paper Sec. 4.2-4.3, Eq. 11-18) against naive loops.

The explicit mask loss (Eq. 16-18): bounded for a 3 px wide instance that the
stride-4 grid misses, no gradient into the semantic branch, the background
levelness channel (Eq. 14) as at inference, queries = the inference's B_query
matched by their location's assignment, Eq. 16-18 recomputed by a loop. Then
every loss of a two-image scene (focal, IoU, centerness BCE, levelness CE,
hard-pixel semantic CE, mask) recomputed per location."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmpanoptic_plus.models.heads import RTPHead
from mmpanoptic_plus.models.utils import build_dense_boxes, select_query_slots
from mmpanoptic_plus.utils import register_all_modules

register_all_modules()

STRIDES = (8, 16, 32, 64, 128)
SIZE = 64
# a 3 px wide bar whose columns 27-29 contain the P3 location x = 28 but
# none of the stride-4 pixels (x = 26, 30), and a 20x24 block
BAR = (27, 8, 30, 56)
BLOCK = (40, 36, 60, 60)


def tiny_head(**kwargs):
    cfg = dict(
        num_things=3,
        num_stuff=2,
        in_channels=8,
        feat_channels=16,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        # every candidate may become a query (B_query is not cut at 100)
        test_cfg=dict(max_per_img=400))
    cfg.update(kwargs)
    head = RTPHead(**cfg)
    head.init_weights()
    # class probabilities 0.5 (above score_thr: queries exist at init) and
    # boxes of about 0.4 strides (neighbouring boxes do not overlap, so NMS
    # keeps every location)
    torch.nn.init.constant_(head.conv_cls.bias, 0.0)
    torch.nn.init.constant_(head.conv_reg.bias, 0.2)
    return head


def scene(boxes=(BAR, BLOCK), labels=(0, 1)):
    masks = np.zeros((len(boxes), SIZE, SIZE), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, y1:y2, x1:x2] = 1
    gt = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks, SIZE, SIZE))
    sem = torch.full((1, 1, SIZE, SIZE), 3, dtype=torch.long)
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        sem[0, 0, y1:y2, x1:x2] = label
    return [gt], sem


def fpn_feats(seed=0, channels=8):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(1, channels, -(-SIZE // s), -(-SIZE // s), generator=gen)
        for s in STRIDES)


def metas():
    return [dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE))]


def test_thin_instance_off_the_grid_gives_a_bounded_loss():
    torch.manual_seed(0)
    head = tiny_head()
    gt, sem = scene()
    outs = head(fpn_feats())
    losses = head.loss_by_feat(*outs, gt, metas(), sem, None)
    # before the fix N_j was counted on the stride-4 grid (0 for the bar)
    # and the loss divided by 1e-6: ~1e5
    assert torch.isfinite(losses['loss_mask'])
    assert 0 < float(losses['loss_mask']) < 10


def test_mask_loss_sends_no_gradient_into_the_semantic_branch():
    torch.manual_seed(0)
    head = tiny_head()
    gt, sem = scene()
    outs = head(fpn_feats())
    losses = head.loss_by_feat(*outs, gt, metas(), sem, None)
    assert float(losses['loss_mask']) > 0
    losses['loss_mask'].backward()
    # Eq. 17-18 use IoU(B(x, y), b_j) only; the query selection is detached
    for name, param in head.named_parameters():
        if name.startswith(('conv_semantic', 'conv_cls', 'cls_convs',
                            'conv_levelness', 'conv_centerness')):
            assert param.grad is None or param.grad.abs().sum() == 0, name
    assert head.conv_reg.weight.grad.abs().sum() > 0
    # the declared option multiplies P_sem back in (and its gradient)
    head = tiny_head(loss_mask=dict(type='RTPMaskLoss',
                                    use_semantic_prob=True))
    outs = head(fpn_feats())
    head.loss_by_feat(*outs, gt, metas(), sem, None)['loss_mask'].backward()
    assert head.conv_semantic[0].weight.grad.abs().sum() > 0


def test_query_cap_keeps_the_best_scoring_slots():
    # background levelness everywhere: each query's loss is its beta_j
    head = tiny_head(loss_mask=dict(type='RTPMaskLoss',
                                    max_queries_per_img=5))
    for conv in head.conv_levelness:
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
        conv.bias.data[0] = 5.0
    gt, sem = scene()
    outs = head(fpn_feats())
    slots = head.mask_loss_queries(outs[0], outs[2], outs[1], metas())
    full = select_query_slots([c.sigmoid() for c in outs[0]], outs[2],
                              outs[1], STRIDES, img_shapes=[(SIZE, SIZE)],
                              max_per_img=400)
    assert int(slots.num_valid[0]) == 5
    # the cap cuts the inference's ranking, it does not reselect
    torch.testing.assert_close(slots.bboxes[0], full.bboxes[0, :5])
    losses = head.loss_by_feat(*outs, gt, metas(), sem, None)
    targets = head.assigner.assign(
        [tuple(c.shape[-2:]) for c in outs[0]],
        batch_gt_instances=gt,
        levelness_size=tuple(outs[3].shape[-2:]))
    betas = []
    for k in range(5):
        level = int(slots.levels[0, k])
        y, x = slots.cells[0, k].tolist()
        owner = int(targets.assigned_gt_inds[level][0, y, x])
        if owner >= 0:
            betas.append(float(bbox_overlaps(
                slots.bboxes[0, k:k + 1], gt[0].bboxes[owner:owner + 1])))
    assert 0 < len(betas) < 5
    assert float(losses['loss_mask']) == pytest.approx(
        float(np.mean(betas)), rel=1e-5)


def matched_queries(head, outs, gt):
    """B_query of the inference selection (on the same outputs), each
    matched to the instance assigned to its location, by a loop over
    queries; queries at locations without an instance are dropped."""
    cls_scores, bbox_preds, centernesses, levelness, _ = outs
    slots = select_query_slots(
        [c.sigmoid() for c in cls_scores],
        centernesses,
        bbox_preds,
        STRIDES,
        img_shapes=[(SIZE, SIZE)],
        max_per_img=400)
    targets = head.assigner.assign(
        [tuple(c.shape[-2:]) for c in cls_scores],
        batch_gt_instances=gt,
        levelness_size=tuple(levelness.shape[-2:]))
    boxes, gt_inds = [], []
    dropped = 0
    for k in range(int(slots.num_valid[0])):
        level = int(slots.levels[0, k])
        y, x = slots.cells[0, k].tolist()
        owner = int(targets.assigned_gt_inds[level][0, y, x])
        if owner < 0:
            dropped += 1
            continue
        boxes.append(slots.bboxes[0, k])
        gt_inds.append(owner)
    assert dropped > 0 and len(boxes) > 0
    return torch.stack(boxes).detach(), gt_inds


def test_background_levelness_pixels_have_no_box_and_queries_are_b_query():
    head = tiny_head()
    # levelness argmax = background (channel 0) everywhere: P_loc = 0, so
    # E_FP = 0 and E_FN = N_j: each query's loss is beta_j (Eq. 16)
    for conv in head.conv_levelness:
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
        conv.bias.data[0] = 5.0
    gt, sem = scene()
    outs = head(fpn_feats())
    losses = head.loss_by_feat(*outs, gt, metas(), sem, None)
    boxes, gt_inds = matched_queries(head, outs, gt)
    betas = bbox_overlaps(boxes, gt[0].bboxes[gt_inds], is_aligned=True)
    assert float(losses['loss_mask']) == pytest.approx(
        float(betas.mean()), rel=1e-5)


def test_training_dense_boxes_equal_inference():
    head = tiny_head()
    cls_scores, bbox_preds, _, levelness, sem_logits = head(fpn_feats())
    levelness = levelness.detach().clone()
    levelness[:, 0, ::3] += 100  # background on every third row
    train_boxes, train_valid = head.mask_loss_dense_boxes(
        bbox_preds, levelness)
    # what rtp_panoptic_predict builds (use_levelness=True)
    infer_boxes, infer_valid = build_dense_boxes(
        bbox_preds, STRIDES, levelness, size=tuple(sem_logits.shape[-2:]),
        use_levelness=True, out_stride=4)
    torch.testing.assert_close(train_boxes, infer_boxes[:, 0], rtol=0, atol=0)
    assert torch.equal(train_valid, infer_valid)
    assert not infer_valid.all() and infer_valid.any()


def cell_fractions(mask, stride=4):
    """Naive: fraction of each stride x stride cell covered by the mask."""
    height, width = mask.shape
    out = np.zeros((height // stride, width // stride))
    for i in range(height // stride):
        for j in range(width // stride):
            out[i, j] = mask[i * stride:(i + 1) * stride,
                             j * stride:(j + 1) * stride].mean()
    return out


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) +
             max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter)
    return inter / union if union > 0 else 0.0


def naive_mask_losses(outs, gt, boxes, gt_inds):
    """Eq. 16-18 per query by loops over the stride-4 pixels (one image)."""
    dense, valid = build_dense_boxes(outs[1], STRIDES, outs[3])
    dense = dense[0, 0].detach().numpy()
    valid = valid[0].numpy()
    masks = gt[0].masks.masks
    h, w = valid.shape
    expected = []
    for box, owner in zip(boxes.tolist(), gt_inds):
        fraction = cell_fractions(masks[owner])
        n_j = masks[owner].sum() / 16  # pixel count on the stride-4 grid
        e_fp = e_fn = 0.0
        for i in range(h):
            for j in range(w):
                p_loc = iou(dense[:, i, j], box) if valid[i, j] else 0.0
                e_fp += p_loc * (1 - fraction[i, j])  # Eq. 17
                e_fn += (1 - p_loc) * fraction[i, j]  # Eq. 18
        beta = iou(box, gt[0].bboxes[owner].tolist())
        expected.append(beta * (e_fp + e_fn) / n_j)  # Eq. 16
    return expected


def test_mask_loss_equals_eq16_18_by_a_naive_loop():
    torch.manual_seed(0)
    head = tiny_head()
    gt, sem = scene()
    outs = head(fpn_feats(seed=3))
    losses = head.loss_by_feat(*outs, gt, metas(), sem, None)
    boxes, gt_inds = matched_queries(head, outs, gt)
    # both instances are queried, the bar included
    assert set(gt_inds) == {0, 1}
    # the bar's mask misses the stride-4 pixels (x = 26, 30), yet it covers
    # 1/4 and 1/2 of the cells of columns 6 and 7: N_j = 144 / 16 = 9
    bar = cell_fractions(gt[0].masks.masks[0])
    assert bar.sum() == 9 and bar.max() == 0.5
    expected = naive_mask_losses(outs, gt, boxes, gt_inds)
    assert float(losses['loss_mask']) == pytest.approx(
        float(np.mean(expected)), rel=1e-4)

def focal(logit, target, alpha=0.25, gamma=2.0):
    """Sigmoid focal loss of one logit (Lin et al.), by hand."""
    p = 1 / (1 + np.exp(-logit))
    if target:
        return -alpha * (1 - p)**gamma * np.log(p)
    return -(1 - alpha) * p**gamma * np.log(1 - p)


def bce(logit, target):
    p = 1 / (1 + np.exp(-logit))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def cross_entropy(logits, label):
    logits = logits - logits.max()
    return float(np.log(np.exp(logits).sum()) - logits[label])


@pytest.mark.parametrize('cls_loss_avg', ['num_pos', 'num_locations'])
def test_every_loss_equals_a_naive_per_location_loop(cls_loss_avg):
    """Two images (different instances, a crowd region in the second):
    every loss recomputed by loops over images, levels and cells (so the
    flat level-major / image / pixel layout of the head is checked), from
    the assigner's targets and the raw outputs."""
    torch.manual_seed(0)
    head = tiny_head(cls_loss_avg=cls_loss_avg)
    (gt0, ), sem0 = scene()
    (gt1, ), sem1 = scene(boxes=((4, 4, 40, 30), (44, 10, 47, 50)),
                          labels=(2, 0))
    gt = [gt0, gt1]
    sem = torch.cat((sem0, sem1))
    sem[1, 0, 60:, :] = 255  # ignored semantic pixels
    crowd_mask = np.zeros((1, SIZE, SIZE), np.uint8)
    crowd_mask[0, 48:64, 0:32] = 1
    crowd = [
        None,
        InstanceData(
            bboxes=torch.tensor([[0., 48., 32., 64.]]),
            labels=torch.tensor([1]),
            masks=BitmapMasks(crowd_mask, SIZE, SIZE))
    ]
    feats = tuple(torch.cat(pair) for pair in zip(fpn_feats(0), fpn_feats(1)))
    outs = head(feats)
    cls_scores, bbox_preds, centernesses, levelness, sem_logits = outs
    img_metas = metas() * 2
    losses = head.loss_by_feat(*outs, gt, img_metas, sem, crowd)
    targets = head.assigner.assign(
        [tuple(c.shape[-2:]) for c in cls_scores],
        batch_gt_instances=gt,
        batch_ignored_instances=crowd,
        levelness_size=tuple(levelness.shape[-2:]))

    cls_sum = box_sum = ctr_sum = 0.0
    num_pos = num_locations = 0
    for b in range(2):
        for level, stride in enumerate(STRIDES):
            height, width = cls_scores[level].shape[-2:]
            for y in range(height):
                for x in range(width):
                    if targets.ignore_masks[level][b, y, x]:
                        continue
                    num_locations += 1
                    label = int(targets.labels[level][b, y, x])
                    logits = cls_scores[level][b, :, y, x].tolist()
                    cls_sum += sum(
                        focal(v, c == label) for c, v in enumerate(logits))
                    if not targets.fg_masks[level][b, y, x]:
                        continue
                    num_pos += 1
                    px, py = stride * x + stride // 2, stride * y + stride // 2
                    l, t, r, btm = bbox_preds[level][b, :, y, x].tolist()
                    tl, tt, tr, tb = targets.bbox_targets[level][b, :, y,
                                                                 x].tolist()
                    overlap = iou((px - l, py - t, px + r, py + btm),
                                  (px - tl, py - tt, px + tr, py + tb))
                    box_sum += -np.log(max(overlap, 1e-6))
                    ctr_sum += bce(
                        float(centernesses[level][b, 0, y, x]),
                        float(targets.centerness_targets[level][b, y, x]))
    assert num_pos > 0 and num_locations < 2 * (64 + 16 + 4 + 1 + 1)
    cls_avg = num_pos if cls_loss_avg == 'num_pos' else num_locations
    assert float(losses['loss_cls']) == pytest.approx(
        cls_sum / cls_avg, rel=1e-4)
    assert float(losses['loss_bbox']) == pytest.approx(
        box_sum / num_pos, rel=1e-4)
    assert float(losses['loss_centerness']) == pytest.approx(
        ctr_sum / num_pos, rel=1e-4)

    # levelness: CE per stride-4 pixel, crowd background ignored
    lev_sum, lev_count = 0.0, 0
    lev = levelness.detach().numpy()
    for b in range(2):
        for y in range(lev.shape[2]):
            for x in range(lev.shape[3]):
                if targets.levelness_ignore[b, y, x]:
                    continue
                lev_count += 1
                lev_sum += cross_entropy(
                    lev[b, :, y, x], int(targets.levelness_targets[b, y, x]))
    assert targets.levelness_ignore.any()
    assert float(losses['loss_levelness']) == pytest.approx(
        lev_sum / lev_count, rel=1e-4)

    # semantic: the worst round(30 %) of the batch's valid pixels, logits
    # bilinearly upsampled to the labels
    up = torch.nn.functional.interpolate(
        sem_logits, size=(SIZE, SIZE), mode='bilinear',
        align_corners=False).detach().numpy()
    per_pixel = []
    for b in range(2):
        for y in range(SIZE):
            for x in range(SIZE):
                label = int(sem[b, 0, y, x])
                if label != 255:
                    per_pixel.append(cross_entropy(up[b, :, y, x], label))
    kept = int(round(0.3 * len(per_pixel)))
    assert float(losses['loss_sem']) == pytest.approx(
        float(np.mean(sorted(per_pixel)[-kept:])), rel=1e-4)

    # mask: Eq. 16-18 over the B_query of both images, one mean
    expected = []
    for b in range(2):
        image_outs = tuple([o[b:b + 1] for o in out] if isinstance(
            out, (list, tuple)) else out[b:b + 1] for out in outs)
        boxes, gt_inds = matched_queries(head, image_outs, [gt[b]])
        expected += naive_mask_losses(image_outs, [gt[b]], boxes, gt_inds)
    assert float(losses['loss_mask']) == pytest.approx(
        float(np.mean(expected)), rel=1e-4)
