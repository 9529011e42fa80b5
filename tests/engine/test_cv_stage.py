"""CvStage: the model's processor on the audio channels, CV jacks around it (ravelive.engine.cv_stage)."""

import numpy as np
import pytest
import torch

from ravelive.control.cv import CvConfig, CvIn, CvOut, GateIn
from ravelive.engine.cv_stage import CvSignals, CvStage, LatentTap
from ravelive.engine.latent_fanout import LatentFanout
from ravelive.engine.stream import StreamEngine
from ravelive.models.nn_model import NNModel

RATE = 48000
BLOCK = 256


class EngineProcessor:
    """A StreamEngine as a realtime Processor, pushed a block at a time (as the server's, minus the controls)."""

    def __init__(self, engine: StreamEngine) -> None:
        self.engine = engine
        self.latency = engine.latency
        self.step = engine.block

    def frames_wanted(self) -> int:
        return self.engine.frames_wanted()

    def push(self, x: np.ndarray) -> np.ndarray:
        return self.engine.push(x)


def stage_for(path, config: CvConfig, device_channels: int, tap: LatentTap | None = None):
    engine = StreamEngine(NNModel.load(path), block=BLOCK, sample_rate=RATE)
    signals = CvSignals(config, RATE)
    stage = CvStage(EngineProcessor(engine), signals, engine.channels, device_channels, RATE, engine.latent_dims, tap)
    return stage, signals, engine


def test_the_audio_passes_as_without_cv_and_the_cv_inputs_never_reach_it(identity_model_path):
    config = CvConfig(inputs=(CvIn(2, "mix"),), outputs=(CvOut(3, "level"),))
    stage, signals, _ = stage_for(identity_model_path, config, 3)
    plain = StreamEngine(NNModel.load(identity_model_path), block=BLOCK, sample_rate=RATE)
    rng = np.random.default_rng(0)
    x = np.zeros((3, 4 * BLOCK), dtype=np.float32)
    x[0] = rng.uniform(-0.5, 0.5, x.shape[1])
    x[1] = 0.25  # +2.5 V
    with torch.inference_mode():
        for start in range(0, x.shape[1], BLOCK):
            y = stage.push(x[:, start : start + BLOCK])
            assert y.shape == (3, BLOCK) and stage.latency == plain.latency
            np.testing.assert_array_equal(y[0], plain.push(x[:1, start : start + BLOCK])[0])
    assert signals.readings[0] == pytest.approx(0.25)
    assert signals.pushes == 4
    signals.close()


def test_the_level_output_follows_the_envelope_without_steps(identity_model_path):
    config = CvConfig(outputs=(CvOut(2, "level"),))  # 0..1 onto -5..+5 V
    stage, signals, _ = stage_for(identity_model_path, config, 2)
    t = np.arange(40 * BLOCK) / RATE
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)]).astype(np.float32)
    with torch.inference_mode():
        out = np.concatenate([stage.push(x[:, s : s + BLOCK]) for s in range(0, x.shape[1], BLOCK)], axis=1)
    rms = 0.5 / np.sqrt(2)
    assert out[1, -1] == pytest.approx((-5 + 10 * rms) / 10, abs=0.01)  # -1.46 V at full scale 10 V
    assert np.abs(np.diff(out[1])).max() < 0.01  # ramped: no step of more than 0.1 V
    signals.close()


def test_a_latent_output_holds_each_frame_of_the_running_encode_as_dc(codec_model_path):
    config = CvConfig(outputs=(CvOut(2, "latent/1", -2.0, 2.0),))
    tap, fanout, heard = LatentTap(), LatentFanout(), []
    fanout.attach("cv", tap)
    fanout.attach("osc", lambda frames: heard.append(frames.copy()))  # another listener hears the same frames
    stage, signals, engine = stage_for(codec_model_path, config, 2, tap)
    engine.latent_sink = fanout
    x = np.zeros((2, 8 * BLOCK), dtype=np.float32)
    x[0] = np.random.default_rng(1).uniform(-0.8, 0.8, x.shape[1])
    with torch.inference_mode():
        out = np.concatenate([stage.push(x[:, s : s + BLOCK]) for s in range(0, x.shape[1], BLOCK)], axis=1)
    frames = np.concatenate(heard, axis=1)[1]
    ratio = out.shape[1] // len(frames)
    assert ratio == 64  # the codec's encode ratio
    expected = (-5 + 10 * np.clip((frames + 2) / 4, 0, 1)) / 10
    np.testing.assert_allclose(out[1], np.repeat(expected, ratio), atol=1e-6)
    assert len(np.unique(out[1])) > 1
    signals.close()


def test_a_crossfade_pushes_the_same_input_to_both_stages_and_each_edge_counts_once(identity_model_path):
    config = CvConfig(gates=(GateIn(2, "freeze"),))
    old, signals, _ = stage_for(identity_model_path, config, 2)
    new = CvStage(old.inner, signals, 1, 2, RATE)
    x = np.zeros((2, BLOCK), dtype=np.float32)
    x[1, 100:] = 0.5  # a 5 V gate opens
    with torch.inference_mode():
        old.push(x)
        new.push(x)  # the same array, as Realtime's crossfade pushes it
    assert signals.rising == [1]
    signals.close()


def test_the_server_opens_the_cv_jacks_and_every_swapped_in_model_plays_inside_them(
        identity_model_path, switchable_model_path, noise_file):
    from ravelive.config import ServeConfig
    from ravelive.server import Server

    config = ServeConfig(model=identity_model_path, input_device="none", output_device="none", input_file=noise_file,
                         realtime=False, block=BLOCK, latency_margin_ms=20,
                         cv=CvConfig(inputs=(CvIn(3, "mix"),), outputs=(CvOut(2, "level"),)))
    server = Server(config)
    try:
        assert (server.channels, server.device_channels, server.realtime.config.channels) == (1, 3, 3)
        assert isinstance(server.realtime.processor, CvStage)
        server.swap_model(switchable_model_path)
        assert isinstance(server.realtime.processor, CvStage)
        assert server.realtime.processor.inner.engine.model.path == switchable_model_path
        assert {"cv_writes", "gate_edges", "gate_actions"} <= server.status().keys()
    finally:
        server.stop()
