"""Vectorised ActivityNet detection mAP (`unloc_nb.metrics.tal_map`) versus a plain per-class, per-prediction loop.

A synthetic ActivityNet-sized case: 5000 videos, 200 classes, 1-3 ground-truth instances per video and 100
predictions per video (half of them jittered copies of the video's ground truth, half random classes and segments;
scores uniform). The loop reference below is the textbook algorithm written out directly: for every class, for every
prediction in decreasing score order, for every threshold, walk the video's ground truths from best to worst tIoU and
take the first unmatched one above the threshold; then the VOC-interpolated AP with explicit loops.

Two timings are compared with the loop reference, which starts from integer-coded numpy arrays (videos and labels as
ints; its conversion to Python lists is inside its timing):
- the metric: `tal_average_precision` on the same arrays (the main ratio);
- end to end: `tal_map` on the Python dicts {video: [(start, end, label, score)]}, conversion included.
The script prints whether the APs are equal, the largest difference, the times and the speed ratios.

usage: python bench/metrics_speed.py [--videos 5000] [--classes 200] [--per-video 100] [--runs 3] [--seed 0]
"""
import argparse, os, platform, time
import numpy as np
from unloc_nb.metrics import ANET_TIOU_THRESHOLDS, tal_average_precision, tal_map


def make_case(videos: int, classes: int, per_video: int, seed: int):
    "Ground truth {video: [(start, end, label)]} and predictions {video: [(start, end, label, score)]}."
    rng = np.random.default_rng(seed)
    labels = [f"class {c:03d}" for c in range(classes)]
    gt, pred, durations = {}, {}, {}
    for v in range(videos):
        duration = durations[v] = rng.uniform(30, 240)
        video_classes = rng.choice(classes, size=rng.integers(1, 3), replace=False)
        segs = []
        for _ in range(rng.integers(1, 4)):
            start = rng.uniform(0, duration * 0.8)
            segs.append((start, min(duration, start + rng.uniform(2, duration * 0.5)), labels[rng.choice(video_classes)]))
        gt[f"video_{v:05d}"] = segs
    known = sorted({label for segs in gt.values() for _, _, label in segs})  # a prediction must use a known class
    for v, (video, segs) in enumerate(gt.items()):
        items = []
        for k in range(per_video):
            if k % 2 == 0:  # a jittered copy of one ground truth
                start, end, label = segs[rng.integers(len(segs))]
                length = end - start
                start, end = start + rng.normal(0, 0.15) * length, end + rng.normal(0, 0.15) * length
            else:  # a random class and segment
                label = known[rng.integers(len(known))]
                start = rng.uniform(0, durations[v]); end = start + rng.uniform(1, durations[v] / 2)
            items.append((float(start), float(end), label, float(rng.random())))
        pred[video] = items
    return gt, pred


def encode(gt: dict, pred: dict):
    "Integer-coded arrays: videos and labels numbered in order of first appearance (labels from the ground truth)."
    videos = {v: i for i, v in enumerate(dict.fromkeys([*gt, *pred]))}
    classes = {}
    gt_rows = [(videos[v], s, e, classes.setdefault(label, len(classes))) for v, segs in gt.items() for s, e, label in segs]
    pr_rows = [(videos[v], s, e, classes[label], score) for v, items in pred.items() for s, e, label, score in items]
    gt_a, pr_a = np.array(gt_rows, dtype=np.float64), np.array(pr_rows, dtype=np.float64)
    return (gt_a[:, 0].astype(np.int64), gt_a[:, 1:3], gt_a[:, 3].astype(np.int64), pr_a[:, 0].astype(np.int64),
            pr_a[:, 1:3], pr_a[:, 3].astype(np.int64), pr_a[:, 4], len(classes))


def loop_reference(gt_video, gt_seg, gt_label, pred_video, pred_seg, pred_label, pred_score, num_classes,
                   thresholds) -> np.ndarray:
    "AP (T, C) with one Python loop over predictions per class and explicit loops for the AP."
    thresholds = list(thresholds)
    ap = np.zeros((len(thresholds), num_classes))
    gt_of_class = [{} for _ in range(num_classes)]  # class -> video -> [(index in class, start, end)]
    n_gt_of_class = [0] * num_classes
    for video, (start, end), label in zip(gt_video.tolist(), gt_seg.tolist(), gt_label.tolist()):
        gt_of_class[label].setdefault(video, []).append((n_gt_of_class[label], start, end))
        n_gt_of_class[label] += 1
    pred_of_class = [[] for _ in range(num_classes)]  # class -> [(video, start, end, score)] in file order
    for video, (s, e), label, score in zip(pred_video.tolist(), pred_seg.tolist(), pred_label.tolist(),
                                          pred_score.tolist()):
        pred_of_class[label].append((video, s, e, score))
    for c in range(num_classes):
        gt_by_video, n_gt, items = gt_of_class[c], n_gt_of_class[c], pred_of_class[c]
        if not items: continue
        order = np.argsort(np.array([it[3] for it in items]))[::-1]
        matched = [[False] * n_gt for _ in thresholds]
        tp = [[0] * len(items) for _ in thresholds]
        for rank, i in enumerate(order):
            video, s, e, _ = items[i]
            if video not in gt_by_video: continue  # no ground truth of this class in the video: false positive
            cands = gt_by_video[video]
            ious = []
            for _, gs, ge in cands:
                inter = max(0.0, min(e, ge) - max(s, gs))
                union = (ge - gs) + (e - s) - inter
                ious.append(inter / union if union != 0 else float("nan"))
            pref = np.argsort(np.array(ious))[::-1]
            for t, thr in enumerate(thresholds):
                for j in pref:
                    if ious[j] < thr: break
                    if matched[t][cands[j][0]]: continue
                    matched[t][cands[j][0]] = True; tp[t][rank] = 1
                    break
        for t in range(len(thresholds)):
            precision, recall, hits = [], [], 0
            for k, hit in enumerate(tp[t]):
                hits += hit; precision.append(hits / (k + 1)); recall.append(hits / n_gt)
            best, total, prev = 0.0, 0.0, 0.0
            envelope = [0.0] * len(precision)
            for k in range(len(precision) - 1, -1, -1):
                best = max(best, precision[k]); envelope[k] = best
            for k in range(len(precision)):
                if recall[k] != prev: total += (recall[k] - prev) * envelope[k]
                prev = recall[k]
            ap[t, c] = total
    return ap


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--per-video", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the vectorised version (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__}")
    start = time.perf_counter()
    gt, pred = make_case(args.videos, args.classes, args.per_video, args.seed)
    n_pred = sum(len(v) for v in pred.values()); n_gt = sum(len(v) for v in gt.values())
    print(f"case: {len(gt)} videos, {args.classes} classes, {n_gt} ground truths, {n_pred} predictions, "
          f"{len(ANET_TIOU_THRESHOLDS)} thresholds (built in {time.perf_counter() - start:.1f} s)")
    arrays = encode(gt, pred)
    class_names = list(dict.fromkeys(label for segs in gt.values() for _, _, label in segs))
    core, whole = [], []  # CPU seconds of this process (time.process_time): robust to other jobs on the machine
    for _ in range(args.runs):
        cpu, wall = time.process_time(), time.perf_counter(); ap_fast = tal_average_precision(*arrays)
        core.append((time.process_time() - cpu, time.perf_counter() - wall))
        cpu, wall = time.process_time(), time.perf_counter(); result = tal_map(gt, pred)
        whole.append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu, wall = time.process_time(), time.perf_counter()
    ap_loop = loop_reference(*arrays, ANET_TIOU_THRESHOLDS)
    slow, slow_wall = time.process_time() - cpu, time.perf_counter() - wall
    ap_dicts = np.array([result["ap_per_class"][name] for name in class_names]).T  # (T, C)
    diff = float(np.abs(ap_fast - ap_loop).max())
    print(f"average mAP: vectorised {ap_fast.mean():.6f}, loop {ap_loop.mean():.6f}")
    print(f"equal (to 1e-12): {diff <= 1e-12} (max |AP difference| over {ap_loop.size} class x threshold values: "
          f"{diff:.3g}; bit-identical: {bool(np.array_equal(ap_fast, ap_loop))}, the loop adds in another order); "
          f"tal_map from dicts gives the same APs: {bool(np.array_equal(ap_dicts, ap_fast))}")
    print("times are CPU seconds of this process (wall-clock seconds in brackets); vectorised: best of "
          f"{args.runs} runs")
    print(f"loop reference (whole case, every class and threshold, from arrays): {slow:.2f} s [{slow_wall:.2f} s]")
    best = min(core)
    print(f"vectorised tal_average_precision (from arrays): {best[0]:.3f} s [{best[1]:.3f} s] "
          f"(all runs: {', '.join(f'{c:.3f}' for c, _ in core)}) -> speed ratio {slow / best[0]:.1f}x "
          f"[wall-clock {slow_wall / min(w for _, w in core):.1f}x]")
    best = min(whole)
    print(f"vectorised tal_map (from dicts, conversion included): {best[0]:.3f} s [{best[1]:.3f} s] "
          f"(all runs: {', '.join(f'{c:.3f}' for c, _ in whole)}) -> speed ratio {slow / best[0]:.1f}x "
          f"[wall-clock {slow_wall / min(w for _, w in whole):.1f}x]")


if __name__ == "__main__":
    main()
