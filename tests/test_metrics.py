"""unloc_nb.metrics: hand-computed cases for every metric, the real annotation samples of ../shared, and `unloc-eval`.

Numbers marked "official evaluator" were produced by running the public evaluators (activitynet/ActivityNet
Evaluation/eval_detection.py, jayleicn/moment_detr standalone_eval/eval.py) on exactly the inputs built here; the other
expected values are worked out by hand in the comments. Tests that read ../shared/real_annotations are skipped when
that folder is absent.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unloc_nb.metrics import (ANET_TIOU_THRESHOLDS, UnLocDataError, _numpy_sum_rows, evaluate_mr_files,
                              evaluate_qvh_files, evaluate_tal_files, greedy_match, highlight_ap, interpolated_ap,
                              moment_iou, mr_recall, qvh_eval, segment_iou, segmentation_metrics, tal_map, unloc_eval)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real_annotations"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_annotations is not present")


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_lines(path: Path, rows) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------- tIoU
def test_segment_iou_values_zero_length_and_exact_thresholds():
    iou = segment_iou([[0, 10], [5, 15], [0, 5], [3, 3], [20, 30]], [[0, 10], [3, 3]])
    np.testing.assert_allclose(iou[:, 0], [1.0, 1 / 3, 0.5, 0.0, 0.0])
    assert iou[2, 0] == 0.5  # exactly 0.5: a match at threshold 0.5
    assert np.isnan(iou[3, 1])  # two zero-length segments: 0 / 0
    assert segment_iou([[0, 4]], [[0, 3]])[0, 0] == 0.75 == ANET_TIOU_THRESHOLDS[5]  # exactly on a default threshold
    assert segment_iou([[0, 9]], [[0, 10]])[0, 0] == 0.9 > ANET_TIOU_THRESHOLDS[8]  # 0.8999999999999999 in linspace
    # reversed segments are not re-ordered: [10, 5] has negative length and overlaps nothing
    assert segment_iou([[10, 5]], [[0, 20]])[0, 0] == 0.0


def test_moment_iou():
    np.testing.assert_allclose(moment_iou([[0, 10], [5, 15], [0, 5], [4, 4], [12, 20]], [0, 10]), [1, 1 / 3, 0.5, 0, 0])
    assert moment_iou([4, 4], [4, 4]) == 0.0  # empty hull: 0, not NaN
    assert moment_iou([8, 7], [7, 8]) == 0.0  # a reversed segment overlaps nothing


# ------------------------------------------------------------------------------------------- TAL (ActivityNet)
def loop_ap(gt, pred, thresholds):
    """Independent reference: the evaluator's per-class, per-prediction loop (np.argsort order, NaN semantics)."""
    labels = list(dict.fromkeys(lab for segs in gt.values() for *_, lab in segs))
    out = {}
    for label in labels:
        gts = [(v, s, e) for v, segs in gt.items() for s, e, lab in segs if lab == label]
        preds = [(v, s, e, sc) for v, items in pred.items() for s, e, lab, sc in items if lab == label]
        ap = np.zeros(len(thresholds))
        if preds:
            order = np.argsort(np.array([p[3] for p in preds]))[::-1]
            lock = np.zeros((len(thresholds), len(gts)), bool)
            tp = np.zeros((len(thresholds), len(preds)))
            for rank, i in enumerate(order):
                v, s, e, _ = preds[i]
                idx = [j for j, g in enumerate(gts) if g[0] == v]
                if not idx: continue
                ious = segment_iou([[s, e]], [[gts[j][1], gts[j][2]] for j in idx])[0]
                for t, thr in enumerate(thresholds):
                    for k in np.argsort(ious)[::-1]:
                        if ious[k] < thr: break
                        if lock[t, idx[k]]: continue
                        lock[t, idx[k]] = True; tp[t, rank] = 1
                        break
            for t in range(len(thresholds)):
                hits = np.cumsum(tp[t]); prec = hits / np.arange(1, len(preds) + 1); rec = hits / len(gts)
                mprec, mrec = np.r_[0, prec, 0], np.r_[0, rec, 1]
                mprec = np.maximum.accumulate(mprec[::-1])[::-1]
                i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
                ap[t] = np.sum((mrec[i] - mrec[i - 1]) * mprec[i])
        out[label] = ap
    return out


def test_tal_moves_on_to_next_best_unmatched_ground_truth():
    # gt [0,10] and [2,12]; pred 2 = [0,11]: best [0,10] (10/11) is taken -> moves on to [2,12] (tIoU 9/12 = 0.75)
    res = tal_map({"v": [(0, 10, "a"), (2, 12, "a")]}, {"v": [(0, 10, "a", 0.9), (0, 11, "a", 0.8), (1, 10, "a", 0.7)]},
                  [0.5, 0.75, 0.8])
    # 0.5 and 0.75: T T F -> AP 1; 0.8: T F F -> precision 1 at recall 0.5 -> AP 0.5
    np.testing.assert_allclose(res["ap_per_class"]["a"], [1.0, 1.0, 0.5])
    tp = greedy_match(np.zeros(3, int), [[0, 10], [0, 11], [1, 10]], np.zeros(2, int), [[0, 10], [2, 12]], [0.5, 0.8])
    assert tp.tolist() == [[True, True, False], [True, False, False]]


def test_tal_hand_case_unknown_video_and_empty_class():
    gt = {"v1": [(0, 10, "Diving"), (20, 30, "Diving")], "v2": [(5, 9, "Running")]}
    pred = {"v1": [(0, 10, "Diving", 0.9), (1, 10, "Diving", 0.8), (20, 28, "Diving", 0.7)],
            "not-in-gt": [(0, 10, "Diving", 0.6)]}
    res = tal_map(gt, pred, [0.5, 0.85])
    # 0.5: T F T F -> precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    # 0.85: [20,28] has tIoU 0.8 -> T F F F -> AP 1/2. The unknown video counts as a false positive.
    np.testing.assert_allclose(res["ap_per_class"]["Diving"], [5 / 6, 0.5])
    assert res["ap_per_class"]["Running"] == [0.0, 0.0]  # no prediction: AP 0, still in the mean
    np.testing.assert_allclose(res["mAP"], [5 / 12, 1 / 4])
    assert res["average_mAP"] == pytest.approx(1 / 3)
    assert res["tiou_thresholds"] == [0.5, 0.85]
    # without the unknown-video prediction, Diving at 0.5 is T F T -> still 5/6 (the FP comes after the last TP)
    pred2 = {"not-in-gt": [(0, 10, "Diving", 0.95)], "v1": pred["v1"]}
    # the unknown video now ranks first: F T F T -> precision 0, 1/2, 1/3, 1/2 -> AP = 1/2 * 1/2 + 1/2 * 1/2 = 1/2
    assert tal_map(gt, pred2, [0.5])["ap_per_class"]["Diving"] == pytest.approx([0.5])


def test_tal_ties_follow_reversed_argsort():
    # two equal scores: np.argsort keeps them in place, reversed the later-listed one is processed first
    assert np.argsort(np.array([0.5, 0.5]))[::-1].tolist() == [1, 0]
    gt = {"v": [(0, 10, "a")]}
    assert tal_map(gt, {"v": [(50, 60, "a", 0.5), (0, 10, "a", 0.5)]}, [0.5])["average_mAP"] == 1.0
    assert tal_map(gt, {"v": [(0, 10, "a", 0.5), (50, 60, "a", 0.5)]}, [0.5])["average_mAP"] == 0.5
    # integer scores are held as int64, as pandas would: same answer for these small cases
    assert tal_map(gt, {"v": [(50, 60, "a", 1), (0, 10, "a", 1)]}, [0.5])["average_mAP"] == 1.0
    # many tied scores and tied tIoUs: same as the reference loop (which calls np.argsort the same way)
    rng = np.random.default_rng(3)
    gt = {f"v{i}": [(float(s), float(s + l), f"c{rng.integers(3)}") for s, l in
                    zip(rng.integers(0, 20, 4), rng.integers(0, 8, 4))] for i in range(6)}
    pred = {f"v{i}": [(float(s), float(s + l), f"c{rng.integers(3)}", float(rng.choice([0.2, 0.5, 0.9])))
                      for s, l in zip(rng.integers(0, 20, 40), rng.integers(0, 8, 40))] for i in range(7)}
    res = tal_map(gt, pred)
    ref = loop_ap({k: v for k, v in gt.items()}, pred, ANET_TIOU_THRESHOLDS)
    for label, ap in ref.items():
        np.testing.assert_array_equal(res["ap_per_class"][label], ap)


def test_tal_zero_length_segments():
    # zero-length prediction vs zero-length ground truth: tIoU NaN, which matches at every threshold (even elsewhere)
    assert tal_map({"v": [(5, 5, "a")]}, {"v": [(5, 5, "a", 0.9)]})["average_mAP"] == 1.0
    assert tal_map({"v": [(5, 5, "a")]}, {"v": [(3, 3, "a", 0.9)]})["average_mAP"] == 1.0
    # zero-length prediction inside a real ground truth: tIoU 0, a miss
    assert tal_map({"v": [(0, 10, "a")]}, {"v": [(5, 5, "a", 0.9)]})["average_mAP"] == 0.0
    # the zero-length prediction takes the zero-length gt (NaN, tried first); [0, 10] is left for the real one
    res = tal_map({"v": [(0, 10, "a"), (4, 4, "a")]}, {"v": [(4, 4, "a", 0.9), (0, 10, "a", 0.8)]}, [0.5])
    assert res["average_mAP"] == 1.0


def test_tal_exact_threshold_and_no_clipping():
    # [0,5] vs [0,10] is exactly 0.5: a true positive at 0.5, not at 0.55
    assert tal_map({"v": [(0, 10, "a")]}, {"v": [(0, 5, "a", 1.0)]}, [0.5, 0.55])["mAP"] == [1.0, 0.0]
    # segments beyond any duration are used as they are (no clipping): [100, 140] vs [100, 130] = 0.75
    assert tal_map({"v": [(100, 130, "a")]}, {"v": [(100, 140, "a", 1.0)]}, [0.75, 0.8])["mAP"] == [1.0, 0.0]


def test_tal_more_than_64_thresholds_matches_one_at_a_time():
    rng = np.random.default_rng(0)
    gt = {f"v{i}": [(float(s), float(s + l), "a") for s, l in zip(rng.uniform(0, 50, 3), rng.uniform(1, 20, 3))]
          for i in range(5)}
    pred = {f"v{i}": [(float(s), float(s + l), "a", float(rng.random())) for s, l in
                      zip(rng.uniform(0, 50, 30), rng.uniform(1, 20, 30))] for i in range(5)}
    thresholds = np.linspace(0.05, 1.0, 70)
    many = tal_map(gt, pred, thresholds)["mAP"]
    one = [tal_map(gt, pred, [t])["mAP"][0] for t in thresholds]
    assert many == one


def test_interpolated_ap_and_numpy_sum_order():
    tp = np.array([[True, False, True, False, False, True]])
    np.testing.assert_allclose(interpolated_ap(tp, np.array([0, 0, 0, 0, 2, 2]), [2, 3, 1]), [[5 / 6, 0, 0.5]])
    rng = np.random.default_rng(1)
    vals = rng.random((50, 200)) * 10.0 ** rng.integers(-3, 4, (50, 1))
    counts = rng.integers(0, 200, 50)
    assert _numpy_sum_rows(vals, counts).tolist() == [np.sum(v[:c]) for v, c in zip(vals, counts)]


def anet_files(tmp_path, database, results):
    gt = write(tmp_path / "gt.json", {"version": "VERSION 1.3", "taxonomy": [], "database": database})
    pr = write(tmp_path / "pred.json", {"version": "VERSION 1.3", "results": results, "external_data": {}})
    return gt, pr


def test_tal_files_subset_filter_and_errors(tmp_path):
    database = {"a": {"subset": "validation", "duration": 20.0, "annotations": [{"segment": [0, 10], "label": "x"}]},
                "b": {"subset": "training", "annotations": [{"segment": [0, 10], "label": "only-train"},
                                                            {"segment": [0, 10], "label": "x"}]}}
    results = {"a": [{"score": 0.9, "segment": [0, 10], "label": "x"}],
               "b": [{"score": 0.95, "segment": [0, 10], "label": "x"}]}  # a training video: a false positive
    gt, pr = anet_files(tmp_path, database, results)
    res = evaluate_tal_files(gt, pr, tiou_thresholds=[0.5])
    assert list(res["ap_per_class"]) == ["x"] and res["mAP"] == [0.5]  # F T: precision 1/2 at recall 1
    assert evaluate_tal_files(gt, pr, subset="training", tiou_thresholds=[0.5])["mAP"] == [0.5]  # x: T at 0.95; only-train: no prediction
    # a label of another subset is not a class of the evaluated ground truth
    _, bad = anet_files(tmp_path, database, {"a": [{"score": 0.9, "segment": [0, 10], "label": "only-train"}]})
    with pytest.raises(UnLocDataError, match=r"pred\.json: results\['a'\]\[0\]: label 'only-train' is not a class"):
        evaluate_tal_files(gt, bad)
    _, bad = anet_files(tmp_path, database, {"a": [{"score": 0.9, "label": "x"}]})
    with pytest.raises(UnLocDataError, match=r"pred\.json: results\['a'\]\[0\]: missing key 'segment'"):
        evaluate_tal_files(gt, bad)
    with pytest.raises(UnLocDataError, match=r"pred\.json: missing key 'results'"):
        evaluate_tal_files(gt, write(tmp_path / "pred.json", {"version": "1.3"}))
    (tmp_path / "broken.json").write_text('{"database": {', encoding="utf-8")
    with pytest.raises(UnLocDataError, match=r"broken\.json: not valid JSON"):
        evaluate_tal_files(tmp_path / "broken.json", pr)
    with pytest.raises(UnLocDataError, match=r"no annotated video in subset 'testing'"):
        evaluate_tal_files(gt, pr, subset="testing")


def anet_real_results():
    "The real sample_detection_prediction entries (first 40 + quirks): the ActivityNet validation ground truth."
    results = {}
    for name in ("sample_detection_prediction.first40.json", "sample_detection_prediction.quirks.json"):
        results.update(json.loads((REAL / "activitynet13" / name).read_text(encoding="utf-8"))["results"])
    return results


def anet_noisy_results(results):
    "A seeded noisy submission for the real ground truth: jittered copies, duplicates, wrong videos, tied scores."
    rng = np.random.default_rng(2024)
    labels = sorted({r["label"] for items in results.values() for r in items})
    videos = list(results)
    noisy = {}
    for vid, items in results.items():
        out = []
        for r in items:
            s, e = r["segment"]
            length = max(e - s, 1.0)
            for _ in range(3):
                js, je = s + rng.normal(0, 0.2) * length, e + rng.normal(0, 0.2) * length
                out.append({"score": float(rng.choice([0.5, rng.random()])), "segment": [js, je], "label": r["label"]})
        for _ in range(2):
            out.append({"score": float(rng.random()), "segment": [float(rng.uniform(0, 100)), float(rng.uniform(100, 200))],
                        "label": labels[rng.integers(len(labels))]})
        noisy[vid] = out
    noisy["not_a_video"] = [{"score": 0.99, "segment": [0, 10], "label": labels[0]}]
    noisy[videos[0]] += [{"score": 0.5, "segment": list(results[videos[0]][0]["segment"]), "label": results[videos[0]][0]["label"]}]
    return noisy


@needs_real
def test_tal_real_sample_ground_truth_as_prediction(tmp_path):
    results = anet_real_results()
    zero = [(v, r["segment"]) for v, items in results.items() for r in items if r["segment"][0] == r["segment"][1]]
    assert len(zero) == 3  # [4.10395084399376, 4.10395084399376], [142.281, 142.281], [0, 0] (README quirks)
    database = {v: {"subset": "validation", "annotations": [{"segment": r["segment"], "label": r["label"]} for r in items]}
                for v, items in results.items()}
    gt, pr = anet_files(tmp_path, database, results)
    res = evaluate_tal_files(gt, pr)
    assert res["mAP"] == [1.0] * 10 and res["average_mAP"] == 1.0  # zero-length segments match themselves (NaN)
    assert {"Mooping floor", "Playing guitarra", "High jump", "Playing kickball"} <= set(res["ap_per_class"])


@needs_real
def test_tal_real_sample_noisy_submission_matches_official_evaluator(tmp_path):
    results = anet_real_results()
    database = {v: {"subset": "validation", "annotations": [{"segment": r["segment"], "label": r["label"]} for r in items]}
                for v, items in results.items()}
    gt, pr = anet_files(tmp_path, database, anet_noisy_results(results))
    # the jitter reverses 6 short segments: refused by default, scored as the official evaluator does with "keep"
    with pytest.raises(UnLocDataError, match=r"pred\.json: results\['.+'\]\[\d+\]: segment .* ends before it starts"):
        evaluate_tal_files(gt, pr)
    res = evaluate_tal_files(gt, pr, invalid="keep")
    # official evaluator (check_status=False) on the same two files:
    np.testing.assert_allclose(res["mAP"], OFFICIAL_ANET_NOISY_MAP, rtol=0, atol=1e-12)
    assert res["average_mAP"] == pytest.approx(OFFICIAL_ANET_NOISY_AVERAGE, abs=1e-12)


OFFICIAL_ANET_NOISY_MAP = [  # official evaluator (check_status=False) on the same two files
    0.6825716899078472, 0.6752800232411805, 0.628118429038282, 0.5320033115169144, 0.4236699781835811,
    0.38271548763736263, 0.31775495337995335, 0.18883462206652996, 0.10934895833333333, 0.02769345238095238]
OFFICIAL_ANET_NOISY_AVERAGE = 0.3967990905685937


# ------------------------------------------------------------------------------------------------ QVHighlights
def qvh_demo():
    gt = [{"qid": 1, "duration": 20, "relevant_windows": [[0, 4]], "relevant_clip_ids": [0, 1],
           "saliency_scores": [[4, 4, 2], [1, 2, 3]]},
          {"qid": 2, "duration": 20, "relevant_windows": [[10, 20]], "relevant_clip_ids": [5, 6, 7, 8, 9],
           "saliency_scores": [[2, 2, 2]] * 5}]
    sub = [{"qid": 1, "pred_relevant_windows": [[0, 4, 0.9], [10, 12, 0.1]], "pred_saliency_scores": [0.9, 0.1] + [0] * 8},
           {"qid": 2, "pred_relevant_windows": [[0, 2, 0.3], [10, 20, 0.8]], "pred_saliency_scores": [0] * 9 + [1.0]}]
    return gt, sub


def test_qvh_hand_case_keys_r1_first_listed_and_buckets():
    gt, sub = qvh_demo()
    res = qvh_eval(sub, gt)
    assert list(res) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full", "long", "middle", "short"]
    assert list(res["brief"]) == ["MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5",
                                  "MR-full-mAP@0.75", "MR-long-mAP", "MR-middle-mAP", "MR-short-mAP",
                                  "HL-min-Fair-mAP", "HL-min-Fair-Hit1", "HL-min-Good-mAP", "HL-min-Good-Hit1",
                                  "HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1"]
    assert list(res["full"]["MR-mAP"]) == ["0.5", "0.55", "0.6", "0.65", "0.7", "0.75", "0.8", "0.85", "0.9", "0.95",
                                           "average"]
    assert res["full"]["MR-mAP"]["average"] == 100.0  # by score, both true windows come first
    assert res["full"]["MR-R1"]["0.5"] == 50.0  # query 2's first *listed* window [0, 2] misses
    assert res["middle"]["MR-mAP"]["average"] is None  # windows of 4 s and 10 s: (10, 30] is empty
    assert res["short"]["MR-R1"]["0.7"] == 50.0
    # Hit@1: q1 top clip 0 has scores (4, 4, 2); q2 top clip 9 has (2, 2, 2)
    assert res["brief"]["HL-min-Fair-Hit1"] == 100.0 and res["brief"]["HL-min-VeryGood-Hit1"] == 50.0
    # HL mAP, VeryGood (>= 4): q1 annotators 1, 2 have clip 0 positive and ranked first (AP 1), annotator 3 has no 4
    # (AP 0); q2 has no 4 at all (AP 0): mean over 6 = 2/6
    assert res["brief"]["HL-min-VeryGood-mAP"] == 33.33


def test_qvh_only_first_10_windows_ties_and_match_number():
    gt = [{"qid": 7, "duration": 150, "relevant_windows": [[0, 10]], "relevant_clip_ids": [0], "saliency_scores": [[1, 1, 1]]}]
    # 10 wrong windows listed first, the right one 11th: it does not count, even with the highest score
    sub = [{"qid": 7, "pred_relevant_windows": [[50, 60, 0.5]] * 10 + [[0, 10, 1.0]]}]
    assert qvh_eval(sub, gt)["full"]["MR-mAP"]["average"] == 0.0
    # equal scores keep their listed order (Python's stable sort): miss then hit -> AP 0.5
    sub = [{"qid": 7, "pred_relevant_windows": [[50, 60, 0.5], [0, 10, 0.5]]}]
    assert qvh_eval(sub, gt)["full"]["MR-mAP"]["0.5"] == 50.0
    with pytest.raises(UnLocDataError, match="qids must match"):
        qvh_eval(sub + [{"qid": 8, "pred_relevant_windows": [[0, 1, 1.0]]}], gt)
    res = qvh_eval(sub + [{"qid": 8, "pred_relevant_windows": [[0, 1, 1.0]]}], gt, match_number=False)
    assert res["full"]["MR-mAP"]["0.5"] == 50.0


def test_highlight_ap_levels_padding_and_constant_labels():
    # levels {0.9}, {0.8, 0.8}, {0.1} with labels 1 | 0 1 | 0: precision 1, 2/3 -> mean 5/6
    np.testing.assert_allclose(highlight_ap(np.array([[0.9, 0.8, 0.8, 0.1]]), np.array([[1, 0, 1, 0]]),
                                            np.ones((1, 4), bool)), [5 / 6])
    # interpolation: labels 0 1 1 by decreasing score -> precision 1/2 then 2/3; the envelope lifts 1/2 to 2/3
    np.testing.assert_allclose(highlight_ap(np.array([[3.0, 2.0, 1.0]]), np.array([[0, 1, 1]]), np.ones((1, 3), bool)),
                               [2 / 3])
    assert highlight_ap(np.zeros((2, 3)), np.array([[1, 1, 1], [0, 0, 0]]), np.ones((2, 3), bool)).tolist() == [1.0, 0.0]


def test_qvh_saliency_cut_and_padded_to_the_clip_count():
    gt = [{"qid": 1, "duration": 8, "relevant_windows": [[0, 2]], "relevant_clip_ids": [3], "saliency_scores": [[4, 4, 4]]}]
    # 4 clips; the prediction has 6 scores: only the first 4 count for mAP, but Hit@1 uses the full list's argmax
    sub = [{"qid": 1, "pred_relevant_windows": [[0, 2, 1.0]], "pred_saliency_scores": [0.1, 0.2, 0.3, 0.4, 9.0, 0.0]}]
    res = qvh_eval(sub, gt)
    assert res["HL-min-Fair"] == {"HL-mAP": 100.0, "HL-Hit1": 0.0}  # clip 4 lies beyond the video: no hit
    sub = [{"qid": 1, "pred_relevant_windows": [[0, 2, 1.0]], "pred_saliency_scores": [0.5, 0.4]}]
    # levels 0.5 (neg), 0.4 (neg), 0 (clips 2, 3: one positive) -> precision at that level 1/4
    assert qvh_eval(sub, gt)["HL-min-Fair"]["HL-mAP"] == 25.0


def qvh_real():
    gt = [json.loads(line) for line in
          (REAL / "qvhighlights" / "highlight_val_release.first40.jsonl").read_text(encoding="utf-8").splitlines()]
    gt += [json.loads(line) for line in
           (REAL / "qvhighlights" / "highlight_val_release.quirks.jsonl").read_text(encoding="utf-8").splitlines()]
    seen, out = set(), []
    for d in gt:  # a quirk line may repeat a first-40 line
        if d["qid"] not in seen: seen.add(d["qid"]); out.append(d)
    return out


def qvh_noisy_submission(gt):
    "A seeded submission for the real ground truth: jittered windows, tied scores, saliency of odd lengths."
    rng = np.random.default_rng(7)
    sub = []
    for d in gt:
        windows = []
        for s, e in d["relevant_windows"]:
            windows.append([float(s + rng.choice([0, 2, -2, 1.5])), float(e + rng.choice([0, 2, -4])),
                            float(rng.choice([0.5, rng.random()]))])
        for _ in range(int(rng.integers(0, 12))):
            s = float(rng.integers(0, 70) * 2)
            windows.append([s, s + float(rng.integers(1, 20) * 2), float(rng.choice([0.5, rng.random()]))])
        rng.shuffle(windows)
        n_clips = int(rng.choice([75, 70, 80, int(d["duration"] / 2)]))
        saliency = [float(rng.choice([0.0, 0.5, rng.random()])) for _ in range(n_clips)]
        sub.append({"qid": d["qid"], "query": d["query"], "vid": d["vid"], "pred_relevant_windows": windows,
                    "pred_saliency_scores": saliency})
    return sub


@needs_real
def test_qvh_real_ground_truth_as_submission():
    gt = qvh_real()
    sub = [{"qid": d["qid"], "pred_relevant_windows": [[s, e, 1.0] for s, e in d["relevant_windows"]],
            "pred_saliency_scores": [0.0] * 75} for d in gt]
    for d, s in zip(gt, sub):  # saliency = sum of the 3 annotators on the relevant clips
        for cid, scores in zip(d["relevant_clip_ids"], d["saliency_scores"]):
            s["pred_saliency_scores"][cid] = float(sum(scores))
    res = qvh_eval(sub, gt)
    assert res["full"]["MR-mAP"]["average"] == 100.0 and res["full"]["MR-R1"]["0.95"] == 100.0
    # in a length bucket the other windows of a query stay in the submission (only the ground truth is filtered):
    # with equal scores they come in listed order, false positives before or after the true one
    assert res["brief"]["MR-short-mAP"] < 100.0
    assert res["brief"]["HL-min-Fair-Hit1"] == 100.0  # the top clip has the largest sum: some annotator gave >= 2


@needs_real
def test_qvh_real_noisy_submission_matches_official_evaluator(tmp_path):
    gt = qvh_real()
    gt_file = write_lines(tmp_path / "gt.jsonl", gt)
    sub_file = write_lines(tmp_path / "sub.jsonl", qvh_noisy_submission(gt))
    assert json.dumps(evaluate_qvh_files(gt_file, sub_file)) == json.dumps(OFFICIAL_QVH_NOISY)


OFFICIAL_QVH_NOISY = json.loads(  # official evaluator (moment_detr standalone_eval/eval.py) on the same two files
    '{"brief": {"MR-full-R1@0.5": 37.78, "MR-full-R1@0.7": 31.11, "MR-full-mAP": 42.75, "MR-full-mAP@0.5": 55.14, '
    '"MR-full-mAP@0.75": 47.91, "MR-long-mAP": 56.6, "MR-middle-mAP": 37.5, "MR-short-mAP": 13.17, "HL-min-Fair-mAP": '
    '34.68, "HL-min-Fair-Hit1": 26.67, "HL-min-Good-mAP": 26.9, "HL-min-Good-Hit1": 26.67, "HL-min-VeryGood-mAP": '
    '16.69, "HL-min-VeryGood-Hit1": 22.22}, "HL-min-Fair": {"HL-mAP": 34.68, "HL-Hit1": 26.67}, "HL-min-Good": '
    '{"HL-mAP": 26.9, "HL-Hit1": 26.67}, "HL-min-VeryGood": {"HL-mAP": 16.69, "HL-Hit1": 22.22}, "full": {"MR-mAP": '
    '{"0.5": 55.14, "0.55": 54.34, "0.6": 53.02, "0.65": 49.99, "0.7": 49.43, "0.75": 47.91, "0.8": 41.83, "0.85": '
    '31.99, "0.9": 29.21, "0.95": 14.67, "average": 42.75}, "MR-R1": {"0.5": 37.78, "0.55": 35.56, "0.6": 33.33, '
    '"0.65": 31.11, "0.7": 31.11, "0.75": 31.11, "0.8": 28.89, "0.85": 17.78, "0.9": 15.56, "0.95": 4.44}}, "long": '
    '{"MR-mAP": {"0.5": 62.71, "0.55": 62.71, "0.6": 62.71, "0.65": 57.35, "0.7": 57.35, "0.75": 57.35, "0.8": 57.35, '
    '"0.85": 53.78, "0.9": 51.99, "0.95": 42.71, "average": 56.6}, "MR-R1": {"0.5": 28.57, "0.55": 28.57, "0.6": '
    '28.57, "0.65": 28.57, "0.7": 28.57, "0.75": 28.57, "0.8": 28.57, "0.85": 21.43, "0.9": 21.43, "0.95": 14.29}}, '
    '"middle": {"MR-mAP": {"0.5": 52.42, "0.55": 51.12, "0.6": 49.3, "0.65": 47.74, "0.7": 47.29, "0.75": 45.22, '
    '"0.8": 36.32, "0.85": 23.22, "0.9": 20.09, "0.95": 2.3, "average": 37.5}, "MR-R1": {"0.5": 40.62, "0.55": 37.5, '
    '"0.6": 34.38, "0.65": 31.25, "0.7": 31.25, "0.75": 31.25, "0.8": 28.12, "0.85": 15.62, "0.9": 12.5, "0.95": '
    '0.0}}, "short": {"MR-mAP": {"0.5": 16.63, "0.55": 16.63, "0.6": 15.24, "0.65": 14.13, "0.7": 12.46, "0.75": '
    '12.46, "0.8": 12.46, "0.85": 10.56, "0.9": 10.56, "0.95": 10.56, "average": 13.17}, "MR-R1": {"0.5": 0.0, '
    '"0.55": 0.0, "0.6": 0.0, "0.65": 0.0, "0.7": 0.0, "0.75": 0.0, "0.8": 0.0, "0.85": 0.0, "0.9": 0.0, "0.95": '
    '0.0}}}')


def test_qvh_malformed_lines(tmp_path):
    gt, sub = qvh_demo()
    gt_file = write_lines(tmp_path / "gt.jsonl", gt)
    bad = [dict(sub[0]), {k: v for k, v in sub[1].items() if k != "pred_saliency_scores"}]
    with pytest.raises(UnLocDataError, match=r"sub\.jsonl:2: missing key 'pred_saliency_scores'"):
        evaluate_qvh_files(gt_file, write_lines(tmp_path / "sub.jsonl", bad))
    (tmp_path / "sub.jsonl").write_text(json.dumps(sub[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(UnLocDataError, match=r"sub\.jsonl:2: not valid JSON"):
        evaluate_qvh_files(gt_file, tmp_path / "sub.jsonl")
    bad_gt = [dict(gt[0], relevant_clip_ids=[0, 10]), gt[1]]
    with pytest.raises(UnLocDataError, match=r"gt\.jsonl:1: relevant_clip_ids must be clip indices in \[0, 10\)"):
        evaluate_qvh_files(write_lines(tmp_path / "gt.jsonl", bad_gt), write_lines(tmp_path / "sub.jsonl", sub))


# --------------------------------------------------------------------------------------------- moment retrieval
def test_mr_recall_hand_case():
    res = mr_recall([[0, 10], [20, 30], [0, 4], [0, 10]],
                    [[[0, 5, 0.2], [0, 10, 0.9]],  # sorted by score: [0,10] first, IoU 1
                     [[22, 30, 0.5], [10, 20, 0.7]],  # top-1 [10,20] IoU 0; top-2 [22,30] IoU 0.8
                     [],  # none: a miss, IoU 0 in the mean
                     [[0, 5, 0.5], [0, 3, 0.5]]])  # tie keeps the listed order: top-1 [0,5], exactly 0.5
    assert res == pytest.approx({"R1@0.3": 2 / 4, "R1@0.5": 2 / 4, "R1@0.7": 1 / 4, "R5@0.3": 3 / 4, "R5@0.5": 3 / 4,
                                 "R5@0.7": 2 / 4, "mIoU": (1 + 0 + 0 + 0.5) / 4})
    assert list(res) == ["R1@0.3", "R1@0.5", "R1@0.7", "R5@0.3", "R5@0.5", "R5@0.7", "mIoU"]
    assert mr_recall([[0, 10]], [[[3, 3, 1.0]] * 5])["R5@0.3"] == 0.0  # zero-length moments overlap nothing
    # only the top 5 count for R@5
    assert mr_recall([[0, 10]], [[[50, 60, 0.9]] * 5 + [[0, 10, 0.1]]])["R5@0.3"] == 0.0


def mr_loop(queries, preds):
    "Independent reference for R@n / mIoU: plain loops."
    out = {f"R{n}@{m}": 0.0 for n in (1, 5) for m in (0.3, 0.5, 0.7)}
    miou = 0.0
    for (s, e), p in zip(queries, preds):
        ranked = sorted(p, key=lambda w: -w[2])
        ious = []
        for ps, pe, _ in ranked[:5]:
            inter = max(0.0, min(pe, e) - max(ps, s)); hull = max(pe, e) - min(ps, s)
            ious.append(inter / hull if hull != 0 else 0.0)
        miou += ious[0] if ious else 0.0
        for n in (1, 5):
            for m in (0.3, 0.5, 0.7):
                out[f"R{n}@{m}"] += any(i >= m for i in ious[:n])
    return {**{k: v / len(queries) for k, v in out.items()}, "mIoU": miou / len(queries)}


@needs_real
def test_mr_real_charades_file_against_a_loop(tmp_path):
    gt_path = REAL / "charades_sta" / "charades_sta_test.first150.txt"
    lines = [l for l in gt_path.read_text(encoding="utf-8").split("\n") if l.strip()]
    rng = np.random.default_rng(5)
    rows, queries, preds = [], [], []
    for i, line in enumerate(lines):
        head, sent = line.split("##", 1)
        vid, s, e = head.split(); s, e = float(s), float(e)
        windows = [[s + float(rng.normal(0, 2)), e + float(rng.normal(0, 2)), float(rng.random())]
                   for _ in range(int(rng.integers(0, 8)))]
        queries.append((s, e)); preds.append(windows)
        if windows or i % 2: rows.append({"vid": vid, "query": sent, "pred_relevant_windows": windows})
    # the jitter reverses 8 windows: refused by default; with "keep" they are scored (IoU 0), as the loop does
    reversed_window = r"pred\.jsonl: line \d+: pred_relevant_windows\[\d+\] = .* ends before it starts"
    with pytest.raises(UnLocDataError, match=reversed_window):
        evaluate_mr_files(gt_path, write_lines(tmp_path / "pred.jsonl", rows))
    res = evaluate_mr_files(gt_path, tmp_path / "pred.jsonl", invalid="keep")
    ref = mr_loop(queries, preds)
    assert res.keys() == ref.keys()
    for k in ref: assert res[k] == pytest.approx(ref[k], abs=1e-12)


def test_mr_files_repeated_queries_and_errors(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("V1 0.0 10.0##person opens door.\nV1 20.0 30.0##person opens door.\nV2 0 4##a  cup \n", encoding="utf-8")
    # one prediction line serves both repeats of (V1, "person opens door.")
    one = write_lines(tmp_path / "p.jsonl", [{"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[0, 10, 1]]}])
    assert evaluate_mr_files(gt, one)["R1@0.7"] == pytest.approx(1 / 3)
    # two prediction lines: the j-th line scores the j-th repeat
    two = write_lines(tmp_path / "p.jsonl", [{"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[0, 10, 1]]},
                                             {"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[20, 30, 1]]},
                                             {"vid": "V2", "query": "  a  cup", "pred_relevant_windows": [[0, 4, 1]]}])
    assert evaluate_mr_files(gt, two)["R1@0.7"] == 1.0  # surrounding whitespace of the query is ignored
    three = write_lines(tmp_path / "p.jsonl", [{"vid": "V2", "query": "a  cup", "pred_relevant_windows": []}] * 2)
    with pytest.raises(UnLocDataError, match=r"p\.jsonl:2: one more prediction line for vid 'V2'"):
        evaluate_mr_files(gt, three)
    unknown = write_lines(tmp_path / "p.jsonl", [{"vid": "V3", "query": "x", "pred_relevant_windows": []}])
    with pytest.raises(UnLocDataError, match=r"p\.jsonl:1: vid 'V3' with query 'x' is not in"):
        evaluate_mr_files(gt, unknown)
    bad = write_lines(tmp_path / "p.jsonl", [{"vid": "V2", "query": "a  cup", "pred_relevant_windows": [[0, 4]]}])
    with pytest.raises(UnLocDataError, match=r"p\.jsonl:1: pred_relevant_windows\[0\] = \[0, 4\] should be"):
        evaluate_mr_files(gt, bad)
    (tmp_path / "bad.txt").write_text("V1 0.0##no end\n", encoding="utf-8")
    with pytest.raises(UnLocDataError, match=r"bad\.txt:1: expected 'vid start end##sentence'"):
        evaluate_mr_files(tmp_path / "bad.txt", one)


@needs_real
def test_mr_activitynet_captions_ground_truth(tmp_path):
    path = REAL / "activitynet_captions" / "val_1.first40.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = [{"vid": vid, "query": sent, "pred_relevant_windows": [[*ts, 1.0]]}
            for vid, entry in data.items() for ts, sent in zip(entry["timestamps"], entry["sentences"])]
    res = evaluate_mr_files(path, write_lines(tmp_path / "p.jsonl", rows))
    # every query predicts its own ground truth (leading spaces of the sentences are stripped on both sides)
    assert res["R1@0.7"] == 1.0 and res["mIoU"] == 1.0


# ------------------------------------------------------------------------------------------- action segmentation
def test_segmentation_metrics_hand_case_and_torch_input():
    import torch
    logits = np.array([[[2.0, -1.0, -1.0, 0.5], [1.0, 3.0, -2.0, -0.5]]])  # (B=1, C=2, N=4)
    labels, mask = np.array([[0, 1, -1, 1]]), np.array([[True, True, True, False]])
    res = segmentation_metrics(logits, labels, mask)
    assert res == {"frame_accuracy": 1.0, "mAP": 1.0}
    assert segmentation_metrics(torch.tensor(logits), torch.tensor(labels), torch.tensor(mask)) == res
    # frame 0's max logit is exactly 0: background (<= 0), so its label 1 is missed
    res = segmentation_metrics(np.array([[[0.0, 1.0], [0.0, -1.0]]]), np.array([[1, 0]]))
    assert res["frame_accuracy"] == 0.5
    # class 0: frames ranked 1.0 (pos), 0.0 (neg) -> AP 1; class 1: 0.0 (pos), -1.0 (neg) -> AP 1
    assert res["mAP"] == 1.0
    # ties form one level: class 0 scores [1, 1, 1] with one positive -> precision 1/3 at recall 1
    assert segmentation_metrics(np.array([[[1.0, 1.0, 1.0]]]), np.array([[0, -1, -1]]))["mAP"] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------------- unloc-eval
def run_cli(*args):
    exe = shutil.which("unloc-eval", path=str(Path(sys.executable).parent)) or shutil.which("unloc-eval")
    cmd = [exe, *args] if exe else [sys.executable, "-c", "import sys; from unloc_nb.metrics import unloc_eval; "
                                    "sys.exit(unloc_eval())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_cli_tal(tmp_path):
    database = {"v1": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "Diving"},
                                                               {"segment": [20, 30], "label": "Diving"}]},
                "v2": {"subset": "validation", "annotations": [{"segment": [5, 9], "label": "Running"}]}}
    results = {"v1": [{"score": 0.9, "segment": [0, 10], "label": "Diving"},
                      {"score": 0.8, "segment": [1, 10], "label": "Diving"},
                      {"score": 0.7, "segment": [20, 28], "label": "Diving"}],
               "unknown": [{"score": 0.6, "segment": [0, 10], "label": "Diving"}]}
    gt, pr = anet_files(tmp_path, database, results)
    out = run_cli("--task", "tal", "--ground-truth", str(gt), "--predictions", str(pr), "--subset", "validation")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(res) == ["tiou_thresholds", "mAP", "average_mAP", "ap_per_class"]
    assert res["tiou_thresholds"] == ANET_TIOU_THRESHOLDS.tolist()
    # Diving: 5/6 up to 0.8, then [20, 28] (0.8) fails -> 1/2; Running: 0
    expected = [5 / 6 if t <= 0.8 else 0.5 for t in ANET_TIOU_THRESHOLDS]
    np.testing.assert_allclose(res["ap_per_class"]["Diving"], expected)
    assert res["average_mAP"] == pytest.approx(np.mean(expected) / 2)


def test_cli_mr_and_qvh(tmp_path):
    gt = tmp_path / "charades.txt"
    gt.write_text("AO8RW 0.0 6.9##a person is putting a book on a shelf.\nAO8RW 10.0 20.0##person opens the door.\n",
                  encoding="utf-8")
    pr = write_lines(tmp_path / "pred.jsonl", [{"vid": "AO8RW", "query": "a person is putting a book on a shelf.",
                                                "pred_relevant_windows": [[0.0, 6.9, 0.8], [5, 9, 0.1]]}])
    out = run_cli("--task", "mr", "--ground-truth", str(gt), "--predictions", str(pr))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"R1@0.3": 0.5, "R1@0.5": 0.5, "R1@0.7": 0.5,
                                                                 "R5@0.3": 0.5, "R5@0.5": 0.5, "R5@0.7": 0.5, "mIoU": 0.5}
    qgt, qsub = qvh_demo()
    out = run_cli("--task", "qvh", "--ground-truth", str(write_lines(tmp_path / "gt.jsonl", qgt)),
                  "--predictions", str(write_lines(tmp_path / "sub.jsonl", qsub)))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(qvh_eval(qsub, qgt)))


def test_cli_malformed_files_exit_nonzero_with_a_clear_message(tmp_path):
    database = {"v1": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "Diving"}]}}
    gt, _ = anet_files(tmp_path, database, {})
    bad = write(tmp_path / "bad_label.json", {"results": {"v1": [{"score": 0.9, "segment": [0, 10], "label": "Surfing"}]}})
    out = run_cli("--task", "tal", "--ground-truth", str(gt), "--predictions", str(bad))
    assert out.returncode == 2 and out.stdout == ""
    assert "bad_label.json: results['v1'][0]: label 'Surfing' is not a class of the ground truth" in out.stderr
    (tmp_path / "broken.json").write_text('{"results": {"v1": [', encoding="utf-8")
    out = run_cli("--task", "tal", "--ground-truth", str(gt), "--predictions", str(tmp_path / "broken.json"))
    assert out.returncode == 2 and "broken.json: not valid JSON" in out.stderr


def test_unloc_eval_malformed_in_process(tmp_path, capsys):
    database = {"v1": {"subset": "validation", "annotations": [{"segment": [0, 10], "label": "Diving"}]}}
    gt, _ = anet_files(tmp_path, database, {})
    missing = write(tmp_path / "missing.json", {"results": {"v1": [{"segment": [0, 10], "label": "Diving"}]}})
    assert unloc_eval(["--task", "tal", "--ground-truth", str(gt), "--predictions", str(missing)]) == 2
    assert "missing.json: results['v1'][0]: missing key 'score'" in capsys.readouterr().err
    assert unloc_eval(["--task", "mr", "--ground-truth", str(tmp_path / "nope.txt"),
                       "--predictions", str(missing)]) == 2
    assert "nope.txt: cannot read" in capsys.readouterr().err
    qgt, qsub = qvh_demo()
    gt_file, sub_file = write_lines(tmp_path / "gt.jsonl", qgt), write_lines(tmp_path / "sub.jsonl", qsub[:1])
    assert unloc_eval(["--task", "qvh", "--ground-truth", str(gt_file), "--predictions", str(sub_file)]) == 2
    assert "qids must match" in capsys.readouterr().err
    assert unloc_eval(["--task", "qvh", "--shared-qids-only", "--ground-truth", str(gt_file),
                       "--predictions", str(sub_file)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["full"]["MR-mAP"]["average"] == 100.0


def test_unloc_eval_in_process(tmp_path, capsys):
    qgt, qsub = qvh_demo()
    status = unloc_eval(["--task", "qvh", "--ground-truth", str(write_lines(tmp_path / "gt.jsonl", qgt)),
                         "--predictions", str(write_lines(tmp_path / "sub.jsonl", qsub))])
    assert status == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["brief"]["MR-full-R1@0.5"] == 50.0
