"""Runs you can trust and continue (issue 9, parts 3 and 4): a run killed with SIGKILL and resumed ends with a
last.safetensors byte-equal to the uninterrupted run's; no temporary file survives; config.json reads back; bad
resume input is refused before training; two processes under torchrun (gloo) give the loss curve and the gradients
of one process with the same global batch; mixed precision and gradient checkpointing run."""
import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from test_hostile_train import run  # unloc-train in-process: (exit status, stdout, stderr)
from unloc_nb.data import UnLocDataError
from unloc_nb.train import (TrainConfig, atomic_write, load_checkpoint, load_train_state, read_config, save_checkpoint,
                            train, unloc_train)

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["--task", "tal", "--data", "samples", "--eval-every", "2"]  # 9 training videos, batches of 4: 3 steps


def launcher(folder: Path) -> Path:
    "A script that runs unloc-train from this checkout (what `$(which unloc-train)` is once installed)."
    script = folder / "unloc_train.py"
    script.write_text("import sys, warnings\nwarnings.simplefilter('ignore')\n"
                      "from unloc_nb.train import unloc_train\nsys.exit(unloc_train())\n")
    return script


def environment() -> dict:
    "This checkout first on the path, one thread per process (the CI machine has 2 cores)."
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def log_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture
def one_thread():
    "In-process runs on one thread, like the subprocesses of `environment()`: equal bytes need the same arithmetic."
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_run_killed_after_epoch_1_resumes_to_a_byte_equal_checkpoint(tmp_path, one_thread):
    epochs = ["--epochs", "6"]
    status, out, err = run(*QUICK, *epochs, "--out-dir", tmp_path / "whole")
    assert status == 0, err
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(launcher(tmp_path)), *QUICK, *epochs, "--out-dir", str(killed)],
                               env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ((killed / "log.jsonl").is_file() and (killed / "log.jsonl").read_text().strip()):
        assert process.poll() is None and time.time() < deadline, "the run ended before its first epoch was logged"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # after epoch 1, maybe half-way through writing epoch 2
    assert process.wait() == -signal.SIGKILL
    done = load_train_state(killed / "last.safetensors")[1]["epoch"]
    assert 1 <= done < 6 and not (killed / "metrics.json").exists()
    (killed / "last.safetensors12ab.tmp").write_bytes(b"half a checkpoint")  # what a kill during a save leaves
    status, out, err = run("--resume", killed)
    assert status == 0, err
    whole, resumed = tmp_path / "whole", killed
    assert (whole / "last.safetensors").read_bytes() == (resumed / "last.safetensors").read_bytes()
    assert (whole / "best.safetensors").read_bytes() == (resumed / "best.safetensors").read_bytes()
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]
    assert strip(log_records(whole)) == strip(log_records(resumed))
    assert [r["epoch"] for r in log_records(resumed)] == [1, 2, 3, 4, 5, 6]
    assert json.loads(out.splitlines()[-1])["metrics"] == json.loads((whole / "metrics.json").read_text())["metrics"]
    assert sorted(p.name for p in resumed.iterdir()) == ["best.safetensors", "config.json", "last.safetensors",
                                                         "log.jsonl", "metrics.json", "timeline.png"]


def test_resume_is_bitwise_with_workers_and_without_caches(tmp_path):
    "DataLoader workers decode (no cache): their random crops come from the restored generator."
    cfg = TrainConfig(task="mr", data="samples", epochs=2, num_workers=1, cache=False, model={"num_frames": 8})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(dataclasses.replace(cfg, out_dir=str(tmp_path / "whole")), progress=False)
        halted = dataclasses.replace(cfg, out_dir=str(tmp_path / "halted"))
        assert train(halted, progress=False, stop_after=1)["stopped_after_epoch"] == 1
        train(halted, progress=False, resume=True)
    last = lambda name: (tmp_path / name / "last.safetensors").read_bytes()
    assert last("whole") == last("halted")


def test_a_failed_write_keeps_the_previous_file_and_no_temporary_one(tmp_path):
    target = atomic_write(tmp_path / "log.jsonl", lambda tmp: Path(tmp).write_text("epoch 1\n"))

    def dies_half_way(tmp):
        Path(tmp).write_text("epoch 1\nepo")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): atomic_write(target, dies_half_way)
    assert target.read_text() == "epoch 1\n" and [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]


def test_config_json_reads_back_and_flags_change_it(tmp_path):
    status, _, err = run(*QUICK, "--epochs", "1", "--lr", "0.02", "--model", "num_frames=8", "--out-dir",
                         tmp_path / "a")
    assert status == 0, err
    cfg = read_config(tmp_path / "a" / "config.json")
    assert (cfg.lr, cfg.epochs, cfg.model["num_frames"], cfg.recipe) == (0.02, 1, 8, "cpu")
    status, out, err = run("--config", tmp_path / "a" / "config.json", "--out-dir", tmp_path / "b", "--seed", "3")
    assert status == 0, err
    again = read_config(tmp_path / "b" / "config.json")
    assert again == dataclasses.replace(cfg, out_dir=str(tmp_path / "b"), seed=3)


def test_bad_resume_input_is_refused_before_training(tmp_path):
    status, _, err = run("--resume", tmp_path / "nowhere")
    assert status == 2 and "nowhere: no such run directory (--resume)" in err
    (tmp_path / "empty").mkdir()
    status, _, err = run("--resume", tmp_path / "empty")
    assert status == 2 and "empty/config.json: no such config file" in err
    status, _, err = run(*QUICK, "--epochs", "2", "--out-dir", tmp_path / "run")
    assert status == 0, err
    status, _, err = run("--resume", tmp_path / "run", "--lr", "0.5")
    assert status == 2 and "--lr would change it" in err
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**run_config, "lr": 0.5, "epochs": 9}))
    status, _, err = run("--resume", tmp_path / "run")
    assert status == 2 and "last.safetensors: written by another config; 2 field(s) differ" in err
    assert "epochs: 9 vs 2" in err and "lr: 0.5 vs 0.01" in err
    (tmp_path / "run" / "config.json").write_text(json.dumps(run_config))
    model, meta = load_checkpoint(tmp_path / "run" / "last.safetensors")
    save_checkpoint(tmp_path / "run" / "last.safetensors", model, meta)  # weights only, like a shipped checkpoint
    status, _, err = run("--resume", tmp_path / "run")
    assert status == 2 and "last.safetensors: holds no training state" in err
    (tmp_path / "run" / "last.safetensors").unlink()
    status, _, err = run("--resume", tmp_path / "run")
    assert status == 2 and "run: no last.safetensors to resume from" in err
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "config.json").write_text(json.dumps(run_config))
    os.chmod(tmp_path / "locked", 0o500)
    try:
        if not os.access(tmp_path / "locked", os.W_OK):  # root can write anywhere: then only the check above runs
            status, _, err = run("--resume", tmp_path / "locked")
            assert status == 2 and "locked: cannot write the run's files there" in err
    finally: os.chmod(tmp_path / "locked", 0o700)


def test_mixed_precision_and_gradient_checkpointing_train(tmp_path):
    cfg = TrainConfig(task="tal", data="samples", epochs=1, precision="bf16", grad_checkpointing=True,
                      model={"num_frames": 4, "freeze_video": False}, out_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(cfg, progress=False)
    assert torch.isfinite(torch.tensor(summary["losses"])).all()
    assert load_checkpoint(tmp_path)[0].video_tower.conv1.weight.dtype == torch.float32  # weights stay float32
    with pytest.raises(ValueError, match="precision 'fp16' needs a CUDA device"):
        TrainConfig(precision="fp16", device="cpu")


def torchrun(*args, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    result = subprocess.run(command, env=environment(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_processes_with_gloo_give_the_loss_curve_of_one(tmp_path):
    flags = [*QUICK, "--epochs", "3", "--views", "1", "--device", "cpu"]  # one view: no random crop in either run
    result = torchrun(launcher(tmp_path), *flags, "--out-dir", tmp_path / "two", cwd=tmp_path)
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 reports
    status, _, err = run(*flags, "--out-dir", tmp_path / "one")
    assert status == 0, err
    one = [loss for r in log_records(tmp_path / "one") for loss in r["step_losses"]]
    two = [loss for r in log_records(tmp_path / "two") for loss in r["step_losses"]]
    assert len(one) == len(two) == 9  # 3 epochs of 3 steps; the last batch (1 video) has a stand-in on process 1
    worst = max(abs(a - b) / abs(a) for a, b in zip(one, two))
    print(f"two processes vs one: largest relative difference of a step's loss {worst:.2e}")
    assert worst < 1e-5


GRADIENTS = '''
import sys, torch, warnings
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
warnings.simplefilter("ignore")
from unloc_nb.data import collate
from unloc_nb.model import UnLoc
from unloc_nb.train import RankBatches, TrainConfig, UnLocLoss, make_dataset
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
cfg = TrainConfig(data="samples", model={"num_frames": 4, "freeze_video": False})  # moment retrieval, tower trained
dataset = make_dataset(cfg, train=False)
torch.manual_seed(0)
model = UnLoc(cfg.model_config())
step = DistributedDataParallel(UnLocLoss(model), find_unused_parameters=True, broadcast_buffers=False)
for batch in ([0, 3, 5, 7, 9], [2]):  # 3 + 2 videos, then 1 video and a stand-in
    mine = next(iter(RankBatches([batch], rank, world)))
    terms = step(collate([dataset[i] for i, _ in mine]), sum(real for _, real in mine))
    terms["loss"].backward()
if rank == 0: torch.save({"loss": terms["loss"].detach(), **{n: p.grad for n, p in model.named_parameters()
                                                              if p.grad is not None}}, sys.argv[1])
dist.destroy_process_group()
'''


def test_two_processes_compute_the_gradients_of_one(tmp_path):
    "The image tower trains: its gradient reaches each process's own videos only (`_GatherTokens`), summed by DDP."
    from unloc_nb.data import collate
    from unloc_nb.model import UnLoc
    from unloc_nb.train import UnLocLoss, make_dataset
    script = tmp_path / "gradients.py"
    script.write_text(GRADIENTS)
    torchrun(script, tmp_path / "two.pt", cwd=tmp_path)
    two = torch.load(tmp_path / "two.pt")
    cfg = TrainConfig(data="samples", model={"num_frames": 4, "freeze_video": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_dataset(cfg, train=False)
    torch.manual_seed(0)
    model = UnLoc(cfg.model_config())
    for batch in ([0, 3, 5, 7, 9], [2]):
        terms = UnLocLoss(model)(collate([dataset[i] for i in batch]))
        terms["loss"].backward()
    one = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(one) == set(two) - {"loss"} and any(n.startswith("video_tower.transformer") for n in one)
    torch.testing.assert_close(two["loss"], terms["loss"].detach(), rtol=1e-5, atol=1e-6)
    worst = max(float((two[n] - g).abs().max() / g.abs().max().clamp(min=1e-12)) for n, g in one.items())
    print(f"two processes vs one: largest gradient difference relative to the tensor's largest entry {worst:.2e}")
    assert worst < 1e-4


def test_the_gpu_bench_runs_its_code_on_cpu():
    "bench/gpu_throughput.py --smoke: the tiny model through every measurement of the GPU bench, in seconds."
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "bench" / "gpu_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with contextlib.redirect_stdout(io.StringIO()): results = bench.main(["--smoke"])
    assert results["train_step"]["steps_per_s"] > 0 and results["videos_per_step"] == 2
    ratio = results["tower_forward_backward"]["tflops_per_call"] / results["tower_forward"]["tflops_per_call"]
    assert 2 < ratio <= 3.01  # a backward pass costs about twice the forward (the frames need no gradient)
    assert bench.peak_tflops("NVIDIA H200") == 989.5 and bench.peak_tflops("NVIDIA H100 PCIe") == 756.0
