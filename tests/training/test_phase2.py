"""Phase 2: the encoder stops moving, the discriminator trains, the decoder keeps learning."""

import torch
from training_fixtures import QUICK

from ravelive.training.checkpoint import load_checkpoint
from ravelive.training.loop import train_run


def test_phase_2_freezes_the_encoder_and_trains_the_discriminator(sines, tmp_path):
    run = tmp_path / "run"
    settings = QUICK + ("phase_1_steps=3",)
    train_run(sines, run, ("tiny",), settings + ("steps=3",))
    before = load_checkpoint(run)
    result = train_run(sines, run, (), ("steps=6",), resume=True)
    assert all({"discriminator", "adversarial", "feature_matching"} <= set(losses) for losses in result.losses)
    after = result.model.state_dict()
    encoder = [name for name in after if name.startswith("encoder.")]
    decoder = [name for name in after if name.startswith("decoder.") and after[name].is_floating_point()]
    assert encoder and all(torch.equal(before["model"][name], after[name]) for name in encoder)
    assert any(not torch.equal(before["model"][name], after[name]) for name in decoder)
    # every weight moves (an output bias may not: while all scores lie inside the hinge margin, the real
    # and fake halves pull it equally in opposite directions)
    weights = {name: value for name, value in result.discriminator.state_dict().items() if "weight" in name}
    assert weights and all(not torch.equal(before["discriminator"][name], value) for name, value in weights.items())
