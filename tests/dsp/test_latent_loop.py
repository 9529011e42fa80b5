"""The latent looper: record, close, play cycling, overdub; and through the engine and the store."""

import dataclasses

import numpy as np
import pytest

from ravelive.control.model_params import ModelControls
from ravelive.control.presets import PresetLibrary
from ravelive.dsp.latent import LatentTransform
from ravelive.dsp.latent_loop import LatentLooper, LoopControl
from ravelive.engine.stream import StreamEngine
from ravelive.errors import ParameterError
from ravelive.models.nn_model import NNModel

DIMS = 2
RECORD = LoopControl(record=True, frames=8)
PLAY = LoopControl(play=True, frames=8)
OFF = LoopControl(frames=8)


def frames(start: int, count: int) -> np.ndarray:
    """[DIMS, count] frames numbered start, start + 1 ... (dimension 1 is the negative)."""
    values = np.arange(start, start + count, dtype=np.float32)
    return np.stack([values, -values])


def run(looper: LatentLooper, control: LoopControl, start: int, count: int) -> np.ndarray:
    return looper(control, frames(start, count)).copy()


def test_a_recording_plays_back_from_its_start_cycling_in_place_of_the_live_latent():
    looper = LatentLooper(DIMS)
    assert np.array_equal(run(looper, RECORD, 0, 3), frames(0, 3))  # recording: the live latent plays
    run(looper, RECORD, 3, 2)
    run(looper, OFF, 100, 2)  # record off: a loop of frames 0..4
    assert looper.length == 5
    played = np.concatenate([run(looper, PLAY, 200, 3) for _ in range(4)], axis=1)
    assert played[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert np.array_equal(run(looper, OFF, 300, 2), frames(300, 2))  # stopped: live again
    assert run(looper, PLAY, 400, 2)[0].tolist() == [0, 1]  # play restarts from the loop's start


def test_a_full_buffer_closes_the_loop_and_record_held_on_does_not_start_another():
    looper = LatentLooper(DIMS)
    run(looper, RECORD, 0, 6)
    run(looper, RECORD, 6, 6)  # 12 frames offered, 8 fit
    assert looper.length == 8
    run(looper, RECORD, 50, 4)  # still held: nothing recorded over the loop
    assert run(looper, PLAY, 90, 9)[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    run(looper, OFF, 0, 1)
    run(looper, RECORD, 20, 2)  # a new press: a new loop
    run(looper, OFF, 0, 1)
    assert looper.length == 2 and run(looper, PLAY, 0, 3)[0].tolist() == [20, 21, 20]


def test_record_while_playing_overdubs_a_blend_that_stays_in_the_loop():
    looper = LatentLooper(DIMS)
    run(looper, RECORD, 0, 4)
    run(looper, OFF, 0, 1)
    overdub = LoopControl(record=True, play=True, overdub=0.25, frames=8)
    played = run(looper, overdub, 100, 4)
    np.testing.assert_allclose(played, 0.75 * frames(0, 4) + 0.25 * frames(100, 4))
    assert looper.length == 4  # an overdub keeps the loop's length
    np.testing.assert_allclose(run(looper, PLAY, 0, 4), played)  # restarted from the start: the blend stayed


def test_play_with_nothing_recorded_plays_live():
    assert np.array_equal(run(LatentLooper(DIMS), PLAY, 7, 3), frames(7, 3))


def test_through_the_engine_the_loop_feeds_decode_and_the_latent_edits_still_act(codec_model_path):
    model = NNModel.load(codec_model_path)
    engine = StreamEngine(model, block=64)  # ratio 64: one latent frame per block
    received = []
    engine.latent_sink = lambda z: received.append(z.copy())
    recording = np.random.default_rng(1).standard_normal((1, 64 * 6)).astype(np.float32)
    loop = LoopControl(record=True, frames=100)
    engine.latent = dataclasses.replace(engine.neutral_latent(), loop=loop)
    engine.push(recording)
    recorded = np.concatenate(received, axis=1)
    received.clear()
    engine.latent = dataclasses.replace(engine.neutral_latent().with_value("bias", 0, 1.0),
                                        loop=LoopControl(play=True, frames=100))
    engine.push(np.zeros((1, 64 * 6), dtype=np.float32))  # silence in: the loop plays
    played = np.concatenate(received, axis=1)
    np.testing.assert_allclose(played[1:], recorded[1:], atol=1e-6)
    np.testing.assert_allclose(played[0], recorded[0] + 1.0, atol=1e-6)


def test_the_store_declares_the_loop_in_seconds_and_presets_leave_its_transport_out(codec_model_path, tmp_path):
    model = NNModel.load(codec_model_path)
    controls = ModelControls.from_model(model)
    store = controls.store()
    store.update({"latent/loop/record": True, "latent/loop/seconds": 2.0, "latent/loop/overdub": 0.1})
    loop = store.snapshot().latent.loop
    assert loop == LoopControl(record=True, overdub=0.1, frames=2 * 48000 // 64)
    assert store.snapshot().latent.active
    library = PresetLibrary(tmp_path)
    library.save("take", store)
    saved = library.read("take")
    assert "latent/loop/record" not in saved and saved["latent/loop/seconds"] == 2.0
    with pytest.raises(ParameterError, match="out of range"):
        store.update({"latent/loop/seconds": 0.0})
    assert LatentTransform.identity(DIMS).loop == LoopControl()


def test_loop_points_select_the_span_that_cycles():
    looper = LatentLooper(DIMS)
    run(looper, RECORD, 0, 8)
    run(looper, OFF, 0, 1)
    points = dataclasses.replace(PLAY, start=0.25, end=0.75)  # frames 2..5 of 8
    assert run(looper, points, 0, 9)[0].tolist() == [2, 3, 4, 5, 2, 3, 4, 5, 2]
    narrowest = dataclasses.replace(PLAY, start=0.9, end=0.1)  # an end before the start: one frame
    assert run(looper, narrowest, 0, 3)[0].tolist() == [7, 7, 7]


def test_an_offered_sequence_becomes_the_loop_once_and_replaces_a_recording():
    looper = LatentLooper(DIMS)
    run(looper, RECORD, 0, 4)
    run(looper, OFF, 0, 1)
    piece = frames(50, 3)
    looper.offer(piece)
    looper.offer(piece)  # the engine offers it every block: loaded once, the cursor keeps going
    assert run(looper, PLAY, 0, 2)[0].tolist() == [50, 51]
    looper.offer(piece)
    assert run(looper, PLAY, 0, 2)[0].tolist() == [52, 50]
    piece[0, 0] = -1  # the loop is a copy
    assert run(looper, PLAY, 0, 1)[0].tolist() == [51]
