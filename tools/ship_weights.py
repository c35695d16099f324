"""Rebuild the weights shipped in unloc_nb/weights/ and the results quoted with them (README, 11_train).

    python tools/ship_weights.py            # about 20 minutes on 2 CPU cores

1. the two-tower prior: `unloc-pretrain` on the training split of the default benchmark -> tiny_synthetic.safetensors
2. the main jobs from that prior, `unloc-train --task mr|tal|as|hl` -> tiny_{task}.safetensors (float16)
3. results/main_jobs.json: each job's summary, its wall time, and the metrics of the float16 file that ships
"""
import json, time, warnings
from pathlib import Path

from unloc_nb.data import benchmark_path
from unloc_nb.pretrain import PretrainConfig, pretrain
from unloc_nb.towers import package_weights
from unloc_nb.train import TrainConfig, evaluate, load_checkpoint, make_dataset, save_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent


def main():
    warnings.simplefilter("ignore")
    bench = benchmark_path()
    prior = pretrain(PretrainConfig([str(bench / "charades_sta_train.txt"), str(bench / "activitynet.json")],
                                    ["charades_sta", "activitynet"], str(bench / "videos"),
                                    out=package_weights("tiny_synthetic.safetensors"), half=True))
    print("prior", json.dumps({k: v for k, v in prior.items() if k != "history"}), flush=True)
    results = {"prior": {k: v for k, v in prior.items() if k not in ("history", "checkpoint")}}
    for task in ("mr", "tal", "as", "hl"):
        cfg = TrainConfig(task=task, out_dir=str(ROOT / "runs" / f"main-{task}"))
        start = time.time()
        summary = train(cfg, progress=False)
        seconds = time.time() - start
        model, meta = load_checkpoint(summary["checkpoint"])
        shipped = save_checkpoint(package_weights(f"tiny_{task}.safetensors"), model, meta, half=True)
        shipped_metrics = evaluate(load_checkpoint(str(shipped))[0], make_dataset(cfg, train=False))
        kept = {k: v for k, v in summary.items() if k not in ("losses", "history", "checkpoint", "timeline")}
        results[task] = {**kept,
                         "seconds": round(seconds, 1), "shipped_metrics": shipped_metrics,
                         "shipped_bytes": shipped.stat().st_size}
        print(task, json.dumps(results[task]["metrics"]), f"{seconds:.0f} s", flush=True)
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "main_jobs.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
