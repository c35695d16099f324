"""unloc-train and the training API against hostile input (issue 12, the train side): flags refused at parse time with
exit status 2, an unwritable output folder or a corrupt pretrained file refused before training, a non-finite loss
stopping the run with the last good checkpoint kept, checkpoints whose config and weights disagree named, and videos
that fail to decode left out (or fatal with --strict), never replaced."""
import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path

import pytest
import torch

import unloc_nb.train as train_module
from unloc_nb.data import UnLocDataError, UnLocDataWarning, sample_path
from unloc_nb.model import UnLoc
from unloc_nb.train import (OneCaptionPerVideo, TrainConfig, load_checkpoint, lr_factor, make_dataset,
                            save_checkpoint, unloc_train)


def run(*args) -> tuple[int, str, str]:
    "unloc-train in-process: (exit status, stdout, stderr), argparse's exits included; never a traceback."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try: status = unloc_train([str(a) for a in args])
        except SystemExit as e: status = e.code
    assert "Traceback" not in err.getvalue(), err.getvalue()
    return status, out.getvalue(), err.getvalue()


BAD_FLAGS = [(["--epochs", "0"], "TrainConfig.epochs must be a whole number in [1, 1000000], got 0"),
             (["--epochs", "-3"], "epochs"), (["--lr", "nan"], "TrainConfig.lr must be a finite number in (0, 10.0], got nan"),
             (["--lr", "-0.1"], "TrainConfig.lr"), (["--lr", "inf"], "TrainConfig.lr"),
             (["--clip-grad-norm", "-1"], "TrainConfig.clip_grad_norm must be a finite number in [0,"),
             (["--schedule", "foo"], "invalid choice: 'foo'"), (["--optimizer", "lion"], "invalid choice: 'lion'"),
             (["--momentum", "2"], "TrainConfig.momentum"), (["--batch-size", "0"], "TrainConfig.batch_size"),
             (["--weight-decay", "nan"], "TrainConfig.weight_decay"), (["--seed", "-1"], "TrainConfig.seed"),
             (["--device", "tpu9"], "TrainConfig.device 'tpu9'"), (["--task", "detection"], "invalid choice"),
             (["--fmt", "nope"], "invalid choice: 'nope'"), (["--cache", "maybe"], "TrainConfig.cache must be true or false"),
             (["--reader", "foo=1"], "the charades_sta reader has no argument 'foo'"),
             (["--reader", "novalue"], "--reader expects KEY=VALUE"),
             (["--model", "nosuch=1"], "TrainConfig.model: UnLocConfig has no field(s) ['nosuch']"),
             (["--model", "pretrained=/no/such/weights.safetensors"], "/no/such/weights.safetensors: no such pretrained"),
             (["--class-names", ","], "TrainConfig.class_names must be non-empty names")]


@pytest.mark.parametrize("flags,message", BAD_FLAGS)
def test_bad_flags_exit_2_at_parse_time(flags, message):
    status, out, err = run(*flags)
    assert status == 2 and out == "" and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_flag_error():
    status, _, err = run("--device", "cuda")
    assert status == 2 and "this machine has no CUDA device" in err


def test_the_output_folder_is_checked_before_training(tmp_path):
    (tmp_path / "a_file").write_text("x")
    status, _, err = run("--data", "samples", "--out-dir", tmp_path / "a_file" / "run")
    assert status == 2 and "a_file/run: cannot write the run's files there" in err


def test_a_corrupt_pretrained_file_is_named(tmp_path):
    (tmp_path / "towers.safetensors").write_bytes(b"\x00" * 100)
    status, _, err = run("--data", "samples", "--task", "tal", "--out-dir", tmp_path / "run",
                         "--model", f"pretrained={tmp_path / 'towers.safetensors'}")
    assert status == 2 and "towers.safetensors: cannot load the pretrained towers from it" in err


def test_a_wrong_video_folder_trains_on_nothing_never(tmp_path):
    status, _, err = run("--data", "samples", "--task", "tal", "--video-dir", tmp_path, "--out-dir", tmp_path / "run")
    assert status == 2 and "no tal item in 9 annotated videos" in err


def test_a_dead_runs_leftovers_are_removed_at_start(tmp_path):
    run_dir = tmp_path / "run"; run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"metrics": "of an older run"}')
    (run_dir / "checkpoint.safetensorsab12.tmp").write_bytes(b"half a checkpoint")
    status, _, _ = run("--data", "samples", "--task", "tal", "--video-dir", tmp_path / "nowhere", "--out-dir", run_dir)
    assert status == 2 and sorted(p.name for p in run_dir.iterdir()) == []


def test_lr_factor_refuses_an_unknown_schedule():
    with pytest.raises(ValueError, match="schedule must be 'cosine' or 'constant', got 'foo'"):
        lr_factor(30, 100, 10, "foo")


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss, calls = train_module.unloc_loss, []

    def loss_that_explodes(out, targets):
        terms = real_loss(out, targets)
        calls.append(1)
        if len(calls) > 3: terms["loss"] = terms["loss"] * float("nan")  # the first epoch (3 batches) is fine
        return terms
    monkeypatch.setattr(train_module, "unloc_loss", loss_that_explodes)
    run_dir = tmp_path / "run"
    status, _, err = run("--data", "samples", "--task", "tal", "--epochs", "3", "--out-dir", run_dir)
    assert status == 2 and "training stopped at epoch 2, step 1: the loss is nan" in err
    assert "last.safetensors is the one of epoch 1" in err
    _, meta = load_checkpoint(run_dir / "last.safetensors")
    assert meta["epoch"] == 1 and not (run_dir / "metrics.json").exists()


def test_train_step_does_not_update_on_a_non_finite_loss():
    cfg = TrainConfig(task="tal", data="samples")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = train_module.collate([make_dataset(cfg, train=True)[0]])
    model = UnLoc(cfg.model_config())
    optimizer = train_module.make_optimizer(model, TrainConfig(task="tal", data="samples", lr=10.0))
    with torch.no_grad():
        for p in model.head.parameters(): p.fill_(float("inf"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(train_module.NonFiniteLoss, match="is not finite|the loss is"):
        train_module.train_step(model, batch, optimizer)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # no step was taken


def test_checkpoints_whose_config_and_weights_disagree_are_named(tmp_path):
    from safetensors.torch import load_file, safe_open, save_file
    model = UnLoc(TrainConfig(model={"pretrained": None}).model_config())
    path = save_checkpoint(tmp_path / "ckpt.safetensors", model, {"epoch": 1})
    with safe_open(str(path), "pt") as f: metadata = f.metadata()
    config = json.loads(metadata["unloc_config"])
    save_file(load_file(str(path)), str(tmp_path / "wider.safetensors"),
              metadata={**metadata, "unloc_config": json.dumps({**config, "proj_dim": 2 * config["proj_dim"]})})
    with pytest.raises(UnLocDataError, match=r"wider\.safetensors: weights do not fit its config \(size mismatch for"):
        load_checkpoint(tmp_path / "wider.safetensors")
    save_file(load_file(str(path)), str(tmp_path / "garbled.safetensors"), metadata={**metadata, "unloc_config": "{oops"})
    with pytest.raises(UnLocDataError, match=r"garbled\.safetensors: its unloc_nb config cannot be read"):
        load_checkpoint(tmp_path / "garbled.safetensors")
    save_file(load_file(str(path)), str(tmp_path / "unknown.safetensors"),
              metadata={**metadata, "unloc_config": json.dumps({**config, "warp_drive": 9})})
    with pytest.raises(UnLocDataError, match=r"unknown\.safetensors: its unloc_nb config cannot be read \(TypeError"):
        load_checkpoint(tmp_path / "unknown.safetensors")


def test_a_killed_save_leaves_no_temporary_file_behind_the_next(tmp_path):
    model = UnLoc(TrainConfig(model={"pretrained": None}).model_config())
    (tmp_path / "ckpt.safetensorsx1y2.tmp").write_bytes(b"half")  # what a save killed half-way leaves
    save_checkpoint(tmp_path / "ckpt.safetensors", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


@pytest.fixture()
def videos_with_an_undecodable_one(tmp_path):
    "The sample videos, syn_01 (training) and syn_10 (evaluation) with a zero-length H.264 parameter set."
    folder = tmp_path / "videos"; folder.mkdir()
    for path in sample_path("videos").glob("*.mp4"):
        data = bytearray(path.read_bytes())
        if path.stem in ("syn_01", "syn_10"):
            at = data.index(b"avcC") - 4
            data[at + 14:at + 16] = b"\x00\x00"  # probes, does not decode
        (folder / path.name).write_bytes(data)
    return folder


def test_undecodable_videos_are_left_out_with_counts_corrected(tmp_path, videos_with_an_undecodable_one):
    status, out, err = run("--data", "samples", "--task", "tal", "--epochs", "1", "--video-dir",
                           videos_with_an_undecodable_one, "--out-dir", tmp_path / "run")
    assert status == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert sorted(summary["left_out_videos"]) == ["syn_01", "syn_10"]
    assert (summary["train_items"], summary["eval_items"]) == (8, 2)  # 9 - 1 and 3 - 1
    status, _, err = run("--data", "samples", "--task", "tal", "--epochs", "1", "--strict", "--video-dir",
                         videos_with_an_undecodable_one, "--out-dir", tmp_path / "strict")
    assert status == 2 and "syn_10.mp4: cannot decode video frames" in err


def test_the_caption_sampler_follows_the_videos_left(tmp_path, videos_with_an_undecodable_one):
    cfg = TrainConfig(data="samples", video_dir=str(videos_with_an_undecodable_one), model={"num_frames": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = make_dataset(cfg, train=True)
        sampler = OneCaptionPerVideo(dataset, torch.Generator().manual_seed(0))
        assert len(sampler) == 9
        for index in sampler: dataset[index]  # syn_01 fails and is left out
    assert len(sampler) == 8 and all(dataset.entries[i][0] < 8 for i in sampler)
