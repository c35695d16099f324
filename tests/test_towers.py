"""Tests of unloc_nb.towers that do not fit the notebook: concurrent cache writers, wrapped checkpoints."""
import threading

import pytest
import torch

from unloc_nb.towers import FrameFeatureCache, TextTower, VideoTower, create_clip


def test_cache_concurrent_writers_never_expose_partial_files(tmp_path):
    "Writers racing on one key (unique temp files + os.replace): a reader only ever sees a complete tensor."
    video = tmp_path / "video.mp4"
    video.write_bytes(b"\0" * 1000)
    cache = FrameFeatureCache(tmp_path / "cache")
    key = cache.key(video, "model-a", num_frames=32, size=224, crop="center")
    values = [float(v) for v in range(1, 5)]
    stop = threading.Event()
    seen, errors = [], []

    def writer(value):
        for _ in range(25): cache.save(key, torch.full((32, 256), value))

    def reader():
        while True:  # at least one read after the writers are done
            done = stop.is_set()
            features = cache.load(key)
            if features is not None:
                if features.shape != (32, 256) or not (features == features[0, 0]).all(): errors.append(features)
                seen.append(float(features[0, 0]))
            if done: break

    read_thread = threading.Thread(target=reader)
    read_thread.start()
    writers = [threading.Thread(target=writer, args=(v,)) for v in values]
    for t in writers: t.start()
    for t in writers: t.join()
    stop.set(); read_thread.join()
    assert not errors
    assert seen and set(seen) <= set(values)
    assert float(cache.load(key)[0, 0]) in values
    assert list(cache.root.rglob("*.tmp")) == []


def test_cache_key_depends_on_every_part(tmp_path):
    video = tmp_path / "video.mp4"
    video.write_bytes(b"\0" * 10)
    cache = FrameFeatureCache(tmp_path / "cache")
    base = cache.key(video, "m", num_frames=8, size=224, crop="center")
    assert base == cache.key(video, "m", crop="center", size=224, num_frames=8)  # keyword order does not matter
    assert base != cache.key(video, "m2", num_frames=8, size=224, crop="center")
    assert base != cache.key(video, "m", num_frames=8, size=256, crop="center")
    assert base != cache.key(video, "m", num_frames=8, size=224, crop="left")
    video.write_bytes(b"\0" * 11)  # same path, other content size
    assert base != cache.key(video, "m", num_frames=8, size=224, crop="center")


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module"])
def test_checkpoint_formats_load_bit_identical(tmp_path, wrap):
    torch.manual_seed(0)
    clip = create_clip("tiny")
    state = clip.state_dict()
    saved = {"plain": state, "state_dict": {"state_dict": state, "epoch": 3},
             "module": {f"module.{k}": v for k, v in state.items()}}[wrap]
    torch.save(saved, tmp_path / "ckpt.pth")
    torch.manual_seed(1)
    reloaded = create_clip("tiny", pretrained=str(tmp_path / "ckpt.pth"))
    assert all(torch.equal(state[k], v) for k, v in reloaded.state_dict().items())


def test_towers_state_dict_round_trip():
    "An UnLoc-style checkpoint of both towers (with their projections) restores identical outputs."
    torch.manual_seed(0)
    video, text = VideoTower(create_clip("tiny"), 4, 16), TextTower(create_clip("tiny"), 16)
    frames = torch.randint(0, 256, (1, 4, 3, 64, 64), dtype=torch.uint8)
    torch.manual_seed(1)
    video2, text2 = VideoTower(create_clip("tiny"), 4, 16), TextTower(create_clip("tiny"), 16)
    video2.load_state_dict(video.state_dict()); text2.load_state_dict(text.state_dict())
    with torch.no_grad():
        assert torch.equal(video(frames), video2(frames))
        assert torch.equal(text(["a dog runs"], 16), text2(["a dog runs"], 16))
