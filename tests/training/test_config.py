"""Training configs from --config / --set, the sampler's shares, the spectrogram picture, the train command."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.config import MODEL_KEYS, TRAIN_KEYS, build_config, parse_setting
from ravelive.training.data import EpochBatches
from ravelive.training.tensorboard_log import spectrogram_image


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
    with pytest.raises(ConfigError, match=r"^--config 'tinyy': neither a model preset \(causal, raspberry, tiny"):
        build_config(["tinyy"])


def test_a_run_config_toml_reproduces_the_run(sines, tmp_path):
    result = CliRunner().invoke(main, ["train", str(sines), "--out", str(tmp_path / "run"), "-c", "tiny",
                                       *[f"--set={text}" for text in QUICK + ("steps=3", "seed=5")]])
    assert result.exit_code == 0, result.output
    assert f"trained {tmp_path / 'run'} to step 3" in result.output
    again = build_config([str(tmp_path / "run" / "config.toml")])
    assert again == load_checkpoint(tmp_path / "run")["config"]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_share_each_epoch_out_and_resume_anywhere(world_size):
    samplers = [EpochBatches(10, 3, seed=1, rank=rank, world_size=world_size) for rank in range(world_size)]
    per_epoch = samplers[0].batches_per_epoch
    first_epoch = [index for sampler in samplers for step in range(per_epoch) for index in sampler.batch(step)]
    assert len(first_epoch) == len(set(first_epoch)) == world_size * per_epoch * 3  # no example twice
    late = EpochBatches(10, 3, seed=1, rank=0, world_size=world_size, start=5)
    assert next(iter(late)) == samplers[0].batch(5)
    assert samplers[0].batch(0) != samplers[0].batch(per_epoch)  # a new order each epoch


def test_too_small_a_dataset_is_refused():
    with pytest.raises(ConfigError, match="fewer than one batch of 8 per process"):
        EpochBatches(5, 8, seed=0)


def test_spectrogram_image_puts_input_left_and_low_frequencies_low():
    t = torch.arange(8192) / 44100
    low, high = torch.sin(2 * torch.pi * 200 * t), torch.sin(2 * torch.pi * 15000 * t)
    image = spectrogram_image(low, high)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    width = (image.shape[1] - 2) // 2
    left, right = image[:, :width, 0].astype(float), image[:, -width:, 0].astype(float)
    rows = np.arange(image.shape[0])[:, None]
    assert (left * rows).sum() / left.sum() > (right * rows).sum() / right.sum()  # 200 Hz sits lower
