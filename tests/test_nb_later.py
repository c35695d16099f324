"""Checks for the chapters 12_pretrain, 13_zeroshot, 16_official and 16a_augment: the names 16a_augment moved out of
`unloc_nb.official` stay importable from there (the same objects), and the augmentations keep their one-draw-per-clip
behaviour."""
import pytest
import torch

import unloc_nb.augment as augment
import unloc_nb.official as official

MOVED = ["AUGMENTATIONS", "RAND_AUGMENT_OPS", "Augmentation", "OfficialClips", "augment_frames", "check_train_options",
         "color_augment", "consecutive_window", "official_clips", "rand_augment", "rand_augment_op", "read_window",
         "scale_jitter", "window_annotation"]


@pytest.mark.parametrize("name", MOVED)
def test_moved_names_still_in_official(name):
    assert getattr(official, name) is getattr(augment, name)


def test_every_public_augment_name_is_reexported():
    assert sorted(augment.__all__) == sorted(MOVED)


def _clip(seed: int = 0) -> torch.Tensor:  # (8, 3, 80, 96) uint8: a random clip with room for 64 px crops
    return torch.randint(0, 256, (8, 3, 80, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["official", "colour", "scale"])
def test_one_draw_per_clip(name):
    same = _clip()[:1].expand(8, -1, -1, -1).contiguous()  # 8 copies of one frame
    for seed in range(4):
        out = augment.augment_frames(same, 64, augment.AUGMENTATIONS[name], torch.Generator().manual_seed(seed))
        assert out.shape == (8, 3, 64, 64) and out.dtype == torch.uint8
        assert (out == out[:1]).all()


def test_augmentations_change_the_frames():
    frames = _clip(1)
    for name in ("official", "colour"):
        outs = [augment.augment_frames(frames, 64, augment.AUGMENTATIONS[name], torch.Generator().manual_seed(s))
                for s in range(3)]
        assert not all(torch.equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("op", ["AutoContrast", "Equalize", "Invert", "Posterize", "Solarize", "Color", "Contrast",
                                "Brightness", "Sharpness", "Cutout", "SolarizeAdd"])
def test_rand_augment_op_keeps_shape_and_dtype(op):
    image = _clip(2)[:2].permute(1, 0, 2, 3).reshape(3, 2 * 80, 96)  # (3, N*S, S) with N = 2
    out = augment.rand_augment_op(image, op, 10, 2, torch.Generator().manual_seed(0))
    assert out.shape == image.shape and out.dtype == torch.uint8


def test_unknown_rand_augment_op():
    with pytest.raises(ValueError, match="unknown RandAugment operation"):
        augment.rand_augment_op(torch.zeros(3, 8, 8, dtype=torch.uint8), "Rotate", 10, 1)


def test_consecutive_window_centre_and_train():
    idx, start = augment.consecutive_window(300, 30.0, 4)
    assert idx.tolist() == [144, 147, 150, 153] and start == pytest.approx(4.8)
    starts = {augment.consecutive_window(300, 30.0, 4, train=True, generator=torch.Generator().manual_seed(s))[1]
              for s in range(20)}
    assert len(starts) > 5 and all(0 <= s <= 9.6 for s in starts)
