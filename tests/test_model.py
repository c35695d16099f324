"""UnLoc-B builds from its preset without any network access (random towers, pretrained=None)."""
import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
    "HF_HUB_OFFLINE=1 and every socket connection refused: a download attempt fails loudly."
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    def refuse(*args, **kwargs): raise OSError("network access attempted during an offline test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_base_preset_builds_offline(no_network):
    from unloc_nb.model import UnLoc, UnLocConfig
    model = UnLoc(UnLocConfig.preset("base"))
    video, text, fusion = model.video_tower, model.text_tower, model.fusion
    # ViT-B/16 image tower (768 wide, 12 blocks, 16 px patches, 224 px input) and the 512-wide, 12-block text tower
    assert (video.width, len(video.transformer.resblocks), video.patch_size, video.image_size) == (768, 12, 16, 224)
    assert (text.width, len(text.transformer.resblocks)) == (512, 12)
    # the paper's UnLoc-B fusion: 6 layers, 512 wide, 8 heads, MLP 2048
    assert len(fusion.layers) == 6 and fusion.width == 512
    assert {layer.heads for layer in fusion.layers} == {8}
    assert {layer.mlp[0].out_features for layer in fusion.layers} == {2048}
    assert video.projection.out_features == text.projection.out_features == 512
    assert model.pyramid.num_levels == 4 and len(model.pyramid.convs) == 4
