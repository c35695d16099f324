"""Rebuild the weights shipped in unloc_nb/weights/ and the results quoted with them (README, 11_train).

    python tools/ship_weights.py            # about 20 minutes on 2 CPU cores
    python tools/ship_weights.py --tasks hl --keep-prior   # one job again, from the prior already in place

1. the two-tower prior: `unloc-pretrain` on the training split of the default benchmark -> tiny_synthetic.safetensors
2. the main jobs from that prior, `unloc-train --task mr|tal|as|hl` -> tiny_{task}.safetensors (float16)
3. results/main_jobs.json: each job's summary, its wall time, and the metrics of the float16 file that ships
"""
import argparse, json, time, warnings
from pathlib import Path

from unloc_nb.data import benchmark_path
from unloc_nb.pretrain import PretrainConfig, pretrain
from unloc_nb.towers import package_weights
from unloc_nb.train import TrainConfig, evaluate, load_checkpoint, make_dataset, save_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="*", default=["mr", "tal", "as", "hl"], choices=["mr", "tal", "as", "hl"])
    p.add_argument("--keep-prior", action="store_true", help="keep the prior in place and its entry in the results")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    out = ROOT / "results" / "main_jobs.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    if not args.keep_prior: results["prior"] = make_prior()
    for task in args.tasks:
        results[task] = main_job(task)
        print(task, json.dumps(results[task]["metrics"]), f"{results[task]['seconds']:.0f} s", flush=True)
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")  # after every job: a later failure loses nothing


def make_prior() -> dict:
    "Pretrain the shipped two-tower prior; its summary."
    bench = benchmark_path()
    prior = pretrain(PretrainConfig([str(bench / "charades_sta_train.txt"), str(bench / "activitynet.json")],
                                    ["charades_sta", "activitynet"], str(bench / "videos"),
                                    out=package_weights("tiny_synthetic.safetensors"), half=True))
    print("prior", json.dumps({k: v for k, v in prior.items() if k != "history"}), flush=True)
    return {k: v for k, v in prior.items() if k not in ("history", "checkpoint")}


def main_job(task: str) -> dict:
    "Train the main job of `task` from the prior, ship it in float16; its summary, time and the shipped metrics."
    cfg = TrainConfig(task=task, out_dir=str(ROOT / "runs" / f"main-{task}"))
    start = time.time()
    summary = train(cfg, progress=False)
    seconds = time.time() - start
    model, meta = load_checkpoint(summary["checkpoint"])
    shipped = save_checkpoint(package_weights(f"tiny_{task}.safetensors"), model, meta, half=True)
    shipped_metrics = evaluate(load_checkpoint(str(shipped))[0], make_dataset(cfg, train=False))
    kept = {k: v for k, v in summary.items() if k not in ("losses", "history", "checkpoint", "timeline")}
    return {**kept, "seconds": round(seconds, 1), "shipped_metrics": shipped_metrics, "shipped_bytes": shipped.stat().st_size}


if __name__ == "__main__":
    main()
