"""Hostile input: corrupt videos, malformed annotation files in every format, bad prediction files and flags, hostile
video ids and broken checkpoints. Each must end in a clear `UnLocDataError` (exit status 2 from `unloc-eval`) that
names the file, or in a documented warning; never a traceback, a crash or a wrong number.

Every input is generated here. Corrupt videos are decoded in a subprocess, so a decoder that aborts the process
(as `decord` does with `std::bad_alloc` on an mp4 whose `stts` sample count is edited to 2^30) fails a test instead
of ending the test run.
"""
import json
import os
import random
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import unloc_nb.data as data
import unloc_nb.video as video  # where the decoder and its limits live (monkeypatched below)
from unloc_nb.data import (ActionLocalizationDataset, Annotation, HighlightDataset, MomentRetrievalDataset,
                           UnLocDataError, UnLocDataWarning, decode_video, find_video, probe_video, read_annotations,
                           read_video, reader_arguments, sample_path, write_mp4)
from unloc_nb.metrics import evaluate_mr_files, mr_recall, qvh_eval, segmentation_metrics, tal_map, unloc_eval

ROOT = Path(__file__).resolve().parents[1]


# ================================================================================================ corrupt videos
def ramp(num_frames: int = 30, height: int = 48, width: int = 64):
    "Frame k is flat grey 8k."
    for k in range(num_frames): yield np.full((height, width, 3), 8 * k, np.uint8)


@pytest.fixture(scope="module")
def base_videos(tmp_path_factory):
    "A 30-frame 10 fps mp4 with its index at the end, and the same with the index first (faststart)."
    folder = tmp_path_factory.mktemp("base")
    return {"end": write_mp4(folder / "end.mp4", ramp(), 10).read_bytes(),
            "fast": write_mp4(folder / "fast.mp4", ramp(), 10, faststart=True).read_bytes()}


def write_other(path: Path, codec: str) -> bytes:
    "The 30-frame 10 fps ramp in another container (mkv, avi), written with PyAV."
    import av
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in ramp():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")): container.mux(packet)
        for packet in stream.encode(): container.mux(packet)
    return path.read_bytes()


_CONTAINER_BOXES = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta")


def mp4_boxes(mp4: bytes, start: int = 0, end: int | None = None):
    "(name, offset, size) of every box of an mp4, depth first (the sample entry 'avc1' and its 'avcC' included)."
    end = len(mp4) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", mp4[at:at + 8])
        if size < 8 or at + size > end: return
        yield kind.decode("latin1"), at, size
        if kind in _CONTAINER_BOXES: yield from mp4_boxes(mp4, at + 8, at + size)
        if kind == b"stsd": yield from mp4_boxes(mp4, at + 16, at + size)
        if kind == b"avc1": yield from mp4_boxes(mp4, at + 86, at + size)
        at += size


# (box, offset of the field from the box start, width in bytes) of the header fields a hostile user would edit
HEADER_FIELDS = {"mvhd.timescale": ("mvhd", 20, 4), "mvhd.duration": ("mvhd", 24, 4), "tkhd.width": ("tkhd", 84, 4),
                 "tkhd.height": ("tkhd", 88, 4), "mdhd.timescale": ("mdhd", 20, 4), "mdhd.duration": ("mdhd", 24, 4),
                 "stts.entries": ("stts", 12, 4), "stts.count": ("stts", 16, 4), "stts.delta": ("stts", 20, 4),
                 "stsz.sample_size": ("stsz", 12, 4), "stsz.count": ("stsz", 16, 4), "stsz.size0": ("stsz", 20, 4),
                 "stsc.entries": ("stsc", 12, 4), "stsc.per_chunk": ("stsc", 20, 4), "stco.entries": ("stco", 12, 4),
                 "stco.offset0": ("stco", 16, 4), "stss.entries": ("stss", 12, 4), "ctts.entries": ("ctts", 12, 4),
                 "avc1.width": ("avc1", 32, 2), "avc1.height": ("avc1", 34, 2), "avcC.sps_length": ("avcC", 14, 2)}


def edit(mp4: bytes, field: str, value: int) -> bytes:
    "The mp4 with one header field set to `value`."
    box, offset, width = HEADER_FIELDS[field]
    at = next(a for name, a, _ in mp4_boxes(mp4) if name == box) + offset
    return mp4[:at] + value.to_bytes(width, "big") + mp4[at + width:]


def corrupt_variants(mp4: bytes, seed: int, flips: int = 40):
    "(name, bytes) of truncated, header-edited and bit-flipped copies of an mp4."
    for fraction in (0.0, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        yield f"cut{fraction}", mp4[:int(len(mp4) * fraction)]
    for field, (_, _, width) in HEADER_FIELDS.items():
        for value in ((0, 1, 0xFFFF) if width == 2 else (0, 1, 2**30, 2**31, 2**32 - 1)):
            yield f"{field}={value}", edit(mp4, field, value)
    rng = random.Random(seed)
    moov = next((a, a + s) for name, a, s in mp4_boxes(mp4) if name == "moov")
    for k in range(flips):
        flipped = bytearray(mp4)
        low, high = moov if k % 2 == 0 else (0, len(mp4))  # the index, or anywhere
        for _ in range(rng.choice([1, 4, 16])):
            at = rng.randrange(low, high)
            flipped[at] ^= 1 << rng.randrange(8)
        yield f"flip{k}", bytes(flipped)


# Reads each path of stdin with read_video and prints a JSON line before and after: a line without its pair
# names the file that ended the process.
DECODE_WORKER = r"""
import json, sys
from unloc_nb.data import probe_video, read_video, UnLocDataError
for line in sys.stdin:
    path = line.rstrip("\n")
    print(json.dumps({"start": path}), flush=True)
    try:
        clip = read_video(path, 8, 32)
        result = {"shape": list(clip.frames.shape), "T": clip.num_source_frames, "fps": clip.fps,
                  "probe": list(probe_video(path))}
    except UnLocDataError as e: result = {"error": str(e)}
    except BaseException as e: result = {"other": f"{type(e).__name__}: {e}"}
    print(json.dumps({"done": path, **result}), flush=True)
"""


def decode_in_subprocess(paths: list[Path], timeout: int = 600) -> dict[str, dict]:
    "read_video of every path in a child process, restarted after a crash: {path: result}; a crash is {'crash': code}."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    results, todo = {}, [str(p) for p in paths]
    while todo:
        out = subprocess.run([sys.executable, "-c", DECODE_WORKER], input="\n".join(todo) + "\n", capture_output=True,
                             text=True, timeout=timeout, env=env)
        started = None
        for line in out.stdout.splitlines():
            record = json.loads(line)
            if "start" in record: started = record["start"]
            else: results[record.pop("done")] = record; started = None
        if started is not None: results[started] = {"crash": out.returncode, "stderr": out.stderr[-500:]}
        elif out.returncode != 0: raise AssertionError(f"decode worker failed: {out.stderr[-2000:]}")
        todo = [p for p in todo if p not in results]
    return results


def test_corrupt_mp4s_never_crash_and_never_decode_wrongly(base_videos, tmp_path):
    paths = []
    for base, mp4 in base_videos.items():
        for name, corrupt in corrupt_variants(mp4, seed=len(base)):
            paths.append(tmp_path / f"{base}__{name}.mp4"); paths[-1].write_bytes(corrupt)
    assert len(paths) == 294  # 2 x (8 cuts + 99 header edits + 40 bit-flip sets)
    results = decode_in_subprocess(paths)
    crashes = {Path(p).name: r for p, r in results.items() if "crash" in r}
    assert not crashes, f"the decoder ended the process on {sorted(crashes)}: {next(iter(crashes.values()))}"
    others = {Path(p).name: r["other"] for p, r in results.items() if "other" in r}
    assert not others, f"errors that are not UnLocDataError: {others}"
    for path, result in results.items():
        if "error" in result:
            assert result["error"].startswith(path), result  # the message names the file first
            assert "Check failed" not in result["error"] and ".cc:" not in result["error"], result  # decord internals
        else:  # decoded: the clip must be the video's 30 frames, as its container lists them
            assert result["shape"] == [8, 3, 32, 32] and result["T"] == 30, (path, result)
    # a container's own numbers are the truth we can check: a flip that edits its frame rate consistently (mdhd
    # timescale, say) gives another rate, and the dataset then reports the duration that disagrees with the annotation
    for path, result in results.items():
        if "shape" in result: assert result["probe"] == [30, result["fps"]] and result["T"] == 30, (path, result)
    stts = results[str(tmp_path / "end__stts.count=1073741824.mp4")]
    assert "the container lists 1073741824 frames, but its duration of 3 s at 10 fps holds 30" in stts["error"]
    assert sum("error" in r for r in results.values()) > 100  # most corruptions are caught, not decoded


def test_corrupt_mkv_and_avi_never_crash(tmp_path):
    paths = []
    for name, codec in (("mkv", "libx264"), ("avi", "mpeg4")):
        video = write_other(tmp_path / f"base.{name}", codec)
        rng = random.Random(name)
        for fraction in (0.0, 0.1, 0.5, 0.9):
            paths.append(tmp_path / f"{name}_cut{fraction}.{name}")
            paths[-1].write_bytes(video[:int(len(video) * fraction)])
        for k in range(25):
            flipped = bytearray(video)
            for _ in range(rng.choice([1, 4, 16])):
                at = rng.randrange(len(video) if k % 2 else min(len(video), 2000))  # anywhere, or in the header
                flipped[at] ^= 1 << rng.randrange(8)
            paths.append(tmp_path / f"{name}_flip{k}.{name}"); paths[-1].write_bytes(bytes(flipped))
    results = decode_in_subprocess(paths)
    assert not [p for p, r in results.items() if "crash" in r or "other" in r], results
    for path, result in results.items():
        if "error" in result: assert result["error"].startswith(path), result
        else:  # a frame or two of a cut or flipped file may be lost (DECODED_COUNT_TOLERANCE), no more
            listed = result["probe"][0]
            assert abs(result["T"] - listed) <= 1 + 0.01 * listed or path.endswith(".mkv"), result
            assert abs(result["T"] / result["fps"] - 3.0) <= 0.25 or result["fps"] != 10.0, (path, result)


def test_stts_edit_is_refused_by_the_probe_before_the_decoder(base_videos, tmp_path):
    for count in (2**30, 2**31, 2**32 - 1, 100_000):
        path = tmp_path / f"stts_{count}.mp4"
        path.write_bytes(edit(base_videos["end"], "stts.count", count))
        with pytest.raises(UnLocDataError, match=rf"stts_{count}\.mp4: the container lists {count} frames"):
            probe_video(path)  # never reaches decord, so it is safe in-process


def test_probe_checks_each_number_of_the_header(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", ramp(), 10)
    good = {"format": "mov,mp4,m4a,3gp,3g2,mj2", "fps": 10.0, "averaged": True, "listed": 30, "indexed": 30,
            "width": 64, "height": 48, "stream_seconds": 3.0, "container_seconds": 3.0}
    assert video._check_facts(path, good) == (30, 10.0)
    cases = [({"fps": 10240.0}, "frame rate 10240 fps is outside 0.01..1000"),
             ({"fps": float("nan")}, "frame rate nan fps"), ({"width": 9000}, "frame size 9000x48 is outside"),
             ({"height": 0}, "frame size 64x0"), ({"stream_seconds": float("inf")}, "duration inf s"),
             ({"listed": 3000}, "lists 3000 frames, but its duration of 3 s at 10 fps holds 30"),
             ({"listed": 3}, "lists 3 frames, but its duration"), ({"indexed": 1}, "lists 30 frames but indexes 1"),
             ({"listed": 0, "stream_seconds": None, "container_seconds": 1e9}, "more than the file"),
             ({"listed": 0, "stream_seconds": None, "container_seconds": None}, "no frame rate or no frames")]
    for change, message in cases:
        with pytest.raises(UnLocDataError, match=f"v\\.mp4: .*{message}"):
            video._check_facts(path, {**good, **change})
    # a guessed (maximum) rate of a variable-rate stream may imply more frames than it has: not an error
    assert video._check_facts(path, {**good, "listed": 20, "averaged": False}) == (20, 10.0)
    # a container duration may include a longer audio track: fewer frames than it implies are fine
    longer_audio = {**good, "listed": 30, "stream_seconds": None, "container_seconds": 10.0}
    assert video._check_facts(path, longer_audio) == (30, 10.0)


def test_decoder_that_finds_other_frames_than_the_container_lists(tmp_path, monkeypatch):
    path = write_mp4(tmp_path / "v.mp4", ramp(), 10)

    class FewFrames:  # decord reading only 5 of the 30 listed frames (a flipped bit in the sample table, say)
        def __init__(self, *args, **kw): pass
        def __len__(self): return 5
        def get_avg_fps(self): return 10.0
    monkeypatch.setattr(video.decord, "VideoReader", FewFrames)
    message = r"v\.mp4: the decoder finds 5 frames at 10 fps where the container lists 30 at 10 fps"
    with pytest.raises(UnLocDataError, match=message):
        decode_video(path, 8, 32)


def test_decoder_messages_lose_build_paths_and_check_failed_internals():
    path = Path("x.mp4")
    messages = {
        "[03:47:13] /github/workspace/src/video/ffmpeg/threaded_decoder.cc:218: Check failed: avcodec_send_packet("
        "dec_ctx_.get(), pkt.get()) >= 0 (-1094995529 vs. 0) Thread worker: Error sending packet.":
            "Error sending packet",
        "Check failed: avfilter_graph_create_filter(&buffersrc_ctx_, buffersrc, \"in\", args, __null, filter_graph_.get"
        "()) >= 0 (-22 vs. 0) Cannot create buffer source": "Cannot create buffer source",
        "[x.mp4]Unable to handle EOF because the video might have corrupted framesand `DECORD_REWIND_RETRY_MAX=16`. "
        "You may override the limit": "Unable to handle EOF because the video might have corrupted frames",
    }
    for raw, clean in messages.items():
        assert video._decoder_message(RuntimeError(raw + "\n\nStack trace:\n  [bt] (0) libdecord.so"), path) == clean


def test_decoding_holds_one_chunk_of_full_resolution_frames_at_a_time(tmp_path, monkeypatch):
    path = write_mp4(tmp_path / "v.mp4", ramp(30, 96, 128), 10)
    whole = decode_video(path, 16, 48)
    batches = []
    real_reader = video.decord.VideoReader

    class Recording(real_reader):
        def get_batch(self, indices):
            batches.append(len(indices))
            return super().get_batch(indices)
    monkeypatch.setattr(video.decord, "VideoReader", Recording)
    monkeypatch.setattr(video, "DECODE_CHUNK_BYTES", 3 * 96 * 128 * 3)  # room for 3 full-resolution frames
    chunked = decode_video(path, 16, 48)
    assert max(batches) == 3 and sum(batches) == 16
    assert torch.equal(chunked.frames, whole.frames)  # the same frames as one batch
    batches.clear(); monkeypatch.setattr(video, "DECODE_CHUNK_BYTES", 1)  # a frame larger than the chunk: one at a time
    assert torch.equal(decode_video(path, 16, 48).frames, whole.frames) and set(batches) == {1}


def test_absurd_sizes_are_refused_before_decoding(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", ramp(), 10)
    cases = [({"num_frames": 4, "size": 0}, "size should be a whole number in 1..8192, got 0"),
             ({"num_frames": 4, "size": -3}, "size should be"), ({"num_frames": 4, "size": 2.5}, "size should be"),
             ({"num_frames": 4, "size": True}, "size should be"), ({"num_frames": 0}, "num_frames should be"),
             ({"num_frames": 4.0}, "num_frames should be"), ({"num_frames": 10**9}, "num_frames should be"),
             ({"num_frames": 4, "size": 32, "short_side": 16}, "short_side 16 is smaller than the crop size 32"),
             ({"num_frames": 4, "size": 32, "short_side": 10**6}, "short_side should be"),
             ({"num_frames": 100_000, "size": 224}, "100000 frames of 256 x 341 pixels would take 24.4 GiB")]
    for kw, message in cases:
        with pytest.raises(UnLocDataError, match=f"v\\.mp4: {message}"):
            read_video(path, **kw)
    wide = write_mp4(tmp_path / "wide.mp4", [np.zeros((16, 8200, 3), np.uint8)] * 2, 10)
    with pytest.raises(UnLocDataError, match=r"wide\.mp4: frame size 8200x16 is outside 1\.\.8192 pixels per side"):
        probe_video(wide)
    thin = write_mp4(tmp_path / "thin.mp4", [np.zeros((4000, 16, 3), np.uint8)] * 2, 10)
    with pytest.raises(UnLocDataError, match=r"thin\.mp4: 16x4000 frames resized to a short side of 256 would be"):
        read_video(thin, 4, 224)


def test_files_that_are_not_videos(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 100)
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    for name, message in [("empty.mp4", "not a readable video"), ("text.mp4", "not a"), ("random.mp4", "not a"),
                          ("folder.mp4", "not a regular file"), ("missing.mp4", "no such video file")]:
        with pytest.raises(UnLocDataError, match=f"{name}: {message}"):
            read_video(tmp_path / name, 4, 32)


# ================================================================================================= video ids
@pytest.mark.parametrize("video_id", ["../outside", "/etc/passwd", "a/../../outside", "", "a\x00b"])
def test_video_ids_cannot_leave_the_video_folder(tmp_path, video_id):
    (tmp_path / "outside.mp4").write_bytes(b"x"); (tmp_path / "videos").mkdir()
    with pytest.raises(UnLocDataError, match="is not a file name inside the video folder"):
        find_video(tmp_path / "videos", video_id)
    with pytest.raises(UnLocDataError, match="is not a file name inside the video folder"):
        find_video(tmp_path / "videos", "fine", {"youtube_id": video_id or "../x"})


def test_a_dataset_skips_a_video_id_that_leaves_the_folder(tmp_path):
    videos = tmp_path / "videos"; videos.mkdir()
    write_mp4(videos / "good.mp4", ramp(), 10); write_mp4(tmp_path / "secret.mp4", ramp(), 10)
    anns = [Annotation(video_id, 3.0, "train", [(0.0, 1.0, "a")]) for video_id in ("good", "../secret")]
    with pytest.warns(UnLocDataWarning, match="'../secret' is not a file name inside the video folder"):
        ds = ActionLocalizationDataset(anns, videos, 4, 32)
    assert [a.video_id for a in ds.annotations] == ["good"]
    with pytest.raises(UnLocDataError, match="not a file name inside"):
        ActionLocalizationDataset(anns, videos, 4, 32, strict=True)


# ============================================================================================ annotation files
def check_refused(path: Path, fmt: str, message: str, **kw):
    with pytest.raises(UnLocDataError) as caught:
        read_annotations(path, fmt, **kw)
    assert path.name in str(caught.value) and message in str(caught.value), str(caught.value)


CHARADES_BAD = [("A 1 2##\n", "sentence: expected a non-empty text"), ("A 1 2##   \n", "expected a non-empty text"),
                ("A nan 2##x.\n", "segment [nan, 2.0] is not finite"), ("A 1 inf##x.\n", "is not finite"),
                ("A 1 1e999##x.\n", "is not finite"), ("A 1 2\n", "cannot parse"), ("A 1##x\n", "cannot parse"),
                ("A 1 2 3##x\n", "cannot parse"), ("A one 2##x\n", "start: expected a number, got 'one'")]


@pytest.mark.parametrize("text,message", CHARADES_BAD)
def test_charades_sta_lines(tmp_path, text, message):
    path = tmp_path / "charades_sta_train.txt"; path.write_text(text)
    check_refused(path, "charades_sta", message)


def test_charades_sta_files(tmp_path):
    path = tmp_path / "charades_sta_test.txt"
    path.write_bytes("\ufeffAKKWU 1.0 2.0##a person sits.\nBOKLM 0 1##a person stands.\n".encode())
    with pytest.warns(UnLocDataWarning, match="no duration is known for 2 videos"):
        assert [a.video_id for a in read_annotations(path, "charades_sta")] == ["AKKWU", "BOKLM"]  # the BOM is no id
    path.write_bytes(b"A 1 2##caf\xe9\n")
    check_refused(path, "charades_sta", "cannot read as UTF-8 text")
    check_refused(tmp_path, "charades_sta", "not a regular file")
    path.write_text("A 1 2##x.\n")
    csv = tmp_path / "Charades_v1_test.csv"
    positive = "expected a finite number > 0, got"
    for length, message in [("nan", f"{positive} 'nan'"), ("0", f"{positive} '0'"), ("-3", f"{positive} '-3'"),
                            ("abc", "expected a number, got 'abc'")]:
        csv.write_text(f"id,length\nA,{length}\n")
        with pytest.raises(UnLocDataError, match=f"Charades_v1_test.csv:2: length of A: {message}"):
            read_annotations(path, "charades_sta", csv_path=csv)
    csv.write_text("id,duration\nA,3\n")
    with pytest.raises(UnLocDataError, match="needs the columns 'id' and 'length'"):
        read_annotations(path, "charades_sta", csv_path=csv)


def test_charades_sta_with_a_corrupt_or_outside_video(tmp_path):
    videos = tmp_path / "videos"; videos.mkdir()
    (videos / "A.mp4").write_bytes(b"corrupt")
    path = tmp_path / "charades_sta_train.txt"; path.write_text("A 1 2##a.\n../B 1 2##b.\n")
    anns, quirks = data.read_with_quirks(path, "charades_sta", video_dir=videos)
    assert quirks == {"video_unprobed": 2, "no_duration": 2} and [a.duration for a in anns] == [None, None]


def caption_entry(**change):
    return {"v": {"duration": 10, "timestamps": [[0, 1]], "sentences": ["a"], **change}}


ANET_CAPTIONS_BAD = [
    ([1, 2], "expected a JSON object of videos"), ({"v": 3}, "entry 'v': malformed entry"),
    (caption_entry(duration=float("nan")), "duration: expected a finite number > 0"),
    (caption_entry(duration=-5), "got -5"), (caption_entry(duration=0), "got 0"),
    (caption_entry(duration=None), "expected a number, got None"), (caption_entry(duration=True), "got True"),
    (caption_entry(sentences=[""]), "sentences[0]: expected a non-empty text"),
    (caption_entry(sentences=[7]), "sentences[0]: expected a non-empty text, got 7"),
    (caption_entry(sentences=[None]), "expected a non-empty text, got None"),
    (caption_entry(timestamps=[[0]]), "timestamps[0]: expected [start, end], got [0]"),
    (caption_entry(timestamps=[[0, 1, 2]]), "expected [start, end]"),
    (caption_entry(timestamps=[["a", 1]]), "timestamps[0]: expected a number, got 'a'"),
    (caption_entry(timestamps=[[float("nan"), 1]]), "is not finite"),
    (caption_entry(sentences=["a", "b"]), "1 timestamps but 2 sentences"),
    (caption_entry(timestamps={"a": 1}), "'timestamps' and 'sentences' should be lists"),
    ({"": caption_entry()["v"]}, "video id: expected a non-empty text"),
]


@pytest.mark.parametrize("content,message", ANET_CAPTIONS_BAD)
def test_anet_captions_entries(tmp_path, content, message):
    path = tmp_path / "val_1.json"; path.write_text(json.dumps(content))
    check_refused(path, "anet_captions", message)


def test_json_files_keys_nesting_numbers_and_bom(tmp_path):
    path = tmp_path / "val_1.json"
    path.write_text('{"v": {"duration": 10, "timestamps": [[0, 1]], "sentences": ["a"]},\n'
                    ' "v": {"duration": 12, "timestamps": [[0, 2]], "sentences": ["b"]}}')
    check_refused(path, "anet_captions", "key 'v' appears twice in one JSON object")
    path.write_text('{"v": {"duration": 10, "duration": 20, "timestamps": [], "sentences": []}}')
    check_refused(path, "anet_captions", "key 'duration' appears twice")
    path.write_text("[" * 100_000 + "]" * 100_000)
    check_refused(path, "anet_captions", "not valid JSON")
    path.write_text('{"v": {"duration": 1' + "0" * 5000 + ', "timestamps": [], "sentences": []}}')
    check_refused(path, "anet_captions", "not valid JSON")
    path.write_text('{"v": {"duration": 1e999, "timestamps": [], "sentences": []}}')
    check_refused(path, "anet_captions", "duration: expected a finite number > 0, got inf")
    path.write_bytes('\ufeff{"v": {"duration": 10, "timestamps": [[0, 1]], "sentences": ["a"]}}'.encode())
    assert read_annotations(path, "anet_captions")[0].segments == [(0.0, 1.0, "a")]
    path.write_text("")
    check_refused(path, "anet_captions", "not valid JSON")


def qvh_record(**change):
    record = {"qid": 1, "query": "a man talks.", "duration": 10, "vid": "x_0.0_10.0", "relevant_windows": [[0, 4]],
              "relevant_clip_ids": [0, 1], "saliency_scores": [[1, 2, 3], [4, 4, 4]]}
    return {**record, **change}


QVH_BAD = [
    ([qvh_record(duration=float("nan"))], "1: duration: expected a finite number > 0"),
    ([qvh_record(duration=-1)], "got -1"), ([qvh_record(duration="abc")], "expected a number, got 'abc'"),
    ([qvh_record(query="")], "1: query: expected a non-empty text"), ([qvh_record(query=5)], "got 5"),
    ([qvh_record(vid="")], "vid: expected a non-empty text"), ([qvh_record(qid=[1])], "qid [1] should be an integer"),
    ([qvh_record(), qvh_record(query="another query.")], "2: qid 1 was already used at"),
    ([qvh_record(relevant_clip_ids=[0, 5])], "relevant_clip_ids[1] = 5 is not a 2 s clip of the 10 s video (0..4)"),
    ([qvh_record(relevant_clip_ids=[0, -1])], "relevant_clip_ids[1] = -1"),
    ([qvh_record(relevant_clip_ids=[0, 1.0])], "relevant_clip_ids[1] = 1.0"),
    ([qvh_record(relevant_clip_ids=[0, True])], "relevant_clip_ids[1] = True"),
    ([qvh_record(relevant_clip_ids=[1, 1])], "relevant_clip_ids name a clip twice"),
    ([qvh_record(saliency_scores=[[1, 2, 3]])], "2 relevant_clip_ids but 1 saliency_scores"),
    ([qvh_record(saliency_scores=[[1, 2, 5], [0, 0, 0]])], "saliency_scores[0] = [1, 2, 5] should be a list of scores"),
    ([qvh_record(saliency_scores=[[1, 2, -1], [0, 0, 0]])], "should be a list of scores 0..4"),
    ([qvh_record(saliency_scores=[[], [0, 0, 0]])], "saliency_scores[0] = []"),
    ([qvh_record(saliency_scores=[["a"], [0, 0, 0]])], "saliency_scores[0] = ['a']"),
    ([qvh_record(relevant_windows=[[0]])], "relevant_windows[0]: expected [start, end]"),
    ([qvh_record(relevant_windows=[[float("nan"), 1]])], "is not finite"),
    ([qvh_record(relevant_clip_ids=7)], "relevant_clip_ids and saliency_scores should be lists"),
    ([[1, 2]], "1: expected a JSON object, got [1, 2]"),
]


@pytest.mark.parametrize("records,message", QVH_BAD)
def test_qvhighlights_records(tmp_path, records, message):
    path = tmp_path / "highlight_val_release.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    check_refused(path, "qvhighlights", message)


def anet_entry(segment=(1, 2), label="a", **change):
    annotations = [{"segment": list(segment), "label": label}]
    return {"subset": "validation", "duration": 9, "annotations": annotations, **change}


def thumos_entry(**change):
    return {"subset": "Validation", "duration": 9, "fps": 30, "annotations": [], **change}


DATABASE_BAD = [  # (format, entry, message) for the formats with a 'database'
    ("activitynet", anet_entry(label=3), "annotations[0].label: expected a non-empty text, got 3"),
    ("activitynet", anet_entry(label=None), "got None"), ("activitynet", anet_entry(label=""), "got ''"),
    ("activitynet", anet_entry(segment=[1]), "annotations[0].segment: expected [start, end]"),
    ("activitynet", anet_entry(duration=float("nan")), "duration: expected a finite"),
    ("activitynet", anet_entry(duration=-2), "got -2"),
    ("activitynet", anet_entry(annotations={"a": 1}), "annotations should be a list"),
    ("activitynet", anet_entry(segment=[float("inf"), 1]), "is not finite"),
    ("activitynet", "nonsense", "malformed entry"),
    ("thumos14_json", thumos_entry(duration=0), "duration: expected a finite"),
    ("thumos14_json", thumos_entry(fps=0), "fps: expected a finite number > 0"),
    ("thumos14_json", thumos_entry(fps=float("nan")), "fps: expected"),
    ("coin", {"subset": "training", "duration": 9, "annotation": [{"id": "1", "segment": [0, 1], "label": 4}]},
     "annotation[0].label: expected a non-empty text"),
    ("coin", {"subset": "training", "duration": 9, "annotation": [{"id": "x", "segment": [0, 1], "label": "a"}]},
     "id 'x' is not a step number"),
    ("coin", {"subset": "training", "duration": float("inf"), "annotation": []}, "duration: expected a finite"),
    ("coin", {"subset": "training", "duration": 9, "annotation": 5}, "annotation should be a list"),
]


@pytest.mark.parametrize("fmt,entry,message", DATABASE_BAD)
def test_database_formats(tmp_path, fmt, entry, message):
    path = tmp_path / f"{fmt}.json"; path.write_text(json.dumps({"database": {"v1": entry}}))
    check_refused(path, fmt, message)


def test_activitynet_results_and_shapes(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"results": {"v": [{"segment": [0, 1], "label": "a", "score": float("nan")}]}}))
    check_refused(path, "activitynet", "results entry 'v'[0].score: expected a finite number, got nan")
    path.write_text(json.dumps({"results": {"v": {"segment": [0, 1]}}}))
    check_refused(path, "activitynet", "expected a list of predictions")
    path.write_text(json.dumps({"taxonomy": []}))
    check_refused(path, "activitynet", "expected a JSON object with 'database'")
    path.write_text(json.dumps({"database": []}))
    check_refused(path, "activitynet", "expected a JSON object with a 'database' object")


def test_thumos14_txt_folder(tmp_path):
    folder = tmp_path / "annotations"; folder.mkdir()
    (folder / "HighJump_val.txt").write_text("video_validation_1 74.6\n")
    check_refused(folder, "thumos14_txt", "cannot parse")
    (folder / "HighJump_val.txt").write_text("video_validation_1 nan 78.6\n")
    check_refused(folder, "thumos14_txt", "is not finite")
    (folder / "HighJump_val.txt").write_bytes(b"video_validation_1 1 \xff\n")
    check_refused(folder, "thumos14_txt", "cannot read as UTF-8")
    check_refused(folder / "HighJump_val.txt", "thumos14_txt", "expected a folder")


def test_reader_arguments_are_checked(tmp_path):
    path = tmp_path / "charades_sta_train.txt"; path.write_text("A 1 2##a.\n")
    check_refused(path, "charades_sta", "the charades_sta reader has no argument 'foo'; its arguments: csv_path", foo=1)
    check_refused(path, "charades_sta", "reader argument tol should be a number >= 0, got 'x'", tol="x")
    check_refused(path, "charades_sta", "reader argument tol should be a number >= 0, got nan", tol=float("nan"))
    check_refused(path, "charades_sta", "reader argument drop_zero_length should be true or false",
                  drop_zero_length="yes")
    with pytest.raises(UnLocDataError, match="unknown annotation format 'charades'"):
        read_annotations(path, "charades")
    assert "durations" in reader_arguments("thumos14_txt")


# ===================================================================================================== datasets
@pytest.fixture()
def sample_anns():
    return read_annotations(sample_path("activitynet.json"), "activitynet")[:3]  # syn_00, syn_01, syn_02


def test_a_dataset_without_any_video_is_an_error(tmp_path, sample_anns):
    message = r"no tal item in 3 annotated videos; first problem: .*no video file for 'syn_00'"
    with pytest.warns(UnLocDataWarning), pytest.raises(UnLocDataError, match=message):
        ActionLocalizationDataset(sample_anns, tmp_path / "wrong_dir", 4, 32)
    with pytest.raises(UnLocDataError, match="no mr item in 0 annotated videos"):
        MomentRetrievalDataset([], sample_path("videos"), 4, 32)


def test_dataset_arguments_and_hand_built_annotations(sample_anns):
    videos = sample_path("videos")
    for kw, message in [({"num_frames": 0}, "num_frames should be"), ({"size": 0}, "size should be"),
                        ({"size": 64, "short_side": 32}, "short_side should be a whole number in 64..8192")]:
        with pytest.raises(UnLocDataError, match=message):
            ActionLocalizationDataset(sample_anns, videos, **{"num_frames": 4, "size": 32, **kw})
    for ann, message in [(Annotation("syn_00", 12.0, "train", [(0.0, 1.0, 3)]), "segments\\[0\\] text"),
                         (Annotation("syn_00", 12.0, "train", [(float("nan"), 1.0, "a")]), "expected a finite number"),
                         (Annotation("syn_00", 12.0, "train", [(2.0, 1.0, "a")]), "ends before it starts"),
                         (Annotation("syn_00", -1.0, "train", [(0.0, 1.0, "a")]), "duration: expected a finite"),
                         (Annotation("", 12.0, "train", [(0.0, 1.0, "a")]), "video_id: expected a non-empty text")]:
        with pytest.raises(UnLocDataError, match=message):
            ActionLocalizationDataset([ann], videos, 4, 32)


@pytest.fixture()
def folder_with_an_undecodable_video(tmp_path):
    "syn_00 and syn_02 as they are, syn_01 with a zero-length H.264 parameter set: it probes but does not decode."
    for name in ("syn_00", "syn_02"):
        (tmp_path / f"{name}.mp4").write_bytes(sample_path(f"videos/{name}.mp4").read_bytes())
    mp4 = sample_path("videos/syn_01.mp4").read_bytes()
    (tmp_path / "syn_01.mp4").write_bytes(edit(mp4, "avcC.sps_length", 0))
    return tmp_path


def test_training_leaves_out_an_undecodable_video_once(folder_with_an_undecodable_video, sample_anns):
    train_set = ActionLocalizationDataset(sample_anns, folder_with_an_undecodable_video, 4, 32, train=True)
    assert len(train_set) == 3
    loader = torch.utils.data.DataLoader(train_set, batch_size=2, shuffle=True, collate_fn=data.collate,
                                         generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = [vid for _ in range(3) for batch in loader for vid in batch.video_ids]
    reports = [w.message for w in caught if isinstance(w.message, UnLocDataWarning)]
    assert len(reports) == 1 and "left out video 'syn_01' and its 1 items" in str(reports[0])
    assert "syn_01.mp4: cannot decode video frames" in str(reports[0])
    assert "syn_01" not in seen and set(seen) == {"syn_00", "syn_02"}
    assert len(train_set) == 2 and [a.video_id for a in train_set.annotations] == ["syn_00", "syn_02"]
    assert train_set.left_out == ["syn_01"]
    strict = ActionLocalizationDataset(sample_anns, folder_with_an_undecodable_video, 4, 32, train=True, strict=True)
    with pytest.raises(UnLocDataError, match=r"syn_01\.mp4: cannot decode video frames"):
        [strict[i] for i in range(3)]


def test_evaluation_never_puts_another_videos_items_in_place(folder_with_an_undecodable_video, sample_anns):
    eval_set = ActionLocalizationDataset(sample_anns, folder_with_an_undecodable_video, 4, 32, cache=True)
    assert eval_set[0].video_id == "syn_00"
    with pytest.raises(UnLocDataError, match=r"syn_01\.mp4: cannot decode .*does not put another video's items in its "
                                             r"place: leave video 'syn_01' out"):
        eval_set[1]
    assert eval_set[2].video_id == "syn_02"
    with pytest.warns(UnLocDataWarning, match="left out video 'syn_01'"):
        assert eval_set.drop_unreadable() == ["syn_01"]
    assert [eval_set[i].video_id for i in range(len(eval_set))] == ["syn_00", "syn_02"]
    assert sorted(eval_set.cache) == [0, 1]  # the decoded frames of the others are kept, renumbered
    with pytest.warns(UnLocDataWarning, match="no video file for 'syn_0"):  # the folder holds 3 of the videos
        hl = HighlightDataset(read_annotations(sample_path("qvhighlights_train.jsonl"), "qvhighlights"),
                              folder_with_an_undecodable_video, 4, 32)
    with pytest.raises(UnLocDataError, match="syn_01"):
        [hl[i] for i in range(len(hl))]


def test_annotation_duration_far_from_the_videos_is_reported(tmp_path):
    write_mp4(tmp_path / "v.mp4", ramp(), 10)
    ds = ActionLocalizationDataset([Annotation("v", 100.0, "train", [(0.0, 1.0, "a")])], tmp_path, 4, 32)
    with pytest.warns(UnLocDataWarning, match=r"v\.mp4: video 'v' lasts 3\.00 s but its annotation says 100\.00 s"):
        ds[0]


# =================================================================================================== evaluators
def tal_files(tmp_path, results, database=None):
    database = database or {"v1": {"subset": "validation", "annotations": [{"segment": [0, 5], "label": "a"}]}}
    gt = tmp_path / "gt.json"; gt.write_text(json.dumps({"database": database}))
    pred = tmp_path / "pred.json"; pred.write_text(json.dumps({"results": results}))
    return gt, pred


def cli(capsys, *args) -> tuple[int, str, str]:
    "unloc-eval in-process: (exit status, stdout, stderr); argparse's own exits included."
    try: status = unloc_eval([str(a) for a in args])
    except SystemExit as e: status = e.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return status, out.out, out.err


def test_tal_wrong_numbers_are_refused(tmp_path, capsys):
    nan = float("nan")
    one = lambda segment, score=0.9: {"v1": [{"segment": segment, "label": "a", "score": score}]}
    cases = [(one([nan, nan]), "results['v1'][0]: segment [nan, nan] with score 0.9 is not finite"),
             (one([100, 95]), "segment [100.0, 95.0] with score 0.9 ends before it starts"),
             (one([0, 5], nan), "with score nan is not finite"), (one([0, 5], float("inf")), "score inf is not finite"),
             ({}, "pred.json: no prediction in 'results'"), ({"v1": []}, "no prediction in 'results'")]
    for results, message in cases:
        gt, pred = tal_files(tmp_path, results)
        status, out, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred)
        assert status == 2 and out == "" and message in err and "pred.json" in err, err
    # the official evaluator would score these 1.0; API callers get the same errors
    with pytest.raises(UnLocDataError, match="is not finite"):
        tal_map({"v1": [(0, 5, "a")]}, {"v1": [(nan, nan, "a", 0.9)]})
    with pytest.raises(UnLocDataError, match="ends before it starts"):
        tal_map({"v1": [(0, 5, "a")]}, {"v1": [(100, 95, "a", 0.9)]})
    official = tal_map({"v1": [(0, 5, "a")]}, {"v1": [(100, 95, "a", 0.9)]}, invalid="keep")
    assert official["average_mAP"] == 1.0  # what the official evaluator reports: opt-in only


def test_tal_drop_invalid_predictions_with_a_count(tmp_path, capsys):
    gt, pred = tal_files(tmp_path, {"v1": [{"segment": [0, 5], "label": "a", "score": 0.5},
                                           {"segment": [float("nan"), 1], "label": "a", "score": 0.9},
                                           {"segment": [9, 3], "label": "a", "score": 0.8}]})
    status, out, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred, "--invalid", "drop",
                           "--tiou-thresholds", "0.5")
    assert status == 0 and json.loads(out)["mAP"] == [1.0]
    assert "unloc-eval: warning:" in err and "left out 2 predictions" in err
    gt, pred = tal_files(tmp_path, {"v1": [{"segment": [9, 3], "label": "a", "score": 0.8}]})
    status, _, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred, "--invalid", "drop")
    assert status == 2 and "every one of the 1 predictions is invalid" in err


def test_tal_ground_truth_and_files(tmp_path, capsys):
    for segment, message in [([float("nan"), 5], "is not a finite number"), ([5, 1], "[5.0, 1.0] ends before it")]:
        database = {"v1": {"subset": "validation", "annotations": [{"segment": segment, "label": "a"}]}}
        gt, pred = tal_files(tmp_path, {"v1": [{"segment": [0, 5], "label": "a", "score": 0.5}]}, database)
        status, _, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred)
        assert status == 2 and "gt.json: database['v1']['annotations'][0]" in err and message in err, err
    gt, pred = tal_files(tmp_path, {"v1": [{"segment": [0, 5], "label": "a", "score": 0.5}]})
    pred.write_text('{"results": {"v1": [], "v1": [{"segment": [0, 5], "label": "a", "score": 0.5}]}}')
    status, _, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred)
    assert status == 2 and "pred.json: key 'v1' appears twice in one JSON object" in err
    big_score = b"1" + b"0" * 30  # beyond int64
    bom = b"\xef\xbb\xbf"
    pred.write_bytes(bom + b'{"results": {"v1": [{"segment": [0, 5], "label": "a", "score": ' + big_score + b"}]}}")
    status, out, _ = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred)
    assert status == 0 and json.loads(out)["average_mAP"] == 1.0  # a BOM and a score beyond int64 are fine
    for bad_input, message in [(tmp_path, "not a regular file"), (tmp_path / "nope.json", "no such file")]:
        status, _, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", bad_input)
        assert status == 2 and message in err
    pred.write_text("[" * 100_000)
    status, _, err = cli(capsys, "--task", "tal", "--ground-truth", gt, "--predictions", pred)
    assert status == 2 and "pred.json: not valid JSON" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    gt, _ = tal_files(tmp_path, {})
    os.mkfifo(tmp_path / "pipe.json")
    out = subprocess.run([sys.executable, "-c", "import sys; from unloc_nb.metrics import unloc_eval; "
                          "sys.exit(unloc_eval())", "--task", "tal", "--ground-truth", str(gt), "--predictions",
                          str(tmp_path / "pipe.json")], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and "pipe.json: cannot read: not a regular file" in out.stderr


@pytest.mark.parametrize("flags,message", [
    (["--tiou-thresholds", "2.0"], "2.0 is outside (0, 1]"), (["--tiou-thresholds", "0"], "0 is outside (0, 1]"),
    (["--tiou-thresholds", "nan"], "nan is outside (0, 1]"), (["--tiou-thresholds", "x"], "'x' is not a number"),
    (["--tiou-thresholds", "-0.5"], "is outside (0, 1]"), (["--invalid", "ignore"], "invalid choice: 'ignore'"),
    (["--task", "mr", "--subset", "validation"], "--subset does not apply to --task mr"),
    (["--task", "qvh", "--tiou-thresholds", "0.5"], "--tiou-thresholds does not apply to --task qvh"),
    (["--task", "mr", "--shared-qids-only"], "--shared-qids-only does not apply to --task mr"),
])
def test_bad_flags_exit_2_before_reading(tmp_path, capsys, flags, message):
    args = ["--task", "tal", "--ground-truth", tmp_path / "gt.json", "--predictions", tmp_path / "nope.json"]
    if "--task" in flags: args = args[2:]
    status, out, err = cli(capsys, *args, *flags)
    assert status == 2 and out == "" and message in err, err


def test_mr_wrong_numbers_and_empty_files(tmp_path, capsys):
    gt = tmp_path / "charades.txt"; gt.write_text("V1 0.0 10.0##person opens door.\n")
    pred = tmp_path / "pred.jsonl"
    cases = [("", "pred.jsonl: no prediction line"), ("\n\n", "no prediction line"),
             ('{"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[0, 10, NaN]]}',
              "pred.jsonl: line 1: pred_relevant_windows[0] = [0, 10, nan] is not finite"),
             ('{"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[10, 0, 0.5]]}',
              "ends before it starts"),
             ('{"vid": "V1", "query": "person opens door.", "pred_relevant_windows": [[0, 10, 0.5]], "vid": "V2"}',
              "key 'vid' appears twice")]
    for text, message in cases:
        pred.write_text(text)
        status, out, err = cli(capsys, "--task", "mr", "--ground-truth", gt, "--predictions", pred)
        assert status == 2 and out == "" and message in err, err
    pred.write_text('{"vid": "V1", "query": "person opens door.", '
                    '"pred_relevant_windows": [[10, 0, 0.9], [0, 10, 0.5]]}')
    status, out, err = cli(capsys, "--task", "mr", "--ground-truth", gt, "--predictions", pred, "--invalid", "drop")
    assert status == 0 and json.loads(out)["R1@0.7"] == 1.0 and "left out 1 predictions" in err
    for text, message in [("V1 nan 10##a.\n", "charades.txt:1: moment [nan, 10.0] is not a finite [start, end]"),
                          ("V1 10 0##a.\n", "moment [10.0, 0.0]"), ("V1 0 10##  \n", "charades.txt:1: sentence")]:
        gt.write_text(text)
        status, _, err = cli(capsys, "--task", "mr", "--ground-truth", gt, "--predictions", pred)
        assert status == 2 and message in err, err
    with pytest.raises(UnLocDataError, match="query 0 window 0: \\[0.0, 10.0, nan\\] is not finite"):
        mr_recall([[0, 10]], [[[0, 10, float("nan")]]])
    with pytest.raises(UnLocDataError, match="ground-truth query 0"):
        mr_recall([[float("nan"), 10]], [[[0, 10, 1.0]]])
    with pytest.raises(UnLocDataError, match="ns should be whole numbers >= 1"):
        mr_recall([[0, 10]], [[[0, 10, 1.0]]], ns=(0,))


def qvh_files(tmp_path, sub, gt):
    (tmp_path / "sub.jsonl").write_text("\n".join(json.dumps(d) for d in sub))
    (tmp_path / "gt.jsonl").write_text("\n".join(json.dumps(d) for d in gt))
    return tmp_path / "gt.jsonl", tmp_path / "sub.jsonl"


def test_qvh_wrong_numbers_duplicates_and_durations(tmp_path, capsys):
    gt = [{"qid": 1, "duration": 20, "relevant_windows": [[0, 4]], "relevant_clip_ids": [0, 1],
           "saliency_scores": [[4, 4, 2], [1, 2, 3]]}]
    sub = [{"qid": 1, "pred_relevant_windows": [[0, 4, 0.9]], "pred_saliency_scores": [0.9, 0.1] + [0] * 8}]
    nan = float("nan")
    cases = [([dict(sub[0], pred_saliency_scores=[nan] * 10)], gt, "sub.jsonl:1: pred_saliency_scores: nan is not"),
             ([dict(sub[0], pred_relevant_windows=[[nan, 4, 0.9]])], gt, "line 1: pred_relevant_windows[0]"),
             ([dict(sub[0], pred_relevant_windows=[[4, 0, 0.9]])], gt, "ends before it starts"),
             (sub + sub, gt, "sub.jsonl:2: qid 1 already appears on line 1"),
             (sub, gt + gt, "gt.jsonl:2: qid 1 already appears on line 1"),
             ([dict(sub[0], qid=[1])], gt, "sub.jsonl:1: qid [1] should be an integer or a string"),
             (sub, [dict(gt[0], duration=nan)], "gt.jsonl:1: duration: nan is not a finite number"),
             (sub, [dict(gt[0], duration=1e300)], "gt.jsonl:1: duration 1e+300 should be in (0, 1000000] seconds"),
             (sub, [dict(gt[0], duration="20")], "gt.jsonl:1: duration: '20' is not a number"),
             (sub, [dict(gt[0], relevant_windows=[[4, 0]])], "gt.jsonl:1: relevant_windows[0] = [4, 0] ends before"),
             (sub, [dict(gt[0], relevant_windows=[[0, 4, 1]])], "relevant_windows[0] = [0, 4, 1] should be [start, end]"),
             (sub, [dict(gt[0], saliency_scores=[[4, 4, "x"], [1, 2, 3]])], "gt.jsonl:1: saliency_scores: 'x' is not"),
             ([], gt, "sub.jsonl: no submission line")]
    for s, g, message in cases:
        gt_file, sub_file = qvh_files(tmp_path, s, g)
        status, out, err = cli(capsys, "--task", "qvh", "--ground-truth", gt_file, "--predictions", sub_file)
        assert status == 2 and out == "" and message in err, err
    with pytest.raises(UnLocDataError, match="is not finite"):
        qvh_eval([dict(sub[0], pred_relevant_windows=[[nan, nan, 1.0]])], gt)


def test_segmentation_metrics_refuse_nan_logits():
    with pytest.raises(UnLocDataError, match="not finite"):
        segmentation_metrics(np.array([[[float("nan"), 1.0]]]), np.array([[0, -1]]))


def test_cli_in_a_subprocess_exits_2_without_a_traceback(tmp_path):
    gt, pred = tal_files(tmp_path, {"v1": [{"segment": [float("nan"), float("nan")], "label": "a", "score": 1.0}]})
    command = "import sys; from unloc_nb.metrics import unloc_eval; sys.exit(unloc_eval())"
    out = subprocess.run([sys.executable, "-c", command, "--task", "tal", "--ground-truth", str(gt), "--predictions",
                          str(pred)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"unloc-eval: error: {pred}: results['v1'][0]: segment [nan, nan]")


# ================================================================================================= checkpoints
def test_corrupt_checkpoints_name_the_file(tmp_path):
    from unloc_nb.train import load_checkpoint
    files = {"empty.safetensors": b"", "random.safetensors": np.random.default_rng(1).bytes(3000),
             "text.safetensors": b"not a checkpoint\n" * 10, "huge_header.safetensors": (2**60).to_bytes(8, "little")}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(UnLocDataError, match=f"{name}: not a readable unloc_nb checkpoint"):
            load_checkpoint(tmp_path / name)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(UnLocDataError, match="foreign.safetensors: safetensors file without an unloc_nb config"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(UnLocDataError, match="missing.safetensors"):
        load_checkpoint(tmp_path / "missing.safetensors")
