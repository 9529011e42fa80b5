"""soxr qualities for the engine's stream <-> model rate conversion: latency against cleanliness.

    .venv/bin/python benchmarks/resample_quality.py [--stream-rate 48000] [--model-rate 44100]

For each soxr recipe (QQ LQ MQ HQ VHQ) it streams sine tones through the
round trip the engine makes for a model at another rate (stream -> model
rate -> stream, the model being the identity) and prints:
- the hold-back of each direction (`ResampleStream.latency`, frames) and
  the latency the round trip adds to a StreamEngine, in samples and ms;
- passband: the gain of tones from 20 Hz to 20 kHz, worst deviation in dB
  up to 16 kHz and up to 20 kHz (music needs about +-0.1 dB to 16 kHz);
- spurious: the largest component that is not the tone (aliases, images,
  filter ringing) relative to the tone, over the tones, in dBc;
- alias rejection: the output level of tones between the model's Nyquist
  and the stream's (they must vanish at the model's rate), in dB.
Every number is measured in this run; the ratio printed is each quality's
added latency against HQ's (the engine's default).
"""

import argparse

import numpy as np

from ravelive.dsp.resample import QUALITIES, QUALITY, ResampleStream

SECONDS = 0.5  # per tone
CHUNK = 256  # frames pushed at a time, like an audio period
PASSBAND_TONES = (20.0, 100.0, 1000.0, 5000.0, 10000.0, 14000.0, 16000.0, 18000.0, 19000.0, 20000.0)


def round_trip(x: np.ndarray, stream_rate: int, model_rate: int, quality: str) -> np.ndarray:
    down = ResampleStream(stream_rate, model_rate, 1, quality)
    up = ResampleStream(model_rate, stream_rate, 1, quality)
    pieces = [up.process(down.process(x[:, i : i + CHUNK])) for i in range(0, x.shape[1], CHUNK)]
    return np.concatenate(pieces, axis=1)[0]


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

    print(f"stream {rate} Hz <-> model {model_rate} Hz, tones of {SECONDS} s pushed in chunks of {CHUNK}")
    print(f"{'quality':>7} {'held in':>8} {'held out':>9} {'added':>7} {'ms':>6} {'ripple16k':>10} "
          f"{'ripple20k':>10} {'spurious':>9} {'alias':>7} {'vs ' + QUALITY:>7}")
    rows = {}
    for quality in QUALITIES:
        held_in = ResampleStream(rate, model_rate, 1, quality).latency
        held_out = ResampleStream(model_rate, rate, 1, quality).latency
        added = held_in * rate / model_rate + held_out
        gains, spurs = {}, []
        for frequency in PASSBAND_TONES:
            x = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None]
            gain, spur = analyse(round_trip(x, rate, model_rate, quality), rate, frequency)
            gains[frequency] = gain - 20 * np.log10(0.5)
            spurs.append(spur)
        alias = max(
            20 * np.log10(np.abs(round_trip((0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)[None], rate,
                                            model_rate, quality)[len(t) // 4 :]).max() / 0.5)
            for f in alias_tones
        ) if rate > model_rate else float("nan")
        ripple16 = max(abs(g) for f, g in gains.items() if f <= 16000)
        ripple20 = max(abs(g) for g in gains.values())
        rows[quality] = added
        print(f"{quality:>7} {held_in:>8.1f} {held_out:>9.1f} {added:>7.0f} {1000 * added / rate:>6.1f} "
              f"{ripple16:>9.3f}dB {ripple20:>9.2f}dB {max(spurs):>7.1f}dB {alias:>5.0f}dB "
              f"{added / rows.get(QUALITY, added) if QUALITY in rows else float('nan'):>7.3f}")
    print("(vs HQ is printed once HQ has been measured: added latency / HQ's)")
    for quality in QUALITIES:
        print(f"{quality}: adds {rows[quality]:.0f} samples, {rows[quality] / rows[QUALITY]:.3f} x HQ")


if __name__ == "__main__":
    main()
