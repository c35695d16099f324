"""The measured table behind the `cpu` recipe of `unloc-train` (nbs/11_train.ipynb, "Choosing the CPU recipe").

Every row trains the tiny model on the *validation* benchmark (`benchmark_path(seed=1)`: other videos than the
default benchmark, same world) and evaluates on its test split, so the default benchmark's test split never chooses
anything. Rows run one after the other in this process; results/recipes.json is rewritten after each row.

    python bench/recipes.py                 # every row of every task (about an hour on 2 CPU cores)
    python bench/recipes.py --task mr       # the moment-retrieval rows only
"""
import argparse, json, sys, time, warnings
from pathlib import Path

from unloc_nb.data import benchmark_path
from unloc_nb.train import TASK_DATA, TrainConfig, train

PRIOR = {"pretrained": "synthetic"}
ROWS = {  # task -> [(row name, TrainConfig fields)]; the cpu recipe is the row named "cpu recipe"
    "mr": [
        ("paper recipe, random towers", dict(recipe="paper", model={"pretrained": None, "num_frames": 16,
                                                                     "freeze_video": False})),
        ("paper recipe, pretrained towers", dict(recipe="paper", model={**PRIOR, "num_frames": 16,
                                                                         "freeze_video": False})),
        ("batch 4, image tower trained, N=16", dict(model={**PRIOR, "num_frames": 16, "freeze_video": False})),
        ("batch 4, image tower frozen, N=16", dict(model={"num_frames": 16})),
        ("cpu recipe", dict()),
        ("cpu recipe, N=64", dict(model={"num_frames": 64})),
        ("cpu recipe, 1 crop per video", dict(views=1)),
        ("cpu recipe, 30 epochs", dict(epochs=30)),
        ("cpu recipe, AdamW lr 1e-3", dict(optimizer="adamw", lr=1e-3)),
    ],
    "tal": [
        ("paper recipe, random towers", dict(recipe="paper", model={"pretrained": None, "num_frames": 16,
                                                                     "freeze_video": False})),
        ("paper recipe, pretrained towers", dict(recipe="paper", model={**PRIOR, "num_frames": 16,
                                                                         "freeze_video": False})),
        ("batch 4, image tower trained, N=16", dict(model={**PRIOR, "num_frames": 16, "freeze_video": False})),
        ("cpu recipe", dict()),
        ("cpu recipe, N=16", dict(model={"num_frames": 16})),
        ("cpu recipe, 1 crop per video", dict(views=1)),
        ("cpu recipe, 30 epochs", dict(epochs=30)),
    ],
    "as": [("paper recipe, random towers", dict(recipe="paper", model={"pretrained": None, "num_frames": 16,
                                                                        "freeze_video": False})),
           ("cpu recipe", dict())],
    "hl": [("paper recipe, random towers", dict(recipe="paper", model={"pretrained": None, "num_frames": 16,
                                                                        "freeze_video": False})),
           ("cpu recipe", dict())],
}
HEADLINE = {"mr": ["R1@0.5", "R1@0.7", "mIoU"], "tal": ["mAP@0.5", "average_mAP"], "as": ["frame_accuracy", "mAP"],
            "hl": ["HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1", "MR-full-mAP"]}


def headline(task: str, metrics: dict) -> dict:
    "The few numbers of a task's metrics that the table shows."
    if task == "tal": metrics = {"mAP@0.5": metrics["mAP"][0], "average_mAP": metrics["average_mAP"]}
    if task == "hl": metrics = {"HL-min-VeryGood-mAP": metrics["brief"]["HL-min-VeryGood-mAP"],
                                "HL-min-VeryGood-Hit1": metrics["brief"]["HL-min-VeryGood-Hit1"],
                                "MR-full-mAP": metrics["brief"]["MR-full-mAP"]}
    return {k: round(float(metrics[k]), 4) for k in HEADLINE[task]}


def run_row(task: str, name: str, fields: dict, out: Path) -> dict:
    "Train one row on the validation benchmark; its config, time and headline metrics."
    root = benchmark_path(seed=1)
    fmt, train_file, eval_file, _ = TASK_DATA[task]
    cfg = TrainConfig(task=task, annotations=str(root / train_file), eval_annotations=str(root / eval_file),
                      video_dir=str(root / "videos"), out_dir=str(out / task), **fields)
    start = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(cfg, progress=False)
    return {"task": task, "row": name, "fields": fields, "seconds": round(time.time() - start),
            "epochs": cfg.epochs, "batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "lr": cfg.lr,
            "num_frames": cfg.model_config().num_frames, "freeze_video": cfg.model_config().freeze_video,
            "pretrained": cfg.model_config().pretrained, "views": cfg.views,
            "metrics": headline(task, summary["metrics"]), "train_metrics": headline(task, summary["train_metrics"])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", nargs="*", default=list(ROWS))
    p.add_argument("--rows", nargs="*", default=None, help="row names to run (default: all)")
    p.add_argument("--json", default="results/recipes.json")
    p.add_argument("--out", default="runs/recipes")
    args = p.parse_args(argv)
    path = Path(args.json)
    table = json.loads(path.read_text()) if path.is_file() else []
    for task in args.task:
        for name, fields in ROWS[task]:
            if args.rows and name not in args.rows: continue
            row = run_row(task, name, fields, Path(args.out))
            print(json.dumps(row), flush=True)
            table = [r for r in table if (r["task"], r["row"]) != (task, name)] + [row]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
