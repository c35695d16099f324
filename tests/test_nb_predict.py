"""Edge cases of nbs/14_predict.ipynb that would stand in the middle of its story: checkpoints that are not there,
texts a task does not take, window plans at the extremes, per-frame averages of a coarse level, the shell's answers
to bad arguments; and, on request, the notebook's 20-minute measurement. The notebook keeps one focused test next to
each piece."""
import contextlib, io, json, os, resource, subprocess, sys, tempfile, time, warnings
from pathlib import Path

import pytest
import torch

from unloc_nb.data import UnLocDataError, SyntheticWorld, make_synthetic_video, sample_path
from unloc_nb.synthetic import _DIRECTIONS
from unloc_nb.model import UnLoc
from unloc_nb.predict import _FrameAverage, check_texts, plan_windows, unloc_predict

QUERY = "the red circle moves up"
VIDEO = sample_path("videos/syn_11.mp4")


@pytest.fixture(scope="module")
def model():
    return UnLoc.from_pretrained("tiny-mr")


def test_from_pretrained_names_what_is_wrong(tmp_path):
    with pytest.raises(UnLocDataError, match="without best.safetensors or last.safetensors"):
        UnLoc.from_pretrained(tmp_path)
    with pytest.raises(UnLocDataError, match="nope.safetensors: no such checkpoint"):
        UnLoc.from_pretrained(tmp_path / "nope.safetensors")
    (tmp_path / "last.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(UnLocDataError, match="not a readable unloc_nb checkpoint"): UnLoc.from_pretrained(tmp_path)
    with pytest.raises(UnLocDataError, match="tiny-mr"): UnLoc.from_pretrained("tiny-xx")


@pytest.mark.parametrize("texts, task, message", [
    ("a,,b", "as", "empty class name"),
    (["a", "b"], "hl", "one query"),
    ("a", "detect", "unknown task 'detect'"),
    (["a", "a"], "mr", "repeated querys"),
    ([], "tal", "empty class name"),
])
def test_check_texts_refuses(texts, task, message):
    with pytest.raises(UnLocDataError, match=message): check_texts(texts, task)


def test_task_of(model):
    assert model.task_of() == "mr"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert model.task_of("tal") == "tal"
    assert "trained for 'mr'" in str(caught[0].message)
    with pytest.raises(UnLocDataError, match="unknown task 'xyz'"): model.task_of("xyz")


def test_plan_windows_extremes():
    long = plan_windows(20 * 60 * 10, 10.0, 32, 30 / 31)  # the 20-minute video of the notebook's table
    assert (len(long.indices), len(long.starts)) == (1248, 77)
    assert plan_windows(20 * 60 * 10, 10.0, 32, 30 / 31 * 1.2).unit_seconds > long.unit_seconds  # coarser when asked
    assert len(plan_windows(1, 30.0, 32, 1.0).indices) == 32  # a one-frame video: N copies of it
    with pytest.raises(ValueError, match="fps > 0"): plan_windows(100, 0.0, 32, 1.0)
    with pytest.raises(ValueError, match="seconds_per_frame must be > 0"): plan_windows(100, 25.0, 32, 0.0)


def test_frame_average_of_a_coarse_level():
    level1 = _FrameAverage(1, 6)
    level1.add(torch.tensor([[0.5, 0.7]]), torch.tensor([0, 2]))  # a coarser level: every other frame
    level1.add(torch.tensor([[0.9]]), torch.tensor([2]))  # the next window sees frame 2 again
    values, positions = level1.mean()
    assert positions.tolist() == [0, 2]
    torch.testing.assert_close(values, torch.tensor([[0.5, 0.8]]))


def run_cli(*argv) -> tuple[int, str, str]:
    "unloc_predict in-process: (status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = unloc_predict([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", ["missing video", "truncated video", "missing run", "blank query", "unknown task",
                                  "classes for mr", "no texts"])
def test_shell_bad_input(case, tmp_path):
    "Status 2, the problem on stderr without a traceback, nothing on stdout."
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(VIDEO.read_bytes()[:3000])  # a truncated download
    argv, expected = {
        "missing video": (["--video", tmp_path / "missing.mp4", "--query", QUERY], "missing.mp4: no such video file"),
        "truncated video": (["--video", corrupt, "--query", QUERY], "corrupt.mp4: "),
        "missing run": (["--video", VIDEO, "--query", QUERY, "--checkpoint", tmp_path / "run"],
                        "run: no such checkpoint"),
        "blank query": (["--video", VIDEO, "--query", " "], "empty query"),
        "unknown task": (["--video", VIDEO, "--query", QUERY, "--task", "xyz"], "unknown task 'xyz'"),
        "classes for mr": (["--video", VIDEO, "--classes", "a,b"], "takes --query"),
        "no texts": (["--video", VIDEO], "one of the arguments --query --classes is required"),
    }[case]
    if "--checkpoint" not in argv: argv = ["--checkpoint", "tiny-mr", *argv]
    status, stdout, stderr = run_cli(*argv)
    assert status == 2, (status, stderr)
    assert expected in stderr and "Traceback" not in stderr, stderr
    assert stdout == ""


def test_shell_answers(tmp_path):
    status, stdout, stderr = run_cli("--checkpoint", "tiny-mr", "--video", VIDEO, "--query", QUERY, "--top-k", "2",
                                     "--plot", tmp_path / "out.png")
    assert status == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("{") and (tmp_path / "out.png").stat().st_size > 10_000


@pytest.mark.skipif(not os.environ.get("UNLOC_MEASURE_LONG"), reason="set UNLOC_MEASURE_LONG=1: a 20-minute video")
def test_twenty_minute_video_measurement():
    "The long row of the notebook's table: 1,248 frames in 77 windows; prints wall time and peak memory."
    long_video = Path(tempfile.gettempdir()) / "unloc_long_20min.mp4"
    if not long_video.exists():
        make_synthetic_video(long_video, seed=7, duration=1200, fps=10, size=(128, 96), num_events=200,
                             classes=SyntheticWorld().classes, motions=_DIRECTIONS, max_event_seconds=8.0)
    start = time.time()
    done = subprocess.run([sys.executable, "-c", "import sys; from unloc_nb.predict import unloc_predict; "
                           "sys.exit(unloc_predict(sys.argv[1:]))", "--checkpoint", "tiny-mr", "--video",
                           str(long_video), "--query", "a red circle moves up"], capture_output=True, text=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"wall {time.time() - start:.0f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["frames"], result["windows"]) == (1248, 77)
    assert all(0 <= s["start"] <= s["end"] <= result["duration"] for s in result["segments"])
