"""The edge cases of the training chapters (11_train, 11a_evaluation, 11b_runs, 11c_cli) that the notebooks leave out
of their story: corrupt and stale checkpoints, configs that cannot be resumed, and the names `unloc_nb.train` still
answers for the later modules."""
import dataclasses, json, warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

import unloc_nb.train as train_module
from unloc_nb.model import UnLoc
from unloc_nb.towers import create_clip
from unloc_nb.train import TrainConfig, load_checkpoint, read_config, save_checkpoint, train


def test_train_answers_for_the_names_of_the_later_modules():
    import unloc_nb.cli, unloc_nb.evaluation, unloc_nb.runs
    assert train_module.load_checkpoint is unloc_nb.runs.load_checkpoint
    assert train_module.train is unloc_nb.runs.train
    assert train_module.evaluate is unloc_nb.evaluation.evaluate
    assert train_module.parse_train_args is unloc_nb.cli.parse_train_args
    with pytest.raises(AttributeError, match="no_such_name"):
        train_module.no_such_name
    assert not hasattr(train_module, "__path__")  # still a plain module to the import system


def test_a_corrupt_checkpoint_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(train_module.UnLocDataError, match="bad.safetensors"):
        load_checkpoint(bad)


def test_a_checkpoint_whose_frozen_prior_changed_is_refused(tmp_path):
    prior = tmp_path / "prior.safetensors"
    save_file({k: v.contiguous() for k, v in create_clip("tiny", "synthetic").state_dict().items()}, str(prior))
    model = UnLoc(TrainConfig(model={"pretrained": str(prior)}).model_config())
    ckpt = save_checkpoint(tmp_path / "own.safetensors", model)
    load_checkpoint(ckpt)  # the same prior: loads
    save_file({k: torch.randn_like(v) for k, v in load_file(str(prior)).items()}, str(prior))
    with pytest.raises(train_module.UnLocDataError, match="have changed since"):
        load_checkpoint(ckpt)


def test_a_config_file_with_an_unknown_field_is_refused(tmp_path):
    (tmp_path / "typo.json").write_text(json.dumps({"task": "tal", "lr_rate": 0.1}))
    with pytest.raises(train_module.UnLocDataError, match=r"typo.json: TrainConfig has no field\(s\) \['lr_rate'\]"):
        read_config(tmp_path / "typo.json")


def test_resuming_a_folder_without_a_run_is_refused_before_any_work(tmp_path):
    cfg = TrainConfig(task="tal", data="samples", epochs=1, out_dir=str(tmp_path / "empty"))
    with warnings.catch_warnings(), pytest.raises(train_module.UnLocDataError, match="no last.safetensors"):
        warnings.simplefilter("ignore")
        train(dataclasses.replace(cfg), progress=False, resume=True)
