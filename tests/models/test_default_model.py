"""The bundled default model: its nn~ interface, and that it is the trained one (tools/make_default_model.py)."""


import pytest
import torch

from ravelive.models.default import DEFAULT_MODEL_PATH, DEFAULT_PRESETS, DEFAULT_SETTINGS, HELD_OUT_SEED
from ravelive.models.nn_model import NNModel
from ravelive.models.rave.model import RaveModel
from ravelive.models.rave.config import RaveConfig
from ravelive.training.config import build_config
from ravelive.training.evaluate import reconstruction_distance, streamed_reconstruction
from ravelive.training.synthetic import SAMPLE_RATE, synthesise

RECIPE = build_config(DEFAULT_PRESETS, DEFAULT_SETTINGS)
MARGIN = 0.5  # the trained model's held-out distance is below this fraction of the untrained one's


@pytest.fixture(scope="module")
def bundled() -> NNModel:
    return NNModel.load(DEFAULT_MODEL_PATH)


def test_the_bundled_model_keeps_the_interface_the_tests_and_patches_use(bundled):
    assert DEFAULT_MODEL_PATH.stat().st_size < 2_000_000
    assert bundled.sample_rate == 48000
    assert {name: spec.params for name, spec in bundled.methods.items()} == {
        "encode": (1, 1, 8, 512),
        "decode": (8, 512, 1, 1),
        "forward": (1, 1, 1, 1),
        "prior": (1, 512, 8, 512),
    }
    assert set(bundled.attributes) == {"gain"}
    assert bundled.minimum_block() == 512


def test_the_bundled_model_is_the_recipe_trained_to_its_last_step(bundled):
    metadata = bundled.metadata
    assert metadata["architecture"] == "RaveModel"
    assert RaveConfig(**metadata["config"]) == RECIPE.model  # fields added since keep their defaults
    assert metadata["config"]["causal"]  # no look-ahead in the convs: only the PQMF's and one latent frame of delay
    assert metadata["training"]["step"] == RECIPE.train.steps
    assert metadata["training"]["config"]["seed"] == RECIPE.train.seed


def test_the_bundled_model_reconstructs_held_out_material_far_better_than_its_untrained_self(bundled):
    audio = synthesise(4.0, HELD_OUT_SEED + 1)  # not the tool's held-out seconds either: 4 s of other events
    trained = reconstruction_distance(audio, streamed_reconstruction(bundled, audio))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE.train.seed)  # the initial weights training started from
        untrained = RaveModel(RECIPE.model).eval()
    with torch.inference_mode():
        offline = untrained(torch.from_numpy(audio)[None, None])[0, 0].numpy()
    baseline = reconstruction_distance(audio, offline)
    print(f"spectral distance on {len(audio) / SAMPLE_RATE:.0f} s held out: trained {trained:.2f}, untrained {baseline:.2f}")
    assert trained < MARGIN * baseline
