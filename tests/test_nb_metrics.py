"""The test batteries moved out of nbs/10_metrics, 10a_retrieval_metrics and 10b_eval_files: error messages,
`invalid="drop"`, the plain loops against the vectorised metrics on many random inputs, and the lazy names."""
import warnings

import numpy as np
import pytest

import unloc_nb.metrics as metrics
from unloc_nb.metrics import (UnLocDataError, _thresholds, _why_invalid, greedy_match, interpolated_ap, segment_iou,
                              tal_map)
from unloc_nb.retrieval_metrics import mr_recall, qvh_eval

TAL_GT = {"v1": [(0, 10, "Diving"), (20, 30, "Diving")], "v2": [(5, 9, "Running")]}
TAL_PRED = {"v1": [(0, 10, "Diving", 0.9), (1, 10, "Diving", 0.8), (20, 28, "Diving", 0.7)],
            "unknown": [(0, 10, "Diving", 0.6)]}


def greedy_match_loop(pred_group, pred_seg, gt_group, gt_seg, thresholds):
    "The ActivityNet matching as a plain loop (the notebook's reference)."
    pred_seg, gt_seg = np.asarray(pred_seg, float).reshape(-1, 2), np.asarray(gt_seg, float).reshape(-1, 2)
    gt_group = np.asarray(gt_group)
    is_tp = np.zeros((len(thresholds), len(pred_seg)), dtype=bool)
    for t, threshold in enumerate(thresholds):
        matched = np.zeros(len(gt_seg), dtype=bool)
        for p, group in enumerate(pred_group):
            mine = np.flatnonzero(gt_group == group)
            tiou = segment_iou(pred_seg[p], gt_seg[mine])[0]
            for j in np.argsort(tiou)[::-1]:
                if tiou[j] < threshold: break
                if matched[mine[j]]: continue
                matched[mine[j]] = is_tp[t, p] = True
                break
    return is_tp


def interpolated_ap_loop(is_tp, num_pos):
    tp = np.cumsum(is_tp)
    precision = np.r_[0.0, tp / np.arange(1, len(tp) + 1), 0.0]
    recall = np.r_[0.0, tp / num_pos, 1.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("num_thresholds", [1, 10, 70])  # 70: more thresholds than the bits of one uint64
def test_greedy_match_equals_the_loop(seed, num_thresholds):
    rng = np.random.default_rng(seed)
    thresholds = rng.random(num_thresholds) * 0.9 + 0.1
    for _ in range(50):
        n_pred, n_gt, groups = int(rng.integers(0, 40)), int(rng.integers(0, 15)), int(rng.integers(1, 5))
        start = rng.integers(0, 20, n_pred + n_gt)
        seg = np.stack([start, start + rng.integers(0, 8, n_pred + n_gt)], axis=1).astype(float)
        args = (rng.integers(-1, groups, n_pred), seg[:n_pred], rng.integers(0, groups, n_gt), seg[n_pred:],
                thresholds)
        np.testing.assert_array_equal(greedy_match(*args), greedy_match_loop(*args))


def test_greedy_match_loop_can_fail():
    "The reference is not trivially equal to anything: a wrong order of predictions changes the answer."
    args = (np.zeros(2, int), [[0, 11], [0, 10]], np.zeros(1, int), [[0, 10]], [0.95])
    assert not np.array_equal(greedy_match(*args), greedy_match_loop(np.zeros(2, int), [[0, 10], [0, 11]], *args[2:]))


@pytest.mark.parametrize("seed", range(3))
def test_interpolated_ap_equals_the_loop_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    units = np.sort(rng.integers(0, 30, 2000))
    is_tp = rng.random((4, 2000)) < rng.random((4, 1))
    num_pos = np.bincount(units, minlength=30) // 3 + 1
    fast = interpolated_ap(is_tp, units, num_pos)
    for t in range(4):
        for u in np.unique(units):
            assert fast[t, u] == interpolated_ap_loop(is_tp[t, units == u], num_pos[u])


def test_mr_recall_equals_the_loop():
    rng = np.random.default_rng(3)
    for _ in range(30):
        num_q = int(rng.integers(1, 40))
        start = rng.integers(0, 20, num_q)
        gt = np.stack([start, start + rng.integers(1, 10, num_q)], axis=1).astype(float)
        preds = []
        for _ in range(num_q):
            s = rng.integers(0, 20, 8)
            rows = np.stack([s, s + rng.integers(1, 10, 8), rng.integers(0, 3, 8)], axis=1).astype(float)
            preds.append(rows[:int(rng.integers(0, 9))])
        fast = mr_recall(gt, preds, ns=(1, 3, 5))
        for n in (1, 3, 5):
            for m in (0.3, 0.5, 0.7):
                hits = sum(any(metrics.moment_iou(w[:2], g) >= m for w in sorted(p.tolist(), key=lambda w: -w[2])[:n])
                           for g, p in zip(gt, preds))
                assert fast[f"R{n}@{m}"] == pytest.approx(hits / num_q)


def test_invalid_helpers():
    assert _why_invalid(0, 5, float("nan"), "keep") == "is not finite"
    assert _why_invalid(100, 95, 0.9, "error") == "ends before it starts"
    with pytest.raises(UnLocDataError, match="no tIoU threshold given"): _thresholds([])
    with pytest.raises(UnLocDataError, match=r"tIoU threshold 2 is outside \(0, 1\]"): _thresholds([0.5, 2.0])


def test_tal_map_errors_and_drop():
    with pytest.raises(UnLocDataError, match="'Swimming' is not a class"):
        tal_map(TAL_GT, {"v1": [(0, 1, "Swimming", 0.5)]})
    nan_message = r"results\['v1'\]\[0\]: segment \[nan, nan\] with score 0.9 is not finite"
    with pytest.raises(UnLocDataError, match=nan_message):
        tal_map(TAL_GT, {"v1": [(float("nan"), float("nan"), "Diving", 0.9)]})
    with pytest.raises(UnLocDataError, match="ends before it starts"):
        tal_map(TAL_GT, {"v1": [(100, 95, "Diving", 0.9)]})
    with pytest.raises(UnLocDataError, match=r"tIoU threshold 2 is outside \(0, 1\]"):
        tal_map(TAL_GT, TAL_PRED, tiou_thresholds=[2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dropped = tal_map(TAL_GT, {"v1": TAL_PRED["v1"] + [(100, 95, "Diving", 0.95)]}, [0.5, 0.85], invalid="drop")
    assert dropped["ap_per_class"]["Diving"] == pytest.approx([5 / 6, 0.5])
    assert "left out 1 predictions" in str(caught[0].message)
    kept = tal_map(TAL_GT, {"v1": [(100, 95, "Diving", 0.9)]}, [0.5], invalid="keep")
    assert kept["ap_per_class"]["Diving"] == [0.0]


def test_mr_recall_errors():
    with pytest.raises(UnLocDataError, match=r"query 0 window 0: \[0.0, 10.0, nan\] is not finite"):
        mr_recall([[0, 10]], [[[0, 10, float("nan")]]])
    with pytest.raises(UnLocDataError, match=r"IoU threshold 2 is outside \(0, 1\]"):
        mr_recall([[0, 10]], [[[0, 10, 1.0]]], ious=(0.5, 2))
    assert mr_recall([[0, 10]], [[[3, 3, 1.0]]])["R5@0.3"] == 0.0  # a zero-length moment overlaps nothing


QVH_GT = [{"qid": 1, "duration": 20, "relevant_windows": [[0, 4]], "relevant_clip_ids": [0, 1],
           "saliency_scores": [[4, 4, 2], [1, 2, 3]]},
          {"qid": 2, "duration": 20, "relevant_windows": [[10, 20]], "relevant_clip_ids": [5, 6, 7, 8, 9],
           "saliency_scores": [[2, 2, 2]] * 5}]
QVH_SUB = [{"qid": 1, "pred_relevant_windows": [[0, 4, 0.9], [10, 12, 0.1]],
            "pred_saliency_scores": [0.9, 0.1] + [0] * 8},
           {"qid": 2, "pred_relevant_windows": [[0, 2, 0.3], [10, 20, 0.8]],
            "pred_saliency_scores": [0] * 9 + [1.0]}]


def test_qvh_eval_buckets_and_errors():
    result = qvh_eval(QVH_SUB, QVH_GT)
    assert result["short"]["MR-mAP"]["average"] == 100.0 and result["short"]["MR-R1"]["0.5"] == 50.0
    with pytest.raises(UnLocDataError, match="submission:3: qid 1 already appears on line 1"):
        qvh_eval(QVH_SUB + QVH_SUB[:1], QVH_GT)
    nan_saliency = [dict(QVH_SUB[0], pred_saliency_scores=[float("nan")] * 10), QVH_SUB[1]]
    with pytest.raises(UnLocDataError, match="submission:1: pred_saliency_scores: nan is not a finite number"):
        qvh_eval(nan_saliency, QVH_GT)
    with pytest.raises(UnLocDataError, match="ground truth:1: duration: nan is not a finite number"):
        qvh_eval(QVH_SUB, [dict(QVH_GT[0], duration=float("nan")), QVH_GT[1]])


def test_metrics_resolves_the_later_chapters_lazily():
    from unloc_nb import eval_files, retrieval_metrics
    assert metrics.mr_recall is retrieval_metrics.mr_recall and metrics.unloc_eval is eval_files.unloc_eval
    assert metrics.evaluate_tal_files is eval_files.evaluate_tal_files
    assert metrics.highlight_ap is retrieval_metrics.highlight_ap
    assert issubclass(metrics.UnLocDataError, ValueError)
    with pytest.raises(AttributeError, match="no_such_metric"): metrics.no_such_metric
    with pytest.raises(AttributeError): metrics.__wrapped__
