"""Edge cases of unloc_nb.towers moved out of nbs/02_towers.ipynb: tokenizer truncation, 'gap' pooling, tower
inputs, frozen flags and the keys of the frame-feature cache."""
import os, shutil, time

import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from unloc_nb.data import read_video, sample_path
from unloc_nb.towers import (FrameFeatureCache, TextTower, VideoTower, create_clip, pretrained_available,
                             resize_cls_tokens, resolve_arch)

N = 8


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return create_clip("tiny")


@pytest.fixture(scope="module")
def frames(clip):
    return read_video(sample_path("videos/syn_01.mp4"), num_frames=N, size=clip.visual.image_size[0]).frames


def test_resolve_arch_and_create_clip_errors(clip):
    assert resolve_arch("L/14") == resolve_arch("ViT-L/14") == "ViT-L-14"
    assert open_clip.get_model_config("ViT-L-14")["vision_cfg"]["width"] == 1024
    assert open_clip.get_model_config("ViT-L-14")["text_cfg"]["width"] == 768
    with pytest.raises(FileNotFoundError, match="/nonexistent/clip.pt"): create_clip("tiny", "/nonexistent/clip.pt")
    with pytest.raises(ValueError, match=r"has the pretrained tags \['synthetic'\]"): create_clip("tiny", "openai")
    assert clip.context_length == 77 and tuple(clip.visual.image_mean) == tuple(OPENAI_DATASET_MEAN)
    assert not pretrained_available("tiny", "/nonexistent/clip.pt")


def test_resize_cls_tokens_keeps_a_tiled_init():
    tiled = torch.randn(64).expand(8, 64)
    torch.testing.assert_close(resize_cls_tokens(tiled, 16), tiled[0].expand(16, 64))
    assert torch.equal(resize_cls_tokens(tiled, 8), tiled)


@torch.no_grad()
def test_video_tower_inputs(clip, frames):
    torch.manual_seed(0)
    tower = VideoTower(clip, num_frames=N, out_dim=32)
    batch = frames[None]
    projected = tower(batch)
    assert (tower.width, tower.image_size, tower.patch_size) == (64, 64, 8)
    assert tower.mean == tuple(OPENAI_DATASET_MEAN) and tower.std == tuple(OPENAI_DATASET_STD)
    assert torch.equal(tower.cls_tokens, clip.visual.class_embedding.expand(N, -1))
    # uint8 input and already-normalised float input give the same tokens
    torch.testing.assert_close(tower(tower.normalize(batch)), projected, atol=1e-5, rtol=1e-5)
    # frames are encoded independently: a batch of two videos gives each video's tokens, chunking changes nothing
    two = torch.stack([frames, frames.flip(0)])
    torch.testing.assert_close(tower.encode_frames(two)[1], tower.encode_frames(frames.flip(0)[None])[0],
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tower.encode_frames(two, chunk_size=3), tower.encode_frames(two), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="built for 8 frames"): tower(frames[None, :4])
    with pytest.raises(ValueError, match=r"\(B, N, 3, 64, 64\)"): tower(frames)


@torch.no_grad()
def test_gap_tower_ignores_the_cls_token(frames):
    torch.manual_seed(0)
    clip = create_clip("tiny")  # its own CLIP: this test changes the class embedding
    gap, cls = VideoTower(clip, N, 32, pool="gap"), VideoTower(clip, N, 32, pool="cls")
    assert gap.cls_tokens is None
    gap_tokens, cls_tokens = gap.encode_frames(frames[None]), cls.encode_frames(frames[None])
    clip.visual.class_embedding.add_(torch.randn(64))
    clip.visual.positional_embedding[0].add_(torch.randn(64))
    assert torch.equal(gap.encode_frames(frames[None]), gap_tokens)  # bit for bit the same
    changed = VideoTower(clip, N, 32, pool="cls")  # tiles the changed class embedding
    assert (changed.encode_frames(frames[None]) - cls_tokens).abs().max() > 1e-2
    with pytest.raises(ValueError, match="pool must be"): VideoTower(clip, N, 32, pool="max")


@torch.no_grad()
def test_text_tower_truncation_and_context(clip):
    tower = TextTower(clip, out_dim=32, frozen=True)
    long = "a very long caption " + "that keeps going and going " * 6
    captions = ["a red circle moves up", "a blue square", long]
    tokens16, tokens77 = tower.tokenize(captions, 16), tower.tokenize(captions, 77)
    assert (tokens16[:, 0] == tower.tokenizer.sot_token_id).all()
    assert tokens77[2, -1] == 0  # with room to spare the long caption is not truncated

    class PlainTruncation(open_clip.SimpleTokenizer):  # cuts at the context length, EOT and all
        def __call__(self, texts, context_length): return super().__call__(texts, 77)[:, :context_length]
    assert PlainTruncation()(captions, 16)[2, -1] != tower.eot_id
    assert torch.equal(TextTower(clip, 32, tokenizer=PlainTruncation()).tokenize(captions, 16), tokens16)
    # causal: a short text reads the same EOT output with 16 or 77 positions; the truncated one differs
    short16, short77 = tower.encode_tokens(tokens16), tower.encode_tokens(tokens77)
    torch.testing.assert_close(short16[:2], short77[:2], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(short16[2], short77[2], atol=1e-3)
    assert tower.width == 64 and tower(["x"] * 5, 16).shape == (5, 32)
    with pytest.raises(ValueError, match="context_length"): tower.tokenize(captions, 78)


def test_frozen_flag(clip):
    tower = VideoTower(clip, N, 32, frozen=True)
    assert not tower.cls_tokens.requires_grad and tower.projection.weight.requires_grad
    tower.frozen = False
    assert all(p.requires_grad for p in tower.parameters())


def test_b16_text_context():
    torch.manual_seed(0)
    text = TextTower(create_clip("B/16"), out_dim=512)
    assert text.max_context_length == 77 and text(["a person opens a door"], 32).shape == (1, 512)


@torch.no_grad()
def test_cache_misses_on_any_key_change(tmp_path, clip, frames):
    video = shutil.copy(sample_path("videos/syn_01.mp4"), tmp_path / "video.mp4")
    cache = FrameFeatureCache(tmp_path / "features")
    tower = VideoTower(clip, N, 32, frozen=True)
    calls = []

    def encode():
        calls.append(1)
        return tower.encode_frames(frames[None])[0]

    sampling = dict(num_frames=N, size=64, crop="center")
    first = cache.get_or_compute(video, tower.cache_id, encode, **sampling)
    assert torch.equal(cache.get_or_compute(video, tower.cache_id, encode, **sampling), first)
    assert (len(calls), cache.hits, cache.misses) == (1, 1, 1)
    assert list(cache.root.rglob("*.tmp")) == []  # no temporary files left behind
    cache.get_or_compute(video, tower.cache_id, encode, **{**sampling, "num_frames": 16})
    assert len(calls) == 2
    assert VideoTower(clip, N, 32, pool="gap", frozen=True).cache_id != tower.cache_id
    torch.manual_seed(7)
    assert VideoTower(create_clip("tiny"), N, 32).cache_id != tower.cache_id  # other random weights
    os.utime(video, ns=(time.time_ns(), time.time_ns() + 10**9))  # a touched video file
    cache.get_or_compute(video, tower.cache_id, encode, **sampling)
    assert len(calls) == 3
    key = cache.key(video, tower.cache_id, **sampling)  # a damaged file is recomputed and rewritten
    cache.path(key).write_bytes(b"not a safetensors file")
    restored = cache.get_or_compute(video, tower.cache_id, encode, **sampling)
    assert len(calls) == 4 and torch.equal(restored, first) and torch.equal(cache.load(key), first)
