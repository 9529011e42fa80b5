"""Resample qualities for the engine's stream <-> model rate conversion: latency, cleanliness, cost.

    .venv/bin/python benchmarks/resample_quality.py [--stream-rate 48000] [--model-rate 44100]

For each choice `--resample-quality` offers (live, QQ LQ MQ HQ VHQ), and for
comparison two that it does not (soxr's minimum-phase recipes, reachable
only through python-soxr's private soxr_ext; libsamplerate's converters
when the `samplerate` package is importable), it streams sine tones through
the round trip the engine makes for a model at another rate (stream ->
model rate -> stream, the model being the identity), in chunks of 256
frames like audio periods, and prints:
- held in / held out: output frames each direction holds back (its
  `latency`; measured as the largest deficit over the run for the others)
  and `added`, the latency the round trip adds to a StreamEngine, in
  samples and ms at the stream rate;
- ripple18k / ripple20k: the worst gain deviation of tones from 20 Hz to
  18 kHz and to 20 kHz (the live target: 0.5 dB to 18 kHz);
- spurious: the largest component that is not the tone, over the tones to
  18 kHz, in dBc;
- alias: the output level of tones between the model's Nyquist and the
  stream's, which cannot exist at the model's rate (target <= -70 dB);
- us/s: the round trip's cost per second of mono audio, and the ratios of
  latency and cost against HQ (process's default), measured in this run.
"""

import argparse
import functools
import sys
import time

import numpy as np

from ravelive.dsp.resample import QUALITIES, QUALITY, ResampleStream

SECONDS = 0.5  # per tone
CHUNK = 256  # frames pushed at a time, like an audio period
PASSBAND_TONES = (20.0, 100.0, 1000.0, 5000.0, 10000.0, 14000.0, 16000.0, 18000.0, 19000.0, 20000.0)
SOXR_MINIMUM_PHASE = 0x30  # libsoxr's SOXR_MINIMUM_PHASE bits of a quality recipe


class Measured:
    """A resampler without a declared latency: its hold-back is the largest deficit seen."""

    def __init__(self, process, in_rate: int, out_rate: int) -> None:
        self._process, self._ratio = process, out_rate / in_rate
        self._fed = self._produced = 0
        self.latency = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        y = self._process(x)
        self._fed += x.shape[1]
        self._produced += y.shape[1]
        self.latency = max(self.latency, self._fed * self._ratio - self._produced)
        return y


def ours(in_rate: int, out_rate: int, quality: str) -> ResampleStream:
    return ResampleStream(in_rate, out_rate, 1, quality)


def soxr_minimum_phase(recipe: int):
    import soxr

    def make(in_rate: int, out_rate: int):
        try:
            inner = soxr.soxr_ext.CSoxr(in_rate, out_rate, 1, soxr.soxr_ext.SOXR_FLOAT32_I, recipe | SOXR_MINIMUM_PHASE,
                                        False)
        except TypeError:  # older python-soxr: no variable-rate argument
            inner = soxr.soxr_ext.CSoxr(in_rate, out_rate, 1, soxr.soxr_ext.SOXR_FLOAT32_I, recipe | SOXR_MINIMUM_PHASE)
        return Measured(lambda x: inner.process_float32(np.ascontiguousarray(x.T), False).T, in_rate, out_rate)

    return make


def libsamplerate(converter: str):
    import samplerate

    def make(in_rate: int, out_rate: int):
        inner = samplerate.Resampler(converter, 1)
        return Measured(lambda x: inner.process(x[0], out_rate / in_rate).astype(np.float32)[None], in_rate, out_rate)

    return make


def choices() -> dict[str, object]:
    """Name -> factory(in_rate, out_rate); ours first, then the ones shown for comparison only."""
    found = {quality: functools.partial(ours, quality=quality) for quality in QUALITIES}
    found["soxr HQ min-phase*"] = soxr_minimum_phase(4)
    found["soxr MQ min-phase*"] = soxr_minimum_phase(2)
    try:
        import samplerate  # noqa: F401 - optional: only for this comparison
    except ImportError:
        print("(samplerate not installed: libsamplerate's converters not compared)", file=sys.stderr)
    else:
        for converter in ("sinc_fastest", "sinc_medium", "sinc_best"):
            found[f"lsr {converter}*"] = libsamplerate(converter)
    return found


def round_trip(make, x: np.ndarray, stream_rate: int, model_rate: int) -> tuple[np.ndarray, float, float, float]:
    """(output, held in, held out, seconds spent) of x [1, n] pushed through both directions in chunks."""
    down, up = make(stream_rate, model_rate), make(model_rate, stream_rate)
    pieces = []
    started = time.perf_counter()
    for i in range(0, x.shape[1], CHUNK):
        middle = down.process(x[:, i : i + CHUNK])
        pieces.append(up.process(middle) if middle.shape[1] else middle)
    spent = time.perf_counter() - started
    return np.concatenate(pieces, axis=1)[0], down.latency, up.latency, spent


def analyse(y: np.ndarray, rate: int, frequency: float) -> tuple[float, float]:
    """(gain of the tone in dB, largest other component in dBc) of the settled middle of y."""
    settled = y[len(y) // 4 : len(y) // 4 + rate // 4]
    window = np.blackman(len(settled))
    spectrum = np.abs(np.fft.rfft(settled * window)) / (window.sum() / 2)
    bins = np.fft.rfftfreq(len(settled), 1 / rate)
    near = np.abs(bins - frequency) < 60.0  # the tone's main lobe (Blackman: 3 bins of 4 Hz either side) and then some
    tone = spectrum[near].max()
    other = spectrum[~near & (bins > 10.0)].max()
    return 20 * np.log10(tone), 20 * np.log10(other / tone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-rate", type=int, default=48000)
    parser.add_argument("--model-rate", type=int, default=44100)
    args = parser.parse_args()
    rate, model_rate = args.stream_rate, args.model_rate
    t = np.arange(int(SECONDS * rate)) / rate
    nyquist = min(rate, model_rate) / 2
    alias_tones = [nyquist + step * (max(rate, model_rate) / 2 - nyquist) / 4 for step in (1, 2, 3)]

    print(f"stream {rate} Hz <-> model {model_rate} Hz, tones of {SECONDS} s pushed in chunks of {CHUNK} "
          "(* = not offered, for comparison)")
    print(f"{'quality':>20} {'held in':>8} {'held out':>8} {'added':>6} {'ms':>6} {'ripple18k':>9} {'ripple20k':>9} "
          f"{'spurious':>8} {'alias':>6} {'us/s':>7} {'latency/HQ':>10} {'cost/HQ':>7}")
    rows = {}
    for name, make in choices().items():
        gains, spurs, held, spent, seconds = {}, [], [0.0, 0.0], 0.0, 0.0
        for frequency in PASSBAND_TONES:
            x = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None]
            y, held_in, held_out, took = round_trip(make, x, rate, model_rate)
            held = [max(held[0], held_in), max(held[1], held_out)]
            spent, seconds = spent + took, seconds + len(t) / rate
            gain, spur = analyse(y, rate, frequency)
            gains[frequency] = gain - 20 * np.log10(0.5)
            if frequency <= 18000:
                spurs.append(spur)
        alias = float("nan")
        if rate > model_rate:
            levels = []
            for frequency in alias_tones:
                y = round_trip(make, (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None], rate,
                               model_rate)[0]
                levels.append(20 * np.log10(np.abs(y[len(y) // 4 :]).max() / 0.5))
            alias = max(levels)
        added = held[0] * rate / model_rate + held[1]
        cost = 1e6 * spent / seconds
        ripple18 = max(abs(g) for f, g in gains.items() if f <= 18000)
        ripple20 = max(abs(g) for g in gains.values())
        rows[name] = (held, added, ripple18, ripple20, max(spurs), alias, cost)
    hq_added, hq_cost = rows[QUALITY][1], rows[QUALITY][-1]
    for name, (held, added, ripple18, ripple20, spur, alias, cost) in rows.items():
        print(f"{name:>20} {held[0]:>8.1f} {held[1]:>8.1f} {added:>6.0f} {1000 * added / rate:>6.2f} "
              f"{ripple18:>7.3f}dB {ripple20:>7.2f}dB {spur:>6.1f}dB {alias:>4.0f}dB {cost:>7.0f} "
              f"{added / hq_added:>10.3f} {cost / hq_cost:>7.2f}")


if __name__ == "__main__":
    main()
