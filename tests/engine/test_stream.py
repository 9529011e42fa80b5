import numpy as np
import pytest
import torch

import nn_fixtures
from ravelive.dsp.latent import LatentProcessor, LatentTransform
from ravelive.dsp.resample import QUALITIES
from ravelive.engine.stream import BLOCK_FLOOR, FixedLatency, StreamEngine
from ravelive.errors import ConfigError, ParameterError
from ravelive.models.nn_model import NNModel
from ravelive.models.torchscript import script_and_save
from signals import noise

HOST_BLOCKS = [1, 63, 64, 65, 511, 2048, 8193]


class RecordingModel(NNModel):
    """The real model, noting which method each call ran."""

    def __call__(self, method, x):
        self.calls.append(method)
        return super().__call__(method, x)




def stream(engine, x, host_block):
    """x through FixedLatency(engine) in host blocks of `host_block`; exactly as many samples come out."""
    fixed = FixedLatency(engine)
    out = np.concatenate([fixed.process(x[:, i : i + host_block]) for i in range(0, x.shape[1], host_block)], axis=1)
    assert out.shape == (engine.output_channels, x.shape[1])
    return out


def whole(path, method, x):
    """`method` of a fresh copy of the model on the whole signal in one call."""
    with torch.inference_mode():
        return NNModel.load(path)(method, torch.from_numpy(x[None])).numpy()[0]


def assert_delayed(out, reference, latency):
    usable = min(out.shape[1] - latency, reference.shape[1])
    assert usable > 0
    assert np.max(np.abs(out[:, latency : latency + usable] - reference[:, :usable])) <= 1e-5
    np.testing.assert_array_equal(out[:, :latency], 0.0)


@pytest.mark.parametrize("host_block", HOST_BLOCKS)
def test_codec_stream_equals_whole_signal_after_the_latency(codec_model_path, host_block):
    engine = StreamEngine(NNModel.load(codec_model_path), block=128)
    x = noise(1, 128 * 40)
    assert_delayed(stream(engine, x, host_block), whole(codec_model_path, "forward", x), engine.latency)


@pytest.mark.parametrize("host_block", [1, 65, 8193])
def test_latent_path_stream_equals_whole_signal_after_the_latency(codec_model_path, host_block):
    transform = LatentTransform.identity(4).with_value("bias", 0, 0.25).with_value("scale", 2, -2.0)
    engine = StreamEngine(NNModel.load(codec_model_path))
    engine.latent = transform
    x = noise(1, 64 * 150, seed=1)
    reference_model = NNModel.load(codec_model_path)
    with torch.inference_mode():
        z = LatentProcessor(4)(transform, reference_model("encode", torch.from_numpy(x[None])))
        reference = reference_model("decode", z).numpy()[0]
    assert_delayed(stream(engine, x, host_block), reference, engine.latency)


@pytest.mark.parametrize("host_block", [1, 63, 2048])
def test_control_rate_output_is_held_and_exact(control_rate_model_path, host_block):
    engine = StreamEngine(NNModel.load(control_rate_model_path), block=64, channels=2)
    x = np.repeat(noise(1, 64 * 30, seed=2), 2, axis=0)
    envelope = whole(control_rate_model_path, "envelope", x[:1])
    assert_delayed(stream(engine, x, host_block), np.repeat(envelope, 32, axis=1), engine.latency)


def test_two_input_method_takes_a_duplicated_mono_stream(two_inputs_model_path):
    engine = StreamEngine(NNModel.load(two_inputs_model_path), method="mix", channels=1)
    x = noise(1, 1000, seed=3)
    assert_delayed(stream(engine, x, 100), x * x, engine.latency)


def test_stereo_stream_through_a_mono_model_is_mixed_down_and_duplicated(identity_model_path):
    engine = StreamEngine(NNModel.load(identity_model_path), block=16, channels=2)
    x = noise(2, 500, seed=4)
    assert_delayed(stream(engine, x, 7), np.repeat(x.mean(axis=0, keepdims=True), 2, axis=0), engine.latency)


@pytest.mark.parametrize("block", [1, 64, 2048])
@pytest.mark.parametrize("host_block", [1, 63, 64, 4096])
def test_impulse_through_identity_comes_out_exactly_at_the_latency(identity_model_path, block, host_block):
    engine = StreamEngine(NNModel.load(identity_model_path), block=block)
    assert engine.latency == block - 1
    x = np.zeros((1, 3 * block + 2 * host_block + 16), dtype=np.float32)
    x[0, 5] = 1.0
    out = stream(engine, x, host_block)
    assert np.flatnonzero(out[0]).tolist() == [5 + engine.latency]
    assert out[0, 5 + engine.latency] == 1.0


def test_blocks_without_an_active_transform_run_forward_and_active_ones_encode_decode(codec_model_path):
    model = RecordingModel.load(codec_model_path)
    model.calls = []
    engine = StreamEngine(model, block=64)
    engine.push(noise(1, 64))
    engine.latent = LatentTransform.identity(4).with_value("freeze", 3, True)
    engine.push(noise(1, 64))
    engine.latent = LatentTransform.identity(4)
    engine.push(noise(1, 64))
    assert model.calls == ["forward", "encode", "decode", "forward"]


class Ratio96(nn_fixtures._ContractModule):
    """`frames` [1, 1, 1, 96]: the mean of each 96-sample frame (a ratio that does not divide the floor)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_method("frames", [1, 96, 1, 96])

    @torch.jit.export
    def frames(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_default_block_is_the_smallest_legal_one_of_at_least_the_floor(
    codec_model_path, identity_model_path, rave_like_model, tmp_path
):
    assert BLOCK_FLOOR == 256
    assert StreamEngine(NNModel.load(codec_model_path)).block == 256  # ratio 64
    assert StreamEngine(NNModel.load(identity_model_path)).block == 256  # ratio 1: not one model call per sample
    assert StreamEngine(NNModel.load(rave_like_model)).block == 2048  # ratio 2048: as RAVE models run in nn~
    assert StreamEngine(NNModel.load(script_and_save(Ratio96(), tmp_path / "ratio96.ts"))).block == 288


@pytest.mark.parametrize("block", [1, 64, 320])
def test_any_legal_block_can_be_chosen(codec_model_path, identity_model_path, block):
    path = identity_model_path if block == 1 else codec_model_path
    assert StreamEngine(NNModel.load(path), block=block).block == block


@pytest.mark.parametrize("block", [100, 0, -64, 64.0])
def test_illegal_block_is_refused(codec_model_path, block):
    with pytest.raises(ConfigError, match=f"block {block!r} is not a legal model block .* multiple of 64"):
        StreamEngine(NNModel.load(codec_model_path), block=block)


def test_unknown_method_is_refused(codec_model_path):
    with pytest.raises(ConfigError, match="method 'prior' is not in codec.ts; choose one of: encode, decode, forward"):
        StreamEngine(NNModel.load(codec_model_path), method="prior")


def test_latent_transform_without_a_latent_path_is_refused(identity_model_path):
    engine = StreamEngine(NNModel.load(identity_model_path))
    assert engine.latent is None
    with pytest.raises(ParameterError, match="method 'forward' has no latent path"):
        engine.latent = LatentTransform.identity(4)


def test_latent_transform_of_the_wrong_size_is_refused(codec_model_path):
    engine = StreamEngine(NNModel.load(codec_model_path))
    with pytest.raises(ParameterError, match="latent transform has 8 dimensions, the model's latent has 4"):
        engine.latent = LatentTransform.identity(8)


def test_push_of_the_wrong_channel_count_is_refused(identity_model_path):
    engine = StreamEngine(NNModel.load(identity_model_path), channels=2)
    with pytest.raises(ValueError, match=r"push takes audio \[2, n\], got shape \[1, 10\]"):
        engine.push(np.zeros((1, 10), dtype=np.float32))


def chirp(rate, seconds, top):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * (50 * t + (top - 50) / 2 * t**2))).astype(np.float32)[None]


@pytest.mark.parametrize("block", [1, 256, 2048])
@pytest.mark.parametrize("host_block", [1, 97, 8193])
def test_a_44k1_model_in_a_48k_stream_is_converted_not_pitched(sr44100_model_path, block, host_block):
    engine = StreamEngine(NNModel.load(sr44100_model_path), block=block, sample_rate=48000)
    assert (engine.sample_rate, engine.model_rate) == (48000, 44100)
    x = chirp(48000, 0.4, top=17000.0)
    out = stream(engine, x, host_block)
    latency, settled = engine.latency, 48000 // 50  # compare after the filters' start-up (20 ms)
    np.testing.assert_array_equal(out[:, :latency], 0.0)
    np.testing.assert_allclose(out[0, latency + settled :], x[0, settled : x.shape[1] - latency], atol=2e-4)


@pytest.mark.parametrize("quality", QUALITIES)
def test_a_22k05_model_in_a_44k1_stream_delays_an_impulse_by_exactly_the_latency(no_get_methods_model_path, quality):
    engine = StreamEngine(NNModel.load(no_get_methods_model_path), block=512, sample_rate=44100, resample_quality=quality)
    x = np.zeros((1, 20000), dtype=np.float32)
    x[0, 3000] = 1.0  # band-limited by the 22.05 kHz model: comes back as a symmetric sinc centred on it
    out = stream(engine, x, 64)
    centre = 3000 + engine.latency
    assert np.argmax(out[0]) == centre
    np.testing.assert_allclose(out[0, centre - 200 : centre], out[0, centre + 200 : centre : -1], atol=1e-4)


@pytest.mark.parametrize("host_block", [1, 63, 256, 8193])
def test_live_resampling_brings_an_impulse_back_exactly_at_the_latency(sr44100_model_path, host_block):
    engine = StreamEngine(NNModel.load(sr44100_model_path), block=256, sample_rate=48000, resample_quality="live")
    assert engine.latency < (256 + 80) * 48000 / 44100  # the block, and under 2 ms for both conversions
    x = np.zeros((1, 12000), dtype=np.float32)
    x[0, 3000] = 1.0
    out = stream(engine, x, host_block)
    centre = 3000 + engine.latency
    assert np.argmax(out[0]) == centre
    # linear phase: symmetric about the peak (to -80 dB: the 44.1 kHz grid in between is not symmetric about it)
    np.testing.assert_allclose(out[0, centre - 60 : centre], out[0, centre + 60 : centre : -1], atol=1e-4)


def test_live_resampling_delays_in_band_audio_by_exactly_the_latency(sr44100_model_path):
    engine = StreamEngine(NNModel.load(sr44100_model_path), block=256, sample_rate=48000, resample_quality="live")
    x = chirp(48000, 0.4, top=17000.0)
    out = stream(engine, x, 97)
    latency, settled = engine.latency, 48000 // 100
    np.testing.assert_array_equal(out[:, :latency], 0.0)
    np.testing.assert_allclose(out[0, latency + settled :], x[0, settled : x.shape[1] - latency], atol=3e-3)


def test_resampled_latency_adds_both_hold_backs_to_the_block(sr44100_model_path):
    engine = StreamEngine(NNModel.load(sr44100_model_path), block=2048, sample_rate=48000)
    assert 2048 * 48000 / 44100 < engine.latency < 2048 * 48000 / 44100 + 2100


@pytest.mark.parametrize("host_block", HOST_BLOCKS)
def test_rave_like_stream_equals_whole_signal_after_the_latency(rave_like_model, host_block):
    engine = StreamEngine(NNModel.load(rave_like_model))
    assert (engine.block, engine.latency) == (2048, 2047)
    x = noise(1, 2048 * 6, seed=5)
    assert_delayed(stream(engine, x, host_block), whole(rave_like_model, "forward", x), engine.latency)


@pytest.mark.parametrize("host_block", [1, 511, 8193])
def test_rave_like_latent_path_with_freeze_and_noise_is_exact(rave_like_model, host_block):
    transform = LatentTransform.identity(8).with_value("freeze", 1, True).with_value("noise", 5, 0.3)
    engine = StreamEngine(NNModel.load(rave_like_model))
    engine.latent = transform
    x = noise(1, 2048 * 6, seed=6)
    reference_model = NNModel.load(rave_like_model)
    with torch.inference_mode():
        z = reference_model("encode", torch.from_numpy(x[None]))
        reference = reference_model("decode", LatentProcessor(8)(transform, z)).numpy()[0]
    assert_delayed(stream(engine, x, host_block), reference, engine.latency)


@pytest.mark.parametrize("host_block", [1, 64, 8193])
def test_rave_like_prior_reads_the_last_sample_of_each_frame_and_holds_its_output(rave_like_model, host_block):
    engine = StreamEngine(NNModel.load(rave_like_model), method="prior", block=4096, channels=8)
    frames = 8
    temperature = np.abs(noise(1, 2048 * frames, seed=7)) + 1.0
    temperature[0, 2047::4096] = 0.0  # the sample the method reads in even frames: prior(0) is silent
    out = stream(engine, np.repeat(temperature, 8, axis=0), host_block)[:, engine.latency :]
    for frame in range(frames - 1):
        values = out[:, frame * 2048 : (frame + 1) * 2048]
        assert np.all(values == values[:, :1])  # held for the whole frame
        assert np.all(values == 0.0) == (frame % 2 == 0)


def test_unknown_resample_quality_is_refused(sr44100_model_path):
    with pytest.raises(ConfigError, match="resample quality 'best' is not one of live, QQ, LQ, MQ, HQ, VHQ"):
        StreamEngine(NNModel.load(sr44100_model_path), sample_rate=48000, resample_quality="best")


# ---- stream channels: control-rate sides keep the method's own channel count ----


@pytest.mark.parametrize("host_block", [1, 63, 8193])
def test_encode_writes_one_channel_per_latent_dimension_held_at_audio_rate(codec_model_path, host_block):
    engine = StreamEngine(NNModel.load(codec_model_path), method="encode", block=64)
    assert (engine.channels, engine.output_channels) == (1, 4)
    x = noise(1, 64 * 20, seed=8)
    z = whole(codec_model_path, "encode", x)
    assert_delayed(stream(engine, x, host_block), np.repeat(z, 64, axis=1), engine.latency)


@pytest.mark.parametrize("host_block", [1, 65, 8193])
def test_decode_reads_one_channel_per_latent_dimension(codec_model_path, host_block):
    engine = StreamEngine(NNModel.load(codec_model_path), method="decode", block=128)
    assert (engine.channels, engine.output_channels) == (4, 1)
    z = noise(4, 30, seed=9)
    held = np.repeat(z, 64, axis=1)  # a latent stream as encode writes it
    assert_delayed(stream(engine, held, host_block), whole(codec_model_path, "decode", z), engine.latency)


def test_output_channels_can_differ_from_the_input_stream(identity_model_path):
    engine = StreamEngine(NNModel.load(identity_model_path), channels=1, output_channels=2)
    x = noise(1, 1000, seed=10)
    assert_delayed(stream(engine, x, 100), np.repeat(x, 2, axis=0), engine.latency)


@pytest.mark.parametrize("name,count", [("channels", 0), ("output_channels", -2)])
def test_channel_counts_below_one_are_refused(identity_model_path, name, count):
    with pytest.raises(ConfigError, match=f"{name} {count} must be a positive whole number of stream channels"):
        StreamEngine(NNModel.load(identity_model_path), **{name: count})


# ---- latent sink: the latent trajectory handed out per block ----


def test_latent_sink_receives_every_latent_frame_and_forward_stays_exact(codec_model_path):
    model = RecordingModel.load(codec_model_path)
    model.calls = []
    engine = StreamEngine(model, block=128)
    received = []
    engine.latent_sink = received.append
    x = noise(1, 128 * 12, seed=11)
    out = stream(engine, x, 100)
    assert set(model.calls) == {"encode", "decode"}  # forward == decode(encode): the latent path runs
    assert all(frames.shape == (4, 2) for frames in received)  # block // ratio frames per block
    np.testing.assert_allclose(np.concatenate(received, axis=1), whole(codec_model_path, "encode", x)[:, :24], atol=1e-6)
    assert_delayed(out, whole(codec_model_path, "forward", x), engine.latency)


def test_latent_sink_receives_the_transformed_latent(codec_model_path):
    engine = StreamEngine(NNModel.load(codec_model_path), block=64)
    engine.latent = LatentTransform.identity(4).with_value("bias", 1, 0.5).with_value("replace", 3, -1.0)
    received = []
    engine.latent_sink = received.append
    x = noise(1, 64 * 4, seed=12)
    engine.push(x)
    z = whole(codec_model_path, "encode", x)
    z[1] += 0.5
    z[3] = -1.0
    np.testing.assert_allclose(np.concatenate(received, axis=1), z, atol=1e-6)


def test_latent_sink_receives_the_output_of_method_encode(codec_model_path):
    engine = StreamEngine(NNModel.load(codec_model_path), method="encode", block=64)
    received = []
    engine.latent_sink = received.append
    x = noise(1, 64 * 3, seed=13)
    engine.push(x)
    np.testing.assert_array_equal(np.concatenate(received, axis=1), whole(codec_model_path, "encode", x))


def test_without_a_sink_an_inactive_transform_runs_forward_again(codec_model_path):
    model = RecordingModel.load(codec_model_path)
    model.calls = []
    engine = StreamEngine(model, block=64)
    engine.latent_sink = lambda frames: None
    engine.push(noise(1, 64))
    engine.latent_sink = None
    engine.push(noise(1, 64))
    assert model.calls == ["encode", "decode", "forward"]


def test_a_freeze_after_sink_only_blocks_holds_its_own_first_frame(codec_model_path):
    engine = StreamEngine(NNModel.load(codec_model_path), block=64)
    received = []
    engine.latent_sink = received.append
    x = noise(1, 64 * 3, seed=14)
    engine.push(x[:, :64])  # no transform: the sink alone runs the latent path
    engine.latent = LatentTransform.identity(4).with_value("freeze", 0, True)
    engine.push(x[:, 64:])
    z = whole(codec_model_path, "encode", x)
    got = np.concatenate(received, axis=1)
    np.testing.assert_allclose(got[0], [z[0, 0], z[0, 1], z[0, 1]], atol=1e-6)


@pytest.mark.parametrize("quality", ["live", "HQ"])
def test_frames_wanted_is_the_push_that_runs_the_next_block(sr44100_model_path, quality):
    engine = StreamEngine(NNModel.load(sr44100_model_path), block=2048, sample_rate=48000, resample_quality=quality)
    silence = np.zeros((1, 1), dtype=np.float32)
    outputs = 0
    for _ in range(6):  # a resampled block spans a fractional number of stream frames: each one is different
        wanted = engine.frames_wanted()
        if quality == "live":
            assert engine.push(np.zeros((1, wanted - 1), dtype=np.float32)).shape[1] == 0
            assert engine.push(silence).shape[1] > 0
        else:
            assert wanted == 1  # soxr's release points are not known: every frame may be the one
            while not engine.push(silence).shape[1]:
                pass
        outputs += 1
    assert outputs == 6
    plain = StreamEngine(NNModel.load(sr44100_model_path), block=2048)
    plain.push(np.zeros((1, 100), dtype=np.float32))
    assert plain.frames_wanted() == 2048 - 100
