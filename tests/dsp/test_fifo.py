import numpy as np
import pytest

from ravelive.dsp.fifo import AudioFifo


def test_frames_come_out_in_order_across_the_wrap():
    rng = np.random.default_rng(0)
    fifo = AudioFifo(2, 7)
    signal = rng.standard_normal((2, 200)).astype(np.float32)
    written, collected = 0, []
    for size in rng.integers(1, 8, size=200):
        take = min(int(size), fifo.space, signal.shape[1] - written)
        fifo.write(signal[:, written : written + take])
        written += take
        collected.append(fifo.read(int(rng.integers(0, fifo.available + 1))))
    collected.append(fifo.read(fifo.available))
    np.testing.assert_array_equal(np.concatenate(collected, axis=1), signal[:, :written])


def test_read_into_a_given_buffer_fills_it_in_place():
    fifo = AudioFifo(1, 4)
    fifo.write(np.arange(3, dtype=np.float32)[None])
    out = np.full((1, 3), -1.0, dtype=np.float32)
    result = fifo.read(3, out=out)
    assert result is out
    np.testing.assert_array_equal(out, [[0.0, 1.0, 2.0]])


def test_reserve_grows_and_keeps_the_content_in_order():
    fifo = AudioFifo(1, 4)
    fifo.write(np.array([[1, 2, 3]], dtype=np.float32))
    fifo.read(2)
    fifo.write(np.array([[4, 5, 6]], dtype=np.float32))  # wraps
    fifo.reserve(10)
    assert fifo.capacity >= 10
    fifo.write(np.array([[7, 8, 9, 10, 11, 12]], dtype=np.float32))
    np.testing.assert_array_equal(fifo.read(fifo.available), [[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]])


def test_overflow_is_refused():
    fifo = AudioFifo(1, 4)
    with pytest.raises(ValueError, match="overflow: 5 frames written, 4 free"):
        fifo.write(np.zeros((1, 5), dtype=np.float32))


def test_underflow_is_refused():
    fifo = AudioFifo(1, 4)
    fifo.write(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="underflow: 3 frames read, 2 held"):
        fifo.read(3)


def test_clear_empties_without_changing_capacity():
    fifo = AudioFifo(2, 8)
    fifo.write(np.ones((2, 5), dtype=np.float32))
    fifo.clear()
    assert (fifo.available, fifo.space, fifo.capacity) == (0, 8, 8)
