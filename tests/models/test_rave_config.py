"""RAVE configs: presets combine in order, overrides, one-line errors, parameter counts at full width."""

import pytest

from ravelive.errors import ConfigError
from ravelive.models.rave import PRESETS, RaveConfig, RaveModel, count_parameters, resolve_config

# Trainable parameters at full width, counted on the meta device (nothing allocated). RAVE 2.x's v2 is
# ~30-35 M; ours has RAVE's layer shapes (see ravelive/models/rave/decoder.py for the upsampling).
FULL_WIDTH_PARAMETERS = {"v2": 31_654_416, "v2_small": 7_639_936, "raspberry": 1_129_744, "tiny": 15_108}


def test_defaults_are_rave_v2():
    config = resolve_config(["v2"])
    assert config == RaveConfig()
    assert (config.capacity, config.latent_dims, config.ratios, config.bands) == (96, 128, (4, 4, 4, 2), 16)
    assert config.ratio == 2048


@pytest.mark.parametrize(("presets", "ratio"), [(["v2_small"], 512), (["raspberry"], 2048), (["tiny"], 32)])
def test_preset_compression_ratios(presets, ratio):
    assert resolve_config(presets).ratio == ratio


def test_later_presets_and_overrides_win():
    config = resolve_config(["v2_small", "causal", "raspberry"], overrides={"latent_dims": 16})
    assert config.causal and not config.use_noise
    assert config.capacity == 16  # raspberry came after v2_small
    assert config.ratios == (4, 2, 2, 2)  # v2_small's, raspberry leaves them
    assert config.latent_dims == 16
    assert resolve_config(["raspberry", "v2_small"]).capacity == 48


def test_a_single_preset_name_is_accepted():
    assert resolve_config("tiny") == resolve_config(["tiny"])


def test_lists_from_toml_become_tuples():
    config = resolve_config(["tiny"], {"ratios": [2, 2], "dilations": [[1], [1, 3]], "noise_ratios": [2]})
    assert config.ratios == (2, 2) and config.dilations == ((1,), (1, 3)) and config.noise_ratios == (2,)


def test_unknown_preset_names_the_choices():
    choices = "causal, descriptors, raspberry, tiny, v2, v2_small, wasserstein"
    with pytest.raises(ConfigError, match=rf"unknown RAVE preset 'v3': choose from {choices} \(list several"):
        resolve_config(["v2", "v3"])


def test_unknown_key_names_the_keys():
    with pytest.raises(ConfigError, match=r"unknown RAVE config key 'capcity': expected one of bands, capacity, "):
        resolve_config(["v2"], overrides={"capcity": 8})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity": 0}, "capacity = 0: expected a positive integer"),
        ({"bands": 1}, "bands = 1: expected at least 2"),
        ({"ratios": (4, 0, 4, 2)}, r"ratios = \(4, 0, 4, 2\): expected a non-empty tuple"),
        ({"dilations": ((1, 3),)}, r"dilations = \(\(1, 3\),\): expected one non-empty tuple .* per ratio \(4 for"),
        ({"regularizer": "vq"}, "regularizer = 'vq': expected one of vae, wasserstein"),
        ({"ratios": (2, 1, 1, 1), "noise_ratios": (2, 2)}, r"noise frame of 4 band frames must divide one latent frame \(2\)"),
    ],
)
def test_unusable_values_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(["v2"], overrides)


def test_every_preset_documents_a_valid_config():
    for name in PRESETS:
        assert isinstance(resolve_config([name]), RaveConfig)


@pytest.mark.parametrize("preset", sorted(FULL_WIDTH_PARAMETERS))
def test_full_width_parameter_counts(preset):
    count = count_parameters(resolve_config([preset]))
    print(f"{preset}: {count / 1e6:.2f} M parameters")
    assert count == FULL_WIDTH_PARAMETERS[preset]


def test_v2_is_as_large_as_rave_v2():
    assert 30e6 <= count_parameters(resolve_config(["v2"])) <= 35e6


def test_causal_and_wasserstein_change_no_weights_but_the_latent_head():
    v2 = count_parameters(resolve_config(["v2"]))
    assert count_parameters(resolve_config(["v2", "causal"])) == v2
    # the encoder's last conv (kernel 3, 1536 channels in) gives latent_dims instead of 2 * latent_dims outputs
    assert v2 - count_parameters(resolve_config(["v2", "wasserstein"])) == 128 * (1536 * 3 + 1)


def test_counting_a_config_matches_counting_the_built_model():
    config = resolve_config(["tiny"])
    assert count_parameters(config) == count_parameters(RaveModel(config))
