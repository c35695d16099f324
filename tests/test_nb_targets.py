"Checks of the targets / losses / postprocess chapters: the renamed names, and targets decoded back to segments."
import math
import random

import torch

from unloc_nb.losses import box_loss, distance_iou
from unloc_nb.postprocess import decode_segments, pairwise_iou, soft_nms_keep
from unloc_nb.pyramid import level_masks, pyramid_anchors
from unloc_nb.targets import UnLocTargets, assign_targets

RANGES = ((0, 4), (4, 8), (8, 16), (16, math.inf))


def plain_soft_nms(segs, scores, sigma=0.3, thr=0.001, max_det=100):
    "Eager Gaussian Soft-NMS on Python lists: selected indices and their decayed scores."
    def iou(p, q):
        inter = max(0.0, min(p[1], q[1]) - max(p[0], q[0]))
        union = (p[1] - p[0]) + (q[1] - q[0]) - inter
        return inter / union if union > 0 else 0.0
    current = {i: s for i, s in enumerate(scores) if s > thr}
    selected, selected_scores = [], []
    while current and len(selected) < max_det:
        best = max(current, key=lambda i: (current[i], -i))  # highest score, lowest index among ties
        selected.append(best)
        selected_scores.append(current.pop(best))
        for i in list(current):
            current[i] *= math.exp(-0.5 * iou(segs[i], segs[best]) ** 2 / sigma)
            if current[i] <= thr:
                del current[i]
    return selected, selected_scores


def test_soft_nms_matches_plain_loop():
    rng = random.Random(1)
    for _ in range(20):
        n = rng.randint(1, 40)
        segs = [(s, s + rng.uniform(0.5, 15)) for s in (rng.uniform(0, 40) for _ in range(n))]
        scores = [rng.random() for _ in range(n)]
        idx, kept = soft_nms_keep(torch.tensor(segs, dtype=torch.float64), torch.tensor(scores, dtype=torch.float64),
                                  max_detections=10)
        ref_idx, ref_scores = plain_soft_nms(segs, scores, max_det=10)
        assert idx.tolist() == ref_idx
        assert torch.allclose(kept, torch.tensor(ref_scores, dtype=torch.float64), atol=1e-9)


def test_pairwise_iou_values():
    iou = pairwise_iou(torch.tensor([[0.0, 10.0], [2.0, 2.0]]), torch.tensor([[5.0, 15.0], [0.0, 10.0]]))
    assert torch.allclose(iou, torch.tensor([[5 / 15, 1.0], [0.0, 0.0]]))


def test_distance_iou_and_box_loss_keyword():
    pred, target = torch.tensor([[2.0, 2.0]]), torch.tensor([[1.0, 3.0]])
    assert torch.allclose(distance_iou(pred, target), torch.tensor([3 / 5]))
    loss = box_loss([pred[None, None]], target_distances=[target[None, None]], labels=[torch.ones(1, 1, 1)],
                    masks=[torch.ones(1, 1, dtype=torch.bool)])
    assert torch.isclose(loss, torch.tensor(1 - 3 / 5))


def test_target_distances_decode_to_the_segment():
    anchors, strides = pyramid_anchors(32, 4)
    masks = level_masks(torch.ones(1, 32, dtype=torch.bool), strides)
    gt = torch.tensor([[3.0, 7.5], [9.0, 14.0]], dtype=torch.float64)
    targets = assign_targets([gt], [torch.tensor([0, 1])], torch.tensor([0.5]), torch.tensor([15.5]), anchors, strides,
                             masks, RANGES, task="tal", num_classes=2)
    assert isinstance(targets, UnLocTargets) and targets.num_positives > 0
    segs, _ = decode_segments(targets.labels, targets.distances, anchors, strides,
                              torch.tensor([0.5], dtype=torch.float64), torch.tensor([15.5], dtype=torch.float64))
    positive = torch.cat(targets.labels, 2)[0] > 0  # (C, M)
    for c in range(2):
        assert torch.allclose(segs[0, c][positive[c]], gt[c].expand(int(positive[c].sum()), 2), atol=1e-5)
