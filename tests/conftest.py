"""Shared pytest fixtures. Each part of the package adds its own section."""

import numpy as np
import pytest
import soundfile
import torch

import nn_fixtures
from ravelive.models.attributes import AttributeType
from ravelive.models.autoencoder import AutoencoderConfig, StreamingAutoencoder
from ravelive.models.export import export_model

@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test runs torch on one thread: repeatable, and fair to the other tests on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def noise_file(tmp_path):
    """Half a second of seeded uniform noise, mono, 48 kHz, as a WAV file."""
    path = tmp_path / "noise.wav"
    soundfile.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 24000).astype(np.float32), 48000)
    return path


# ---- nn~-contract model files (tests/nn_fixtures.py), built once per session ----


@pytest.fixture(scope="session")
def nn_model_dir(tmp_path_factory):
    """A session directory holding the built fixture models."""
    return tmp_path_factory.mktemp("nn_models")


@pytest.fixture(scope="session")
def identity_model_path(nn_model_dir):
    """forward [1, 1, 1, 1]: returns its input."""
    return nn_fixtures.build_identity(nn_model_dir)


@pytest.fixture(scope="session")
def two_inputs_model_path(nn_model_dir):
    """mix [2, 1, 1, 1] (audio x gain) and forward [1, 1, 1, 1]."""
    return nn_fixtures.build_two_inputs(nn_model_dir)


@pytest.fixture(scope="session")
def codec_model_path(nn_model_dir):
    """Streaming encode [1, 1, 4, 64], decode [4, 64, 1, 1], forward [1, 1, 1, 1]; sr 48000; batch 1 only."""
    return nn_fixtures.build_codec(nn_model_dir)


@pytest.fixture(scope="session")
def control_rate_model_path(nn_model_dir):
    """envelope [1, 1, 2, 32]: a control-rate output."""
    return nn_fixtures.build_control_rate(nn_model_dir)


@pytest.fixture(scope="session")
def nan_model_path(nn_model_dir):
    """forward [1, 1, 1, 1]: the identity until a block holds |x| > 4; then NaN forever, until its reset()."""
    return nn_fixtures.build_nan_on_loud(nn_model_dir)


@pytest.fixture(scope="session")
def nan_model_without_reset_path(nn_model_dir):
    """As nan_model_path, without reset(): only loading the file again clears its state."""
    return nn_fixtures.build_nan_on_loud_without_reset(nn_model_dir)


@pytest.fixture(scope="session")
def attributes_model_path(nn_model_dir):
    """forward = gain * x; attributes of every type; set_gain refuses negatives."""
    return nn_fixtures.build_attributes(nn_model_dir)


@pytest.fixture(scope="session")
def switchable_model_path(nn_model_dir):
    """forward = gain * x and negate = -gain * x, attribute `gain`: what plays after a swap is visible."""
    return nn_fixtures.build_switchable(nn_model_dir)


@pytest.fixture(scope="session")
def raising_model_path(nn_model_dir):
    """forward raises ValueError('this model always fails')."""
    return nn_fixtures.build_raising(nn_model_dir)


@pytest.fixture(scope="session")
def bad_output_model_path(nn_model_dir):
    """forward [1, 1, 1, 1] that returns half the samples."""
    return nn_fixtures.build_bad_output(nn_model_dir)


@pytest.fixture(scope="session")
def sr44100_model_path(nn_model_dir):
    """Identity whose native sample rate is 44100."""
    return nn_fixtures.build_sr44100(nn_model_dir)


@pytest.fixture(scope="session")
def no_get_methods_model_path(nn_model_dir):
    """No get_methods(): forward [1, 1, 1, 1] and halve [1, 1, 1, 2]; get_sample_rate() = 22050."""
    return nn_fixtures.build_without_get_methods(nn_model_dir)


@pytest.fixture(scope="session")
def metadata_model_path(nn_model_dir):
    """Identity with a ravelive.json metadata file in the archive."""
    return nn_fixtures.build_with_metadata(nn_model_dir)


@pytest.fixture(scope="session")
def malformed_model_paths(tmp_path_factory):
    """Every kind of broken model file, by kind (see nn_fixtures.build_malformed)."""
    return nn_fixtures.build_malformed(tmp_path_factory.mktemp("malformed_models"))


# ---- RAVE-like cached-conv autoencoder (ravelive.models.autoencoder), built once per session ----


class RaveLikeAutoencoder(StreamingAutoencoder):
    """StreamingAutoencoder plus RAVE v3's AdaIN switches (stored, no effect), with RAVE's bare-value getters."""

    learn_target: bool
    reset_target: bool

    def __init__(self, config: AutoencoderConfig, streaming: bool = True) -> None:
        super().__init__(config, streaming=streaming)
        self.learn_target = False
        self.reset_target = False
        self.register_attribute("learn_target", [AttributeType.BOOL])
        self.register_attribute("reset_target", [AttributeType.BOOL])

    @torch.jit.export
    def get_learn_target(self) -> bool:
        return self.learn_target

    @torch.jit.export
    def set_learn_target(self, learn_target: bool) -> int:
        self.learn_target = learn_target
        return 0

    @torch.jit.export
    def get_reset_target(self) -> bool:
        return self.reset_target

    @torch.jit.export
    def set_reset_target(self, reset_target: bool) -> int:
        self.reset_target = reset_target
        return 0


@pytest.fixture(scope="session")
def rave_like_model(tmp_path_factory):
    """Path of a RAVE-v2-like export at 48 kHz: non-causal cached convs, ratio 2048, 8 latents.

    encode [1, 1, 8, 2048], decode [8, 2048, 1, 1], forward [1, 1, 1, 1], prior [1, 2048, 8, 2048];
    attributes gain (float, refuses outside [0, 4]), learn_target and reset_target (bool); batch up to 16.
    Its ravelive.json gives the delays: encode 8192, decode 5408, forward 13600 samples.
    """
    config = AutoencoderConfig(strides=(16, 8, 4, 4), channels=16, causal=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        offline = RaveLikeAutoencoder(config, streaming=False).eval()
    model = RaveLikeAutoencoder(config)
    model.load_state_dict(offline.state_dict())
    path = tmp_path_factory.mktemp("rave_like") / "rave_like.ts"
    return export_model(model, path, offline=offline, config=config.to_dict())


# ---- a JACK server with the dummy driver (tests/jack_server.py), started and stopped per test module ----


@pytest.fixture(scope="module")
def jack_server():
    """jackd -d dummy -r 48000 -p 256 under a unique name; clients need `jack_server.env`."""
    from jack_server import JackServer

    server = JackServer(sample_rate=48000, period=256).start()
    yield server
    server.stop()
