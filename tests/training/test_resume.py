"""Resume: a run stopped and resumed ends with the same weights, bit for bit, as one run straight through."""

import pytest
import torch
from click.testing import CliRunner
from training_fixtures import QUICK

from ravelive.cli import main
from ravelive.errors import ConfigError
from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.loop import train_run

STEPS = 12
SETTINGS = QUICK + ("phase_1_steps=8", "kl_warmup_steps=4", "checkpoint_interval=100")  # phase 2 after the resume


def assert_same_state(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for name, value in left.items():
        assert torch.equal(value, right[name]), name


def test_resumed_run_equals_the_straight_run(sines, tmp_path):
    straight = train_run(sines, tmp_path / "straight", ("tiny",), SETTINGS + (f"steps={STEPS}",))
    first = train_run(sines, tmp_path / "resumed", ("tiny",), SETTINGS + (f"steps={STEPS // 2}",))
    assert first.step == STEPS // 2
    resumed = train_run(sines, tmp_path / "resumed", (), (f"steps={STEPS}",), resume=True)
    assert resumed.step == STEPS
    assert first.losses + resumed.losses == straight.losses  # every loss of every step, phase 2's turns included
    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    assert_same_state(straight.discriminator.state_dict(), resumed.discriminator.state_dict())
    saved = load_checkpoint(tmp_path / "resumed")
    assert saved["step"] == STEPS and saved["config"].train.steps == STEPS
    assert (tmp_path / "resumed" / "config.toml").read_text().count("lr = 0.001") == 1


@pytest.fixture(scope="module")
def short_run(sines, tmp_path_factory):
    run = tmp_path_factory.mktemp("short") / "run"
    train_run(sines, run, ("tiny",), QUICK + ("steps=2",))
    return run


def test_a_disagreeing_setting_is_refused_on_resume(sines, short_run):
    with pytest.raises(ConfigError, match=r"^--set lr=0.01 disagrees with the checkpoint's lr=0.001: drop it or "):
        train_run(sines, short_run, (), ("lr=0.01",), resume=True)


def test_a_disagreeing_preset_is_refused_on_resume_naming_the_key(sines, short_run):
    with pytest.raises(ConfigError, match=r"--config causal \(sets causal=True\) disagrees with the checkpoint's "):
        train_run(sines, short_run, ("causal",), (), resume=True)


def test_an_agreeing_setting_is_accepted_on_resume(sines, short_run):
    assert train_run(sines, short_run, ("tiny",), ("lr=1e-3", "steps=3"), resume=True).step == 3


def test_resuming_without_more_steps_is_refused(sines, short_run):
    with pytest.raises(ConfigError, match=r"is at step \d already, steps = 1: resume with --set steps=\.\.\. above"):
        train_run(sines, short_run, (), ("steps=1",), resume=True)


def test_a_new_run_into_a_trained_folder_is_refused(sines, short_run):
    with pytest.raises(ConfigError, match="already holds a checkpoint: pass --resume"):
        train_run(sines, short_run, ("tiny",), QUICK)


@pytest.mark.parametrize("command", ["export", "train"])
def test_a_run_folder_without_checkpoint_is_one_line(sines, tmp_path, command):
    args = ["export", str(tmp_path), "--out", str(tmp_path / "m.ts")] if command == "export" else [
        "train", str(sines), "--out", str(tmp_path), "--resume"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "no checkpoint.pt in it" in result.output


def test_an_unknown_key_is_one_line_naming_it(sines, tmp_path):
    result = CliRunner().invoke(main, ["train", str(sines), "--out", str(tmp_path / "run"), "--set", "lrr=1"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "unknown key 'lrr'" in result.output and "did you mean 'lr'?" in result.output


def test_an_augmented_run_resumes_bit_for_bit_and_changes_what_it_trains_on(sines, tmp_path):
    augmented = SETTINGS + ('augment=["mute", "gain", "compress"]',)
    straight = train_run(sines, tmp_path / "straight", ("tiny",), augmented + ("steps=6",))
    train_run(sines, tmp_path / "resumed", ("tiny",), augmented + ("steps=3",))
    resumed = train_run(sines, tmp_path / "resumed", (), ("steps=6",), resume=True)
    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())  # the chances come from saved RNG
    plain = train_run(sines, tmp_path / "plain", ("tiny",), SETTINGS + ("steps=6",))
    assert [step["spectral"] for step in plain.losses] != [step["spectral"] for step in straight.losses]
    assert load_checkpoint(tmp_path / "resumed")["config"].train.augment == ("mute", "gain", "compress")


def test_an_unknown_augmentation_is_one_line(sines, tmp_path):
    result = CliRunner().invoke(main, ["train", str(sines), "--out", str(tmp_path / "run"), "--augment", "reverb"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "unknown augmentation 'reverb'" in result.output
