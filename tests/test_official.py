"""Every value of every official UnLoc configuration, written from the config files of the official code
(google-research/scenic, scenic/projects/unloc/configs/<file>), checked against `unloc_nb.official` and against the
UnLocConfig / TrainConfig it builds. A value that drifts in either place fails here."""
import math
import warnings

import pytest
import torch

from unloc_nb.model import UnLoc, UnLocConfig, UnLocOutput
from unloc_nb.official import (OFFICIAL_CONFIGS, PRECOMPUTED, PROMPT_TEMPLATES, average_over_prompts, mean_output,
                               official_config, official_record)
from unloc_nb.train import TrainConfig, lr_factor, parse_train_args

INF = math.inf
R4 = ((0, 4), (4, 8), (8, 16), (16, INF))

# One dict per config file, in the file's own terms. Copied by hand from the files; "default" notes a value the file
# leaves to the code's default (LocalizationHead.init_regression_head_bias = 0.0).
FILES = {
    "activitynet/activitynet_tal_linspace_unloc_base_fpn.py": dict(
        MODEL_VARIANT="B/16x1", NUM_FEATURES_LEVEL0=128, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5], regression_ranges=R4,
        self_attention_encoder_name="simple_pyramid", classifier="token", video_freeze=False,
        text_encoder="clip_text_encoder", text_freeze=True, max_num_tokens=16, prompts="prompt_csv",
        projection_size=512, num_heads=8, mlp_dim=2048, num_conv_layers=4, weight_sharing=True,
        init_classification_head_bias=-5.0, init_regression_head_bias=2.0, num_classes=200,
        num_training_epochs=20, TRAIN_SIZE=9941, warmup="2.5 epochs", factors="piecewise_constant",
        decay_events="18 epochs", layer_lr=0.1, augmentation=True, sampling="linspace"),
    "activitynet/activitynet_tal_linspace_unloc_large_fpn.py": dict(
        MODEL_VARIANT="L/14x1", NUM_FEATURES_LEVEL0=160, FEATURE_PYRAMID_LEVELS=[1, 2, 3, 4, 5],
        regression_ranges=((0, 4), (4, 8), (8, 16), (16, 32), (32, INF)),
        self_attention_encoder_name="simple_pyramid", classifier="gap", video_freeze=False,
        text_encoder="pass_through_encoder", text_freeze=True, max_num_tokens=None, prompts="embedding_npy",
        projection_size=768, num_heads=12, mlp_dim=3072, num_conv_layers=4, weight_sharing=True,
        init_classification_head_bias=-5.0, init_regression_head_bias=2.0, num_classes=200,
        num_training_epochs=30, TRAIN_SIZE=9941, warmup="5 epochs", factors="piecewise_constant",
        decay_events="35 epochs", layer_lr=None, augmentation=True, sampling="linspace"),
    "activitynet_captions/activitynet_cap_linspace_unloc_base_fpn.py": dict(
        MODEL_VARIANT="B/16x1", NUM_FEATURES_LEVEL0=128, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5], regression_ranges=R4,
        self_attention_encoder_name="simple_pyramid", classifier="token", video_freeze=True,
        text_encoder="clip_text_encoder", text_freeze=False, max_num_tokens=32, prompts="none",
        projection_size=512, num_heads=8, mlp_dim=2048, num_conv_layers=3, weight_sharing=False,
        init_classification_head_bias=0.0, init_regression_head_bias=2.0, num_classes=1,
        num_training_epochs=20, TRAIN_SIZE=9941, warmup="2.5 epochs", factors="piecewise_constant",
        decay_events="25 epochs", layer_lr=0.1, augmentation=False, sampling="linspace",
        train_max_num_captions=1, eval_max_num_captions=27),
    "activitynet_captions/activitynet_cap_linspace_unloc_large_fpn.py": dict(
        MODEL_VARIANT="L/14x1", NUM_FEATURES_LEVEL0=128, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5], regression_ranges=R4,
        self_attention_encoder_name="fpn", classifier="gap", video_freeze=False,
        text_encoder="clip_text_encoder", text_freeze=True, max_num_tokens=16, prompts="none",
        projection_size=768, num_heads=12, mlp_dim=3072, num_conv_layers=4, weight_sharing=True,
        init_classification_head_bias=0.0, init_regression_head_bias=2.0, num_classes=1,
        num_training_epochs=40, TRAIN_SIZE=9941, warmup="5 epochs", factors="piecewise_constant",
        decay_events="35 epochs", layer_lr=0.1, augmentation=False, sampling="linspace",
        train_max_num_captions=1, eval_max_num_captions=27),
    "charades_sta/charades_sta_linspace_unloc_base_fpn.py": dict(
        MODEL_VARIANT="B/16x1", NUM_FEATURES_LEVEL0=128, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5], regression_ranges=R4,
        self_attention_encoder_name="fpn", classifier="token", video_freeze=False,
        text_encoder="clip_text_encoder", text_freeze=True, max_num_tokens=16, prompts="none",
        projection_size=512, num_heads=8, mlp_dim=2048, num_conv_layers=3, weight_sharing=False,
        init_classification_head_bias=0.0, init_regression_head_bias=0.0,  # default: the file sets none
        num_classes=1, num_training_epochs=30, TRAIN_SIZE=12408, warmup="5 epochs", factors="constant",
        decay_events=None, layer_lr=0.1, augmentation=False, sampling="linspace",
        train_max_num_captions=1, eval_max_num_captions=1),
    "qvhighlights/qvhighlights_linspace_unloc_base_fpn_hd.py": dict(
        MODEL_VARIANT="B/16x1", NUM_FEATURES_LEVEL0=144, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5],
        regression_ranges=((0, 6), (6, 18), (18, 32), (32, INF)),
        self_attention_encoder_name="simple_pyramid", classifier="token", video_freeze=False,
        text_encoder="clip_text_encoder", text_freeze=False, max_num_tokens=32, prompts="none",
        projection_size=512, num_heads=8, mlp_dim=2048, num_conv_layers=3, weight_sharing=True,
        init_classification_head_bias=0.0, init_regression_head_bias=2.0, num_classes=1,
        num_training_epochs=30, TRAIN_SIZE=5849, warmup="2.5 epochs", factors="cosine_decay",
        decay_events=None, layer_lr=0.1, augmentation=False, sampling="linspace", secs_per_timestep=1.0),
    "qvhighlights/qvhighlights_linspace_unloc_large_fpn_hd.py": dict(
        MODEL_VARIANT="L/14x1", NUM_FEATURES_LEVEL0=144, FEATURE_PYRAMID_LEVELS=[2, 3, 4, 5],
        regression_ranges=((0, 6), (6, 12), (12, 24), (24, INF)),
        self_attention_encoder_name="simple_pyramid", classifier="token", video_freeze=True,
        text_encoder="clip_text_encoder", text_freeze=False, max_num_tokens=32, prompts="none",
        projection_size=768, num_heads=12, mlp_dim=3072, num_conv_layers=3, weight_sharing=True,
        init_classification_head_bias=0.0, init_regression_head_bias=2.0, num_classes=1,
        num_training_epochs=30, TRAIN_SIZE=5849, warmup="2.5 epochs", factors="cosine_decay",
        decay_events=None, layer_lr=0.1, augmentation=False, sampling="linspace", secs_per_timestep=1.0),
    "coin/coin_action_seg_unloc_ft_image_clip_large.py": dict(
        MODEL_VARIANT="L/14x1", NUM_FEATURES_LEVEL0=512, FEATURE_PYRAMID_LEVELS=None, regression_ranges=((0, INF),),
        self_attention_encoder_name="transformer", classifier="gap", video_freeze=False,
        text_encoder="pass_through_encoder", text_freeze=True, max_num_tokens=None, prompts="embedding_npy",
        projection_size=768, num_heads=12, mlp_dim=3072, head="linear_head", num_conv_layers=None,
        weight_sharing=None, init_classification_head_bias=-6.6, init_regression_head_bias=None, num_classes=778,
        num_training_epochs=55, TRAIN_SIZE=8461, warmup="500 steps", factors="exponential_decay (staircase)",
        decay_events="6600 steps", layer_lr=0.1, augmentation=True, sampling="consecutive"),
}
# shared by every file
COMMON = dict(batch_size=64, base_learning_rate=0.01, momentum=0.9, weight_decay=0.0, max_grad_norm=1.0,
              num_layers=6, radius=3.0, load_from_unloc_checkpoint=True, score_threshold=0.001, soft_nms_sigma=0.3,
              max_detections=100, classification_loss_alpha=10.0, focal_loss_alpha=0.25, focal_loss_gamma=2.0,
              box_loss_type="iou")
DATASET = {"activitynet": ("activitynet", "tal"), "activitynet_captions": ("activitynet_captions", "mr"),
           "charades_sta": ("charades_sta", "mr"), "qvhighlights": ("qvhighlights", "hl"), "coin": ("coin", "as")}


def _key(file: str, v: dict) -> tuple[str, str]:
    return DATASET[file.split("/")[0]][0], v["MODEL_VARIANT"][0]


def _steps(written, train_size):
    if written is None: return None
    number, unit = written.split()
    return int(float(number) * (train_size // 64)) if unit == "epochs" else int(number)


def test_every_file_is_there():
    assert {r.file for r in OFFICIAL_CONFIGS.values()} == set(FILES)
    assert len(OFFICIAL_CONFIGS) == 8


@pytest.mark.parametrize("file", sorted(FILES))
def test_record_matches_file(file):
    v, r = FILES[file], official_record(*_key(file, FILES[file]))
    assert r.file == file
    assert r.task == DATASET[file.split("/")[0]][1]
    assert r.size == v["MODEL_VARIANT"][0]
    assert r.num_frames == v["NUM_FEATURES_LEVEL0"]
    assert r.num_levels == len(v["FEATURE_PYRAMID_LEVELS"] or [0])
    assert r.regression_ranges == v["regression_ranges"]
    assert r.pyramid == v["self_attention_encoder_name"]
    assert r.video_classifier == v["classifier"]
    assert r.freeze_video == v["video_freeze"]
    assert r.text_encoder == v["text_encoder"]
    assert r.freeze_text == v["text_freeze"]
    assert r.max_num_tokens == v["max_num_tokens"]
    assert r.class_prompts == v["prompts"]
    assert (r.projection_size, r.fusion_heads, r.fusion_mlp) == (v["projection_size"], v["num_heads"], v["mlp_dim"])
    assert r.head == v.get("head", "query_dependent_localization_head")
    assert r.num_conv_layers == v["num_conv_layers"]
    assert r.weight_sharing == v["weight_sharing"]
    assert r.classification_bias == v["init_classification_head_bias"]
    assert r.regression_bias == v["init_regression_head_bias"]
    assert r.num_classes == v["num_classes"]
    assert r.epochs == v["num_training_epochs"]
    assert r.train_size == v["TRAIN_SIZE"]
    assert r.warmup == v["warmup"]
    assert r.schedule == v["factors"]
    assert r.decay_at == v["decay_events"]
    assert r.head_lr == v["layer_lr"]
    assert r.augmentation == v["augmentation"]
    assert r.sampling == v["sampling"]
    assert r.train_captions == v.get("train_max_num_captions")
    assert r.eval_captions == v.get("eval_max_num_captions")
    assert r.secs_per_timestep == v.get("secs_per_timestep", 0.1)
    c = COMMON
    assert (r.batch_size, r.base_lr, r.momentum, r.weight_decay, r.max_grad_norm) == (
        c["batch_size"], c["base_learning_rate"], c["momentum"], c["weight_decay"], c["max_grad_norm"])
    assert (r.fusion_layers, r.radius, r.init_from_unloc) == (c["num_layers"], c["radius"],
                                                              c["load_from_unloc_checkpoint"])
    assert (r.score_threshold, r.soft_nms_sigma, r.max_detections) == (
        c["score_threshold"], c["soft_nms_sigma"], c["max_detections"])
    assert (r.classification_loss_alpha, r.focal_alpha, r.focal_gamma, r.box_loss) == (
        c["classification_loss_alpha"], c["focal_loss_alpha"], c["focal_loss_gamma"], c["box_loss_type"])


@pytest.mark.parametrize("file", sorted(FILES))
def test_configs_built_from_file(file):
    v = FILES[file]
    dataset, size = _key(file, v)
    m, t = official_config(dataset, size)
    assert UnLocConfig.official(dataset, size) == m and TrainConfig.official(dataset, size).model_config() == m
    # model
    assert m.clip_arch == {"B": "B/16", "L": "L/14"}[size]
    assert (m.proj_dim, m.fusion_heads, m.fusion_mlp, m.fusion_layers) == (
        v["projection_size"], v["num_heads"], v["mlp_dim"], COMMON["num_layers"])
    assert m.num_frames == v["NUM_FEATURES_LEVEL0"]
    assert m.pyramid == v["self_attention_encoder_name"]
    assert m.num_levels == len(v["FEATURE_PYRAMID_LEVELS"] or [0])
    assert m.regression_ranges == tuple((float(a), float(b)) for a, b in v["regression_ranges"])
    assert m.center_radius == COMMON["radius"]
    assert m.video_pool == {"token": "cls", "gap": "gap"}[v["classifier"]]
    assert m.freeze_video == v["video_freeze"] and m.freeze_text == v["text_freeze"]
    task = DATASET[file.split("/")[0]][1]
    tokens = v["max_num_tokens"]
    if task in ("mr", "hl"): assert m.caption_context_length == tokens
    elif tokens is not None: assert m.class_context_length == tokens
    assert m.text_embeddings == (PRECOMPUTED if v["text_encoder"] == "pass_through_encoder" else None)
    assert m.prompt_templates == (PROMPT_TEMPLATES if v["prompts"] == "prompt_csv" else ())
    if v.get("head") == "linear_head":
        assert m.seg_bias == v["init_classification_head_bias"]
    else:
        assert m.head_layers == v["num_conv_layers"]
        assert m.relevancy_bias == v["init_classification_head_bias"]
        assert m.regression_bias == v["init_regression_head_bias"]
        assert m.per_level_heads == (not v["weight_sharing"]) and m.head_scale_shift == v["weight_sharing"]
    # training
    assert t.task == task and t.recipe == "paper" and t.preset == {"B": "base", "L": "large"}[size]
    assert t.epochs == v["num_training_epochs"] and t.batch_size == COMMON["batch_size"]
    assert t.lr == COMMON["base_learning_rate"] and t.optimizer == "sgd" and t.momentum == COMMON["momentum"]
    assert t.weight_decay == COMMON["weight_decay"] and t.clip_grad_norm == COMMON["max_grad_norm"]
    assert t.head_lr_mult == pytest.approx(1.0 if v["layer_lr"] is None else v["layer_lr"] / 0.01)
    assert t.warmup_steps == _steps(v["warmup"], v["TRAIN_SIZE"])
    assert t.schedule == ("cosine" if v["factors"] == "cosine_decay" else "constant")
    assert t.lr_decay_steps == _steps(v["decay_events"], v["TRAIN_SIZE"])
    assert t.augment == ("official" if v["augmentation"] else None)
    assert t.sampling == v["sampling"]
    assert t.init_from is None  # the checkpoint is the caller's to give


def test_gap_cls_takes_no_part():
    torch.manual_seed(0)
    model = UnLoc(UnLocConfig.preset("tiny", video_pool="gap")).eval()
    frames = torch.randint(0, 256, (1, 16, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        before = model.encode_video(frames)
        model.video_tower.positional_embedding[0].add_(5.0)  # the CLS position: not used by 'gap'
        after = model.encode_video(frames)
    assert model.video_tower.cls_tokens is None
    assert torch.equal(before, after)


def test_prompt_average_hand_computed():
    def out(a, b):
        return UnLocOutput(logits=[torch.tensor([a, b]).view(1, 2, 1)], distances=[torch.tensor([[a, b]]).abs().view(1, 1, 1, 2).expand(1, 2, 1, 2)],
                           anchors=[torch.zeros(1)], strides=[1], masks=[torch.ones(1, 1, dtype=torch.bool)])
    mixed = mean_output([out(2.0, -1.0), out(0.0, 1.0), out(-2.0, 3.0)])
    assert torch.allclose(mixed.logits[0].flatten(), torch.tensor([0.0, 1.0]))
    assert torch.allclose(torch.sigmoid(mixed.logits[0]).flatten(), torch.tensor([0.5, 0.7310586]))
    # the model loop: template t for prompt_index t, averaged
    torch.manual_seed(0)
    model = UnLoc(UnLocConfig.preset("tiny", prompt_templates=("a {}", "the {}", "one {}"))).eval()
    frames = torch.randint(0, 256, (1, 16, 3, 64, 64), dtype=torch.uint8)
    names = ["red circle", "blue square"]
    with torch.no_grad():
        video = model.encode_video(frames)
        each = [model.fuse(video, model.text_tower([t.format(n) for n in names], 16), "tal").logits[1]
                for t in ("a {}", "the {}", "one {}")]
        avg = average_over_prompts(model, lambda: model.fuse(video, model.encode_text(names, "tal"), "tal"))
        assert torch.allclose(model.encode_text(names, "tal"), model.text_tower(["the " + n for n in names], 16))
    assert torch.allclose(avg.logits[1], sum(each) / 3, atol=1e-6)
    assert model.prompt_index is None


def test_lr_decay_and_flags():
    assert lr_factor(99, 200, 10, "constant", decay_step=100) == 1.0
    assert lr_factor(100, 200, 10, "constant", decay_step=100) == pytest.approx(0.1)
    cfg = parse_train_args(["--task", "as", "--augment", "official", "--sampling", "consecutive",
                            "--lr-decay-steps", "50"])
    assert (cfg.augment, cfg.sampling, cfg.lr_decay_steps) == ("official", "consecutive", 50)
    with pytest.raises(SystemExit):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse_train_args(["--augment", "heavy"])


def test_train_with_official_options(tmp_path):
    "One short run with the official augmentations, consecutive frames and a decay step, then one fine-tuning it."
    from unloc_nb.train import train
    common = dict(task="as", data="samples", epochs=1, batch_size=2, model={"num_frames": 16, "freeze_video": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = train(TrainConfig(**common, augment="official", sampling="consecutive", lr_decay_steps=2,
                                  out_dir=str(tmp_path / "a")), progress=False)
        assert math.isfinite(first["first_loss"]) and 0 <= first["metrics"]["frame_accuracy"] <= 1
        seen = {}
        import unloc_nb.official as official
        original = official.load_unloc_checkpoint
        def spy(model, path, skip=None):
            seen["report"] = original(model, path, skip)
            return seen["report"]
        official.load_unloc_checkpoint = spy
        try:
            train(TrainConfig(**common, init_from=first["checkpoint"], out_dir=str(tmp_path / "b")), progress=False)
        finally:
            official.load_unloc_checkpoint = original
    from safetensors.torch import load_file
    # frozen pretrained towers are not stored (they come from `pretrained`), nor is the run's training state
    stored = [k for k in load_file(first["checkpoint"]) if not k.startswith("_train_state.")]
    assert "fusion.layers.0.qkv.weight" in seen["report"]["loaded"]
    assert sorted(seen["report"]["loaded"]) == sorted(stored) and not seen["report"]["not_in_model"]
