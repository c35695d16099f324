"""The demo app driven as a user would (set widgets, click Run), with untrained tiny models so that it needs no
shipped weights: the figure's traces and bars, the table, re-ranking without the model, messages for bad input.
nbs/15_demo.ipynb runs the same with the shipped checkpoints; tests/test_demo_browser.py in a real browser."""
import datetime, html
from pathlib import Path

import numpy as np
import pytest
import torch

from unloc_nb.data import sample_path
from unloc_nb.demo import LocalizationApp, DEFAULT_TEXTS
from unloc_nb.model import UnLoc, UnLocConfig
from unloc_nb.predict import rank_prediction


def untrained(task: str) -> UnLoc:
    torch.manual_seed(0)
    overrides = dict(pyramid="transformer", num_levels=1) if task == "as" else {}
    model = UnLoc(UnLocConfig.preset("tiny", num_frames=32, pretrained=None, **overrides)).eval()
    model.checkpoint_meta = {"train_config": {"task": task, "data": "benchmark"}}
    return model


@pytest.fixture(scope="module")
def app():
    return LocalizationApp(checkpoints={task: untrained(task) for task in ("mr", "tal", "as", "hl")})


def trace(app, name):
    return next(t for t in app.figure.data if t.name == name)


def test_run_draws_frames_curves_segments_and_ground_truth(app):
    app.source.value, app.task.value = "sample", "mr"
    app.sample.value = str(sample_path("videos/syn_11.mp4"))
    app.texts.value = "the red circle moves up"
    app.run_button.click()
    assert app.message.value == "" and app.model_runs == 1 and app.progress.value == 100
    assert [t.name for t in app.figure.data] == ["frames", "the red circle moves up", "ground truth", "predicted"]
    bars = trace(app, "predicted")
    assert list(bars.y) == ["the red circle moves up"] * 5
    assert list(bars.base) == [s["start"] for s in app.segments]
    np.testing.assert_allclose(np.array(bars.x) + np.array(bars.base), [s["end"] for s in app.segments])
    assert list(trace(app, "ground truth").base) == [11.0]  # syn_11: the red circle moves up at 11.0-14.7 s
    assert len(app.figure.layout.images) == 25 and len(app.figure.layout.sliders[0].steps) == 24
    curve = trace(app, "the red circle moves up")
    np.testing.assert_allclose(curve.y, app.prediction.relevancy[0][0].numpy(), rtol=1e-6)
    assert app.table.value.count("<tr>") == 1 + 5


def test_sliders_rerank_without_the_model(app):
    runs = app.model_runs
    app.top_k.value, app.sigma.value = 2, 0.05
    assert app.segments == rank_prediction(app.prediction, top_k=2, sigma=0.05)["segments"]
    assert len(trace(app, "predicted").y) == 2
    app.levels.value = True
    assert len([t for t in app.figure.data if t.name.startswith("the red circle")]) == 3  # 3 pyramid levels
    app.top_k.value, app.sigma.value, app.levels.value = 5, 0.3, False
    assert app.model_runs == runs


@pytest.mark.parametrize("task", ["tal", "as", "hl"])
def test_other_tasks(app, task):
    app.source.value = "path"
    app.path.value = str(sample_path("videos/syn_09.mp4"))
    app.task.value = task
    assert app.texts.value == DEFAULT_TEXTS[task]
    app.run_button.click()
    assert app.message.value == "", app.message.value
    names = [t.name for t in app.figure.data]
    assert trace(app, "predicted") is not None and "ground truth" in names
    if task == "hl": assert "saliency" in names
    if task in ("tal", "as"):
        assert {s["label"] for s in app.segments} <= {t.strip() for t in DEFAULT_TEXTS[task].split(",")}


def test_upload(app):
    app.task.value, app.source.value = "mr", "upload"
    now = datetime.datetime.now(datetime.timezone.utc)
    app.upload.value = ({"name": "clip.mp4", "type": "video/mp4", "size": 1, "last_modified": now,
                         "content": memoryview(sample_path("videos/syn_10.mp4").read_bytes())},)
    app.run_button.click()
    assert app.message.value == "" and Path(app.prediction.video).name == "clip.mp4"


@pytest.mark.parametrize("case", ["corrupt video", "missing file", "empty query", "no path", "no upload",
                                  "missing checkpoint"])
def test_bad_input_is_a_message_in_the_app(app, case, tmp_path):
    target = app
    app.task.value, app.source.value, app.texts.value = "mr", "path", "a red circle moves up"
    if case == "corrupt video":
        corrupt = tmp_path / "corrupt.mp4"
        corrupt.write_bytes(sample_path("videos/syn_01.mp4").read_bytes()[:20_000])
        app.path.value, expected = str(corrupt), f"{corrupt}: "
    if case == "missing file": app.path.value, expected = str(tmp_path / "gone.mp4"), "gone.mp4: no such video file"
    if case == "empty query":
        app.path.value, app.texts.value, expected = str(sample_path("videos/syn_10.mp4")), " ", "empty query"
    if case == "no path": app.path.value, expected = "", "no video path"
    if case == "no upload": app.source.value, app.upload.value, expected = "upload", (), "no uploaded video"
    if case == "missing checkpoint":
        target, expected = LocalizationApp(checkpoints={"mr": "/no/such/run"}), "/no/such/run: no such checkpoint"
    target.run_button.click()
    assert "Cannot run" in target.message.value and html.escape(expected) in target.message.value, target.message.value
    assert target.figure is None and target.segments == [] and target.table.value == ""
