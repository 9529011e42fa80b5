"""Training configs from --config / --set, and the train command that reads them."""

import pytest
from click.testing import CliRunner
from training_fixtures import QUICK

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.config import (
    MODEL_KEYS,
    TRAIN_KEYS,
    RunConfig,
    build_config,
    parse_setting,
    resumed_config,
)


def test_model_and_training_keys_are_disjoint():
    assert not MODEL_KEYS & TRAIN_KEYS  # a --set key says by itself which config it changes


@pytest.mark.parametrize(
    ("text", "expected"),
    [("lr=1e-3", ("lr", 1e-3)), ("ratios=[4, 2]", ("ratios", [4, 2])), ("causal=true", ("causal", True)),
     ("regularizer=wasserstein", ("regularizer", "wasserstein")), ("device = cpu", ("device", "cpu"))],
)
def test_settings_are_read_as_toml_values(text, expected):
    assert parse_setting(text) == expected


def test_presets_then_settings_fill_both_configs():
    config = build_config(["tiny", "causal"], ["lr=1", "capacity=4", "stft_scales=[256, 64]"])
    assert (config.model.bands, config.model.causal, config.model.capacity) == (4, True, 4)
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.train.stft_scales == (256, 64)


def test_a_bad_value_names_the_key():
    with pytest.raises(ConfigError, match=r"^training config batch_size = 0: expected a positive integer$"):
        build_config([], ["batch_size=0"])


def test_an_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"^--config 'tinyy': neither a model preset \(causal, descriptors, raspberry, tiny"):
        build_config(["tinyy"])


def test_a_run_config_toml_reproduces_the_run(sines, tmp_path):
    result = CliRunner().invoke(main, ["train", str(sines), "--out", str(tmp_path / "run"), "-c", "tiny",
                                       *[f"--set={text}" for text in QUICK + ("steps=3", "seed=5")]])
    assert result.exit_code == 0, result.output
    assert f"trained {tmp_path / 'run'} to step 3" in result.output
    again = build_config([str(tmp_path / "run" / "config.toml")])
    assert again == load_checkpoint(tmp_path / "run")["config"]


def test_the_discriminator_follows_the_model_preset():
    widths = {name: build_config([name]).train.discriminator_capacity for name in ("v2", "v2_small", "raspberry")}
    assert widths == {"v2": 16, "v2_small": 8, "raspberry": 2}  # RAVE's grows with the model's capacity too
    assert build_config(["v2_small", "causal"]).train.discriminator_capacity == 8
    assert build_config(["v2_small"], ["discriminator_capacity=12"]).train.discriminator_capacity == 12


def test_a_saved_discriminator_width_stays_and_resumes():
    older = build_config(["v2_small"], ["discriminator_capacity=16"]).to_dict()  # as runs before the rule saved it
    saved = RunConfig.from_dict(older)
    assert saved.train.discriminator_capacity == 16
    assert resumed_config(saved, ["v2_small"], ["steps=10"]).train.discriminator_capacity == 16
    with pytest.raises(ConfigError, match=r"^--set discriminator_capacity=0 disagrees with the checkpoint's "
                                          r"discriminator_capacity=16"):
        resumed_config(saved, [], ["discriminator_capacity=0"])  # 0 means 8 for this model
    resolved = RunConfig.from_dict(build_config(["v2_small"]).to_dict())
    assert resumed_config(resolved, [], ["discriminator_capacity=0"]) == resolved


def test_presets_alternate_the_networks_as_raves_configs_do():
    assert build_config([]).train.discriminator_every == 4  # RAVE's v2.gin: update_discriminator_every = 4
    assert build_config(["v2_small", "causal"]).train.discriminator_every == 2  # v2_small.gin: 2
    assert build_config(["v2_small"], ["discriminator_every=1"]).train.discriminator_every == 1


def test_a_run_saved_before_the_alternation_resumes_training_both_every_step():
    older = build_config(["tiny"]).to_dict()
    del older["train"]["discriminator_every"]
    saved = RunConfig.from_dict(older)
    assert saved.train.discriminator_every == 1
    with pytest.raises(ConfigError, match=r"^--set discriminator_every=4 disagrees with the checkpoint's "
                                          r"discriminator_every=1"):
        resumed_config(saved, [], ["discriminator_every=4"])


def test_train_descriptors_conditions_the_model_and_names_a_wrong_one(sines, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(sines), "--out", str(run), "-c", "tiny",
                                       "--descriptors", "rms,flatness", *[f"--set={text}" for text in QUICK + ("steps=1",)]])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run)["config"].model.descriptors == ("rms", "flatness")
    wrong = CliRunner().invoke(main, ["train", str(sines), "--out", str(tmp_path / "other"), "-c", "tiny",
                                      "--descriptors", "rms,brightness"])
    assert wrong.exit_code != 0 and len(wrong.output.strip().splitlines()) == 1, wrong.output
    assert "brightness" in wrong.output and "centroid" in wrong.output  # the wrong name and the valid ones
