"""A deterministic synthetic corpus: the training material of the bundled default model, regenerable from a seed.

    audio = synthesise(seconds=60, seed=0)          # float32 [n] at 48 kHz, the same for the same seed

A sequence of short events, each drawn from the seed, with a little
silence or overlap between them: pitched tones (harmonics rolling off, an
attack-decay-release envelope, some vibrato), chords of such tones, noise
bursts through a random band, and exponential sweeps. Enough variety for a
small autoencoder to learn pitch, timbre, transients and noise, and for a
held-out check: another seed draws other events from the same families.
Only numpy: no file, no tool, the same samples on every machine.
"""

import numpy as np

SAMPLE_RATE = 48000  # Hz, the default model's rate
EVENT_KINDS = ("tone", "chord", "noise", "sweep")
KIND_WEIGHTS = (0.35, 0.25, 0.2, 0.2)  # chances of each kind per event


def synthesise(seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`seconds` of events drawn from `seed`: float32 mono, peaks below 1."""
    rng = np.random.default_rng(seed)
    total = int(seconds * sample_rate)
    out = np.zeros(total + 3 * sample_rate, dtype=np.float64)  # room for the last event's tail
    at = 0
    while at < total:
        kind = EVENT_KINDS[rng.choice(len(EVENT_KINDS), p=KIND_WEIGHTS)]
        length = int(rng.uniform(0.25, 2.0) * sample_rate)
        event = _EVENTS[kind](rng, length, sample_rate)
        event *= rng.uniform(0.1, 0.8) / (np.abs(event).max() + 1e-9)  # loud and quiet events
        out[at : at + length] += event
        at += int(length * rng.uniform(0.6, 1.3))  # a little overlap or a little silence
    out = out[:total]
    peak = np.abs(out).max()
    if peak > 0.95:
        out *= 0.95 / peak
    return out.astype(np.float32)


def _envelope(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """Linear attack, exponential decay to a sustain level, linear release at the end."""
    t = np.arange(length) / sample_rate
    attack = rng.uniform(0.002, 0.15)
    release = min(rng.uniform(0.02, 0.4), 0.5 * length / sample_rate)
    sustain = rng.uniform(0.2, 1.0)
    decay = sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / rng.uniform(0.05, 0.6))
    rise = np.minimum(t / attack, 1.0)
    fall = np.clip((length / sample_rate - t) / release, 0.0, 1.0)
    return rise * decay * fall


def _harmonic(rng: np.random.Generator, frequency: np.ndarray, sample_rate: int) -> np.ndarray:
    """Harmonics of the instantaneous `frequency` (Hz per sample) up to Nyquist, amplitudes 1 / k**rolloff."""
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    rolloff = rng.uniform(0.7, 2.5)
    odd_only = rng.random() < 0.25  # clarinet-like
    out = np.zeros_like(phase)
    for k in range(1, 40):
        if frequency.max() * k >= 0.45 * sample_rate:
            break
        if odd_only and k % 2 == 0:
            continue
        out += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**rolloff
    return out


def _pitch(rng: np.random.Generator, length: int, sample_rate: int, base: float) -> np.ndarray:
    """A steady pitch `base` Hz with a random vibrato (often none)."""
    t = np.arange(length) / sample_rate
    depth = rng.uniform(0, 0.02) if rng.random() < 0.5 else 0.0
    return base * (1 + depth * np.sin(2 * np.pi * rng.uniform(3, 7) * t))


def _tone(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    base = float(np.exp(rng.uniform(np.log(55), np.log(1200))))
    return _harmonic(rng, _pitch(rng, length, sample_rate, base), sample_rate) * _envelope(rng, length, sample_rate)


def _chord(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    root = float(np.exp(rng.uniform(np.log(80), np.log(600))))
    intervals = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 5, 9), (0, 7, 12)][rng.integers(5)]
    envelope = _envelope(rng, length, sample_rate)
    notes = (_harmonic(rng, _pitch(rng, length, sample_rate, root * 2 ** (i / 12)), sample_rate) for i in intervals)
    return sum(notes) * envelope


def _noise(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """White noise through a random band (in the spectrum), with a percussive or a sustained envelope."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1 / sample_rate)
    low = float(np.exp(rng.uniform(np.log(40), np.log(6000))))
    high = min(low * np.exp(rng.uniform(0.5, 4.0)), 0.48 * sample_rate)
    spectrum *= (frequencies >= low) & (frequencies <= high)
    burst = np.fft.irfft(spectrum, length)
    if rng.random() < 0.6:  # a hit: sharp attack, fast decay
        return burst * np.exp(-np.arange(length) / (sample_rate * rng.uniform(0.01, 0.3)))
    return burst * _envelope(rng, length, sample_rate)


def _sweep(rng: np.random.Generator, length: int, sample_rate: int) -> np.ndarray:
    """An exponential glide between two pitches, up or down."""
    start, end = np.exp(rng.uniform(np.log(60), np.log(2000), size=2))
    frequency = start * (end / start) ** np.linspace(0, 1, length)
    return _harmonic(rng, frequency, sample_rate) * _envelope(rng, length, sample_rate)


_EVENTS = {"tone": _tone, "chord": _chord, "noise": _noise, "sweep": _sweep}
