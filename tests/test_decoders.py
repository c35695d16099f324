"""The two video decoders: `decord` where it is installed, `PyAVReader` elsewhere (or with UNLOC_NO_DECORD=1).

PyAV's frames must equal decord's, frame for frame (same indices -> equal uint8 arrays: both decoders convert
YUV to RGB with FFmpeg's swscale, and on every video here they agree exactly, tolerance 0), and the library must
import and read videos when decord cannot be imported at all.
"""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

import unloc_nb.data as data
import unloc_nb.video as video  # where the decoder lives (monkeypatched below)
from unloc_nb.data import PyAVReader, make_synthetic_video, read_video, render_frames, sample_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(sample_path("videos").glob("*.mp4"))


def real_decord():
    "The decord module, or skip the test (saying why) where it is not installed or hidden."
    if data.VIDEO_DECODER != "decord": pytest.skip(f"decord is not in use here (VIDEO_DECODER={data.VIDEO_DECODER})")
    return video.decord


def every_frame(path: Path) -> np.ndarray:
    "The reference: every frame of the first video stream, decoded in order with plain PyAV: (T, H, W, 3) uint8."
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def probe_indices(num_frames: int, seed: int = 0) -> list[int]:
    "16 linspace indices (what training reads), 10 random ones, the last frame, in a shuffled order with a repeat."
    rng = np.random.default_rng(seed)
    picked = [*np.linspace(0, num_frames - 1, 16).round().astype(int), *rng.integers(0, num_frames, 10), num_frames - 1]
    picked = [int(i) for i in rng.permutation(picked)]
    return picked + picked[:1]


@pytest.fixture(scope="module")
def other_videos(tmp_path_factory) -> dict[str, Path]:
    "The same 10 s synthetic video in other containers and codecs: mkv, webm (VP9), mov (MJPEG), AVI (MPEG-4, H.264)."
    folder = tmp_path_factory.mktemp("containers")
    frames = list(render_frames(make_synthetic_video(None, seed=3, duration=10, fps=15)))
    videos = {}
    for name, codec, pix_fmt in [("h264.mkv", "libx264", "yuv420p"), ("vp9.webm", "libvpx-vp9", "yuv420p"),
                                 ("mjpeg.mov", "mjpeg", "yuvj420p"), ("mpeg4.avi", "mpeg4", "yuv420p"),
                                 ("h264.avi", "libx264", "yuv420p")]:  # H.264 in AVI: B-frames without real timestamps
        path = folder / name
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=15)
            stream.width, stream.height, stream.pix_fmt = 128, 96, pix_fmt
            if codec == "mpeg4": stream.codec_context.max_b_frames = 2
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")): container.mux(packet)
            for packet in stream.encode(): container.mux(packet)
        videos[name] = path
    return videos


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_pyav_frames_equal_plain_decoding_of_every_sample(path):
    reference = every_frame(path)  # (T, H, W, 3)
    reader = PyAVReader(path)
    assert len(reader) == len(reference)
    picked = probe_indices(len(reader))
    np.testing.assert_array_equal(reader.get_batch(picked).asnumpy(), reference[picked])


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_pyav_frames_equal_decord_frames_on_every_sample(path):
    decord = real_decord()
    theirs, ours = decord.VideoReader(str(path), ctx=decord.cpu(0)), PyAVReader(path)
    assert (len(ours), ours.get_avg_fps()) == (len(theirs), theirs.get_avg_fps())
    picked = probe_indices(len(ours), seed=len(ours))
    np.testing.assert_array_equal(ours.get_batch(picked).asnumpy(), theirs.get_batch(picked).asnumpy())  # tolerance 0
    every = list(range(len(ours)))
    np.testing.assert_array_equal(ours.get_batch(every).asnumpy(), theirs.get_batch(every).asnumpy())


@pytest.mark.parametrize("name", ["h264.mkv", "vp9.webm", "mjpeg.mov", "mpeg4.avi", "h264.avi"])
def test_other_containers_and_codecs(other_videos, name):
    path = other_videos[name]
    reference = every_frame(path)
    reader = PyAVReader(path)
    assert (len(reader), reader.get_avg_fps()) == (150, 15.0)
    assert reader.by_count == name.endswith(".avi")  # AVI: decoded from the start and counted
    picked = probe_indices(len(reader))
    np.testing.assert_array_equal(reader.get_batch(picked).asnumpy(), reference[picked])
    if data.VIDEO_DECODER == "decord":
        theirs = video.decord.VideoReader(str(path), ctx=video.decord.cpu(0))
        assert len(theirs) == len(reader)
        decord_frames = theirs.get_batch(picked).asnumpy()
        if not name.endswith(".avi"): np.testing.assert_array_equal(decord_frames, reference[picked])
        else:  # decord's random access in AVI returns other frames than decoding in order: open_reader avoids it
            assert not np.array_equal(decord_frames, reference[picked])
            assert isinstance(data.open_reader(path, {"format": "avi"}), PyAVReader)


def test_read_video_gives_the_same_clip_with_either_decoder(monkeypatch):
    real_decord()
    path = sample_path("videos/syn_04.mp4")  # portrait, 24 fps, background grain
    with_decord = read_video(path, 32, size=64, short_side=80)
    monkeypatch.setattr(video, "decord", SimpleNamespace(VideoReader=PyAVReader, cpu=lambda device_id=0: None))
    with_pyav = read_video(path, 32, size=64, short_side=80)
    np.testing.assert_array_equal(with_pyav.frames.numpy(), with_decord.frames.numpy())
    assert (with_pyav.num_source_frames, with_pyav.fps, with_pyav.duration) == \
        (with_decord.num_source_frames, with_decord.fps, with_decord.duration)


def test_frames_outside_the_video_and_a_cut_file(tmp_path):
    reader = PyAVReader(sample_path("videos/syn_00.mp4"))
    with pytest.raises(IndexError, match=r"frame 120 is outside 0\.\.119"): reader.get_batch([0, 120])
    with pytest.raises(IndexError, match=r"frame -1 is outside"): reader.get_batch([-1])
    video = make_synthetic_video(None, seed=1, duration=6, noise=0.05)  # grain: frames of similar sizes
    whole = data.write_mp4(tmp_path / "fast.mp4", render_frames(video), 15, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"  # the index first: a cut keeps the index and loses the frames after the cut
    cut.write_bytes(whole[:len(whole) * 2 // 3])
    assert data.probe_video(cut)[0] == 90 and len(PyAVReader(cut)) < 90  # PyAV counts the frames actually there
    with pytest.raises(data.UnLocDataError, match=r"cut\.mp4: (the decoder finds \d+ frames at 15 fps where the "
                       r"container lists 90|cannot decode video frames)"):  # PyAV's words, decord's words
        read_video(cut, 8, 32)


FAKE_DECORD = "raise ImportError('decord is hidden for this test')\n"
SCRIPT = ("import unloc_nb.data as d; c = d.read_video(d.sample_path('videos/syn_02.mp4'), 8, 32); "
          "print(d.VIDEO_DECODER, tuple(c.frames.shape), c.num_source_frames)")


@pytest.mark.parametrize("how", ["not importable", "UNLOC_NO_DECORD=1"])
def test_the_library_reads_videos_without_decord(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if how == "not importable":  # a `decord` package that fails to import, first on the path
        (tmp_path / "decord").mkdir()
        (tmp_path / "decord" / "__init__.py").write_text(FAKE_DECORD)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    else: env["UNLOC_NO_DECORD"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "pyav (8, 3, 32, 32) 200", out.stdout
