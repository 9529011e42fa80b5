"""Phase 2: the encoder stops moving; the discriminator and the decoder take turns, as in RAVE."""

import pytest
import torch
from training_fixtures import QUICK

from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.loop import train_run

ADVERSARIAL = {"discriminator", "adversarial", "feature_matching"}
DECODER_TURN = {"adversarial", "feature_matching"}


def test_phase_2_freezes_the_encoder_and_trains_the_discriminator(sines, tmp_path):
    run = tmp_path / "run"
    settings = QUICK + ("phase_1_steps=3",)
    train_run(sines, run, ("tiny",), settings + ("steps=3",))
    before = load_checkpoint(run)
    result = train_run(sines, run, (), ("steps=6",), resume=True)
    # discriminator_every = 4 (v2's, tiny keeps it): phase 2's first step trains the discriminator
    assert [set(losses) & ADVERSARIAL for losses in result.losses] == [{"discriminator"}, DECODER_TURN, DECODER_TURN]
    after = result.model.state_dict()
    encoder = [name for name in after if name.startswith("encoder.")]
    decoder = [name for name in after if name.startswith("decoder.") and after[name].is_floating_point()]
    assert encoder and all(torch.equal(before["model"][name], after[name]) for name in encoder)
    assert any(not torch.equal(before["model"][name], after[name]) for name in decoder)
    # every weight moves (an output bias may not: while all scores lie inside the hinge margin, the real
    # and fake halves pull it equally in opposite directions)
    weights = {name: value for name, value in result.discriminator.state_dict().items() if "weight" in name}
    assert weights and all(not torch.equal(before["discriminator"][name], value) for name, value in weights.items())


def _changed(before: dict, after: dict, prefix: str = "") -> bool:
    return any(not torch.equal(before[name], value) for name, value in after.items()
               if name.startswith(prefix) and value.is_floating_point())


@pytest.mark.parametrize("turn, every", [("discriminator", 2), ("decoder", 2)])
def test_a_turn_trains_only_its_network(sines, tmp_path, turn, every):
    """Phase 2 from step 2: step 2 is the discriminator's turn, step 3 the decoder's."""
    run = tmp_path / "run"
    first = 2 if turn == "discriminator" else 3
    train_run(sines, run, ("tiny",), QUICK + ("phase_1_steps=2", f"discriminator_every={every}", f"steps={first}"))
    before = load_checkpoint(run)
    result = train_run(sines, run, (), (f"steps={first + 1}",), resume=True)
    assert _changed(before["discriminator"], result.discriminator.state_dict()) == (turn == "discriminator")
    assert _changed(before["model"], result.model.state_dict(), "decoder.") == (turn == "decoder")
    assert ("total" in result.losses[0]) == (turn == "decoder")  # the model's loss, where the model learned


def test_discriminator_every_1_trains_both_in_every_step(sines, tmp_path):
    result = train_run(sines, tmp_path / "run", ("tiny",), QUICK + ("phase_1_steps=1", "discriminator_every=1",
                                                                     "steps=3"))
    assert [set(losses) & ADVERSARIAL for losses in result.losses[1:]] == [ADVERSARIAL, ADVERSARIAL]

