"""OutputStage: exact latency, the NaN/Inf guard and its reset, sanitised input (gain and limiter: test_realtime)."""

import numpy as np
import pytest

from nn_fixtures import NAN_TRIGGER
from ravelive.control.model_params import ModelControls
from ravelive.engine.output import FADE, OutputStage
from ravelive.engine.stream import StreamEngine
from ravelive.models.nn_model import NNModel

RATE = 48000
BLOCK = 256


def stage_for(path, **options) -> OutputStage:
    model = NNModel.load(path)
    controls = ModelControls.from_model(model)
    return OutputStage(StreamEngine(model, block=BLOCK, sample_rate=RATE), controls.store(), controls, **options)


def played(stage: OutputStage, x: np.ndarray) -> np.ndarray:
    """Push x [ch, n] block by block; return what the stage output, with `latency` zeros in front (as played)."""
    out = [np.zeros((x.shape[0], stage.latency), dtype=np.float32)]
    out += [stage.push(x[:, start : start + BLOCK]) for start in range(0, x.shape[1], BLOCK)]
    return np.concatenate(out, axis=1)[:, : x.shape[1]]


def noise(seconds: float, amplitude: float = 0.25, seed: int = 0) -> np.ndarray:
    frames = int(seconds * RATE) // BLOCK * BLOCK
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, (1, frames)).astype(np.float32)


def test_the_latency_is_the_engines_and_an_impulse_arrives_exactly_there(identity_model_path):
    stage = stage_for(identity_model_path)
    assert stage.latency == BLOCK - 1  # the limiter's lookahead is the callback's (engine.realtime)
    impulse = np.zeros((1, 8 * BLOCK), dtype=np.float32)
    impulse[0, 300] = 0.5
    y = played(stage, impulse)
    assert np.flatnonzero(np.abs(y) > 0.1).tolist() == [300 + stage.latency]
    assert y[0, 300 + stage.latency] == 0.5


def test_the_stage_plays_an_offset_through_the_dc_blocker_is_the_callbacks(identity_model_path):
    x = noise(1.0) + 0.25  # an offset too: the DC blocker runs in the callback (engine.realtime), not here
    stage = stage_for(identity_model_path)
    np.testing.assert_array_equal(played(stage, x)[:, stage.latency :], x[:, : -stage.latency])


def loud_click(x: np.ndarray, at: int) -> np.ndarray:
    x = x.copy()
    x[0, at] = 2 * NAN_TRIGGER
    return x


@pytest.mark.parametrize("fallback", ["dry", "silence"])
def test_a_nan_block_is_replaced_by_the_fallback_counted_reported_once_and_the_model_reset(nan_model_path, fallback):
    bursts = []
    stage = stage_for(nan_model_path, fallback=fallback, on_nonfinite=bursts.append)
    click = 10 * BLOCK + 17
    x = loud_click(noise(0.5), click)
    y = played(stage, x)
    assert np.isfinite(y).all()
    assert stage.counters.nonfinite_blocks == 1  # reset at once: only the block with the click
    assert len(bursts) == 1 and bursts[0].reset and bursts[0].blocks == 1 and bursts[0].method == "forward"
    bad = slice(10 * BLOCK + stage.latency, 11 * BLOCK + stage.latency)  # where the NaN block would have played
    after = slice(bad.stop + FADE, x.shape[1])
    np.testing.assert_array_equal(y[:, after], x[:, after.start - stage.latency : after.stop - stage.latency])
    replaced = y[:, bad.start + FADE : bad.stop]
    if fallback == "dry":
        np.testing.assert_array_equal(replaced, x[:, bad.start + FADE - stage.latency : bad.stop - stage.latency])
    else:
        np.testing.assert_array_equal(replaced, 0.0)
    before = slice(stage.latency, bad.start)
    np.testing.assert_array_equal(y[:, before], x[:, : bad.start - stage.latency])


def test_a_model_without_reset_stays_replaced_and_is_reported_once_as_needing_a_reload(nan_model_without_reset_path):
    bursts = []
    stage = stage_for(nan_model_without_reset_path, on_nonfinite=bursts.append)
    x = loud_click(noise(0.5), 5 * BLOCK)
    y = played(stage, x)
    assert np.isfinite(y).all()
    blocks = x.shape[1] // BLOCK
    assert stage.counters.nonfinite_blocks == blocks - 5  # every block from the click on
    assert len(bursts) == 1 and not bursts[0].reset
    assert "reloading" in bursts[0].message("dry") and "the dry input" in bursts[0].message("dry")


def test_non_finite_input_is_zeroed_before_the_model_and_counted(identity_model_path):
    stage = stage_for(identity_model_path)
    x = noise(0.1)
    x[0, 100], x[0, 700], x[0, 701] = np.nan, np.inf, -np.inf
    y = played(stage, x)
    assert np.isfinite(y).all()
    assert stage.counters.nonfinite_inputs == 2  # two blocks held bad samples
    assert stage.counters.nonfinite_blocks == 0  # the model never saw them
    expected = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    np.testing.assert_array_equal(y[:, stage.latency :], expected[:, : -stage.latency])


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_an_input_gain_cannot_overflow_into_the_model(identity_model_path):
    stage = stage_for(identity_model_path)
    stage._store.set("gain/in", 24.0)
    x = np.full((1, 4 * BLOCK), 3e38, dtype=np.float32)  # finite, but not after +24 dB
    assert np.isfinite(played(stage, x)).all()
    assert stage.counters.nonfinite_blocks == 0


def test_a_model_poisoned_again_while_the_input_stays_loud_recovers_when_it_quietens(nan_model_path):
    bursts = []
    stage = stage_for(nan_model_path, on_nonfinite=bursts.append)
    x = noise(0.5)
    x[0, 5 * BLOCK : 9 * BLOCK : 50] = 2 * NAN_TRIGGER  # four loud blocks in a row
    y = played(stage, x)
    assert stage.counters.nonfinite_blocks == 4 and len(bursts) == 1
    after = slice(9 * BLOCK + stage.latency + FADE, x.shape[1])
    np.testing.assert_array_equal(y[:, after], x[:, after.start - stage.latency : after.stop - stage.latency])


@pytest.mark.parametrize("chunk", [1, 63, 65, 511])
def test_with_resampling_any_push_size_keeps_the_latency_exact(sr44100_model_path, chunk):
    model = NNModel.load(sr44100_model_path)  # 44.1 kHz model in a 48 kHz stream: soxr both ways, step 1
    controls = ModelControls.from_model(model)
    stage = OutputStage(StreamEngine(model, block=BLOCK, sample_rate=RATE), controls.store(), controls)
    assert stage.step == 1 and stage.latency == stage.engine.latency
    x = np.zeros((1, 12000), dtype=np.float32)
    x[0, 3000] = 0.5
    out = [stage.push(x[:, start : start + chunk]) for start in range(0, x.shape[1], chunk)]
    y = np.concatenate(out, axis=1)
    assert y.shape[1] >= x.shape[1] - stage.latency  # everything due is out
    assert int(np.argmax(np.abs(y))) == 3000  # output j is the response to input j, at any push size
