"""A streamable PQMF: split audio into `bands` critically sampled sub-bands and back.

RAVE runs its networks on 16 sub-bands at 1/16 of the audio rate: the same
receptive field for a sixteenth of the frames. The split is a pseudo-QMF
bank (Nguyen's cosine-modulated design, as RAVE's): one Kaiser-windowed
lowpass prototype `h` whose cutoff is tuned so that `h * reversed(h)` is
nearly zero at every multiple of 2 * bands except the centre; modulating it
by cosines gives the analysis and synthesis filters, and aliasing between
neighbouring bands cancels. Reconstruction is near perfect, not perfect: the
measured error is in tests/dsp/test_pqmf.py.

Both halves are cached convolutions of `ravelive.dsp.cached_conv`, so they
follow its contract (offline or streaming by constructor argument, `delay`,
`input_delay`, `up` / `down`, `block_multiple`, `reset()`, state in buffers):

- `PQMFAnalysis`: audio [b, 1, n] -> bands [b, bands, n / bands], one strided
  conv centred on each band frame (linear phase: offline, band frame t is
  centred on sample t * bands);
- `PQMFSynthesis`: bands -> audio, polyphase: one stride-1 conv at the band
  rate gives each of the `bands` output phases, which are interleaved.

Offline, synthesis(analysis(x)) is x itself (to the reconstruction error),
not shifted. Streaming, each half's look-ahead becomes delay: `PQMF.delay`
samples in all, computed from the filter length. The filters are fixed
(`requires_grad` off): training never moves them.
"""

import math

import numpy as np
import torch
from torch import nn

from ravelive.dsp.cached_conv import DEFAULT_MAX_BATCH, CachedConv1d
from ravelive.errors import ConfigError

DEFAULT_BANDS = 16  # RAVE v2's split: 48 kHz audio becomes 16 bands of 3 kHz
DEFAULT_ATTENUATION_DB = 100.0  # stopband of the prototype (RAVE's PQMF default)
_SEARCH_STEPS = 200  # cutoff candidates per refinement round of the prototype design
_SEARCH_ROUNDS = 4


def prototype(bands: int, attenuation_db: float = DEFAULT_ATTENUATION_DB) -> np.ndarray:
    """Odd-length, symmetric lowpass prototype for a `bands`-band pseudo-QMF bank."""
    beta = 0.1102 * (attenuation_db - 8.7)  # Kaiser's window shape for this stopband
    transition = math.pi / (2 * bands)  # passband edge to stopband edge (pi / bands), rad/sample
    taps = math.ceil((attenuation_db - 7.95) / (2.285 * transition)) + 1
    taps += 1 - taps % 2  # odd: the centre is a whole sample
    centre = (taps - 1) // 2
    offsets = np.arange(taps) - centre
    window = np.kaiser(taps, beta)

    def lowpass(cutoff: float) -> np.ndarray:  # cutoff in cycles per sample
        return 2 * cutoff * np.sinc(2 * cutoff * offsets) * window

    def leakage(cutoff: float) -> float:
        # Nguyen's criterion: h convolved with its mirror vanishes at nonzero multiples of 2 * bands
        h = lowpass(cutoff)
        g = np.convolve(h, h[::-1])
        return float(np.abs(g[centre * 2 :: 2 * bands][1:]).max())

    low, high = 0.5 / (4 * bands), 1.5 / (4 * bands)  # around the ideal 1 / (4 * bands)
    for _ in range(_SEARCH_ROUNDS):
        candidates = np.linspace(low, high, _SEARCH_STEPS)
        best = candidates[int(np.argmin([leakage(c) for c in candidates]))]
        step = (high - low) / (_SEARCH_STEPS - 1)
        low, high = best - step, best + step
    return lowpass(best)


def filter_bank(bands: int, attenuation_db: float = DEFAULT_ATTENUATION_DB) -> tuple[np.ndarray, np.ndarray]:
    """(analysis, synthesis) filters, each [bands, taps], cosine-modulated from `prototype`."""
    h = prototype(bands, attenuation_db)
    taps = h.shape[0]
    k = np.arange(bands)[:, None]
    n = np.arange(taps)[None, :] - (taps - 1) / 2
    phase = (-1.0) ** k * math.pi / 4
    carrier = (2 * k + 1) * math.pi / (2 * bands) * n
    return 2 * h * np.cos(carrier + phase), 2 * h * np.cos(carrier - phase)


def _check_bands(bands: int) -> None:
    if not isinstance(bands, int) or bands < 2:
        raise ConfigError(f"PQMF bands = {bands!r}: expected an integer >= 2 (RAVE uses 16)")


class PQMFAnalysis(nn.Module):
    """Audio [b, 1, n] -> sub-bands [b, bands, n / bands]; cached-conv contract (`input_delay` in samples)."""

    def __init__(
        self,
        bands: int = DEFAULT_BANDS,
        *,
        attenuation_db: float = DEFAULT_ATTENUATION_DB,
        streaming: bool = False,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        _check_bands(bands)
        analysis, _ = filter_bank(bands, attenuation_db)
        taps = analysis.shape[1]
        self.conv = CachedConv1d(
            1, bands, taps, stride=bands, bias=False, causal=False,
            streaming=streaming, input_delay=input_delay, max_batch=max_batch,
        )
        with torch.no_grad():  # conv1d correlates: reverse the filters to convolve
            self.conv.conv.weight.copy_(torch.from_numpy(analysis[:, None, ::-1].copy()))
        self.conv.conv.weight.requires_grad_(False)
        self.bands = bands
        self.input_delay = input_delay
        self.delay = self.conv.delay  # band frames
        self.up, self.down, self.block_multiple = 1, bands, bands

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


class PQMFSynthesis(nn.Module):
    """Sub-bands [b, bands, m] -> audio [b, 1, m * bands]; `input_delay` in band frames, `delay` in samples."""

    bands: torch.jit.Final[int]

    def __init__(
        self,
        bands: int = DEFAULT_BANDS,
        *,
        attenuation_db: float = DEFAULT_ATTENUATION_DB,
        streaming: bool = False,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        _check_bands(bands)
        _, synthesis = filter_bank(bands, attenuation_db)
        taps = synthesis.shape[1]
        # Output sample s * bands + p sums band frames s - j + ahead weighted by filter tap
        # (j - ahead) * bands + p + centre. Padding the filters so that `centre + lead` is `ahead`
        # whole frames and the length is 2 * ahead + 1 frames centres that on a stride-1 conv
        # whose kernel looks exactly `ahead` frames forward, as CachedConv1d's centred kernels do.
        centre = (taps - 1) // 2
        ahead = -(-centre // bands)
        lead = ahead * bands - centre
        frames = 2 * ahead + 1
        padded = np.zeros((bands, frames * bands))
        padded[:, lead : lead + taps] = synthesis * bands  # x bands: the energy decimation removed
        phases = padded.reshape(bands, frames, bands)  # [band k, frame j, phase p]
        weight = phases.transpose(2, 0, 1)[:, :, ::-1]  # [phase p, band k, kernel index], correlation order
        self.conv = CachedConv1d(
            bands, bands, frames, bias=False, causal=False,
            streaming=streaming, input_delay=input_delay, max_batch=max_batch,
        )
        with torch.no_grad():
            self.conv.conv.weight.copy_(torch.from_numpy(weight.copy()))
        self.conv.conv.weight.requires_grad_(False)
        self.bands = bands
        self.input_delay = input_delay
        self.delay = self.conv.delay * bands  # samples
        self.up, self.down, self.block_multiple = bands, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.conv(x)  # [b, phase, frame]
        return phases.transpose(1, 2).reshape(x.shape[0], 1, -1)

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


class PQMF(nn.Module):
    """Analysis (`forward`) and synthesis (`inverse`) of one bank; `delay` is the round trip's, in samples."""

    def __init__(
        self,
        bands: int = DEFAULT_BANDS,
        *,
        attenuation_db: float = DEFAULT_ATTENUATION_DB,
        streaming: bool = False,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        common = dict(attenuation_db=attenuation_db, streaming=streaming, max_batch=max_batch)
        self.analysis = PQMFAnalysis(bands, **common)
        self.synthesis = PQMFSynthesis(bands, input_delay=self.analysis.delay, **common)
        self.bands = bands
        self.input_delay = 0
        self.delay = self.synthesis.delay
        self.up, self.down, self.block_multiple = 1, 1, bands

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Audio [b, 1, n] (n a multiple of `bands`) -> bands [b, bands, n / bands]."""
        return self.analysis(x)

    @torch.jit.export
    def inverse(self, bands: torch.Tensor) -> torch.Tensor:
        """Bands [b, bands, m] -> audio [b, 1, m * bands]."""
        return self.synthesis(bands)

    @torch.jit.export
    def reset(self) -> None:
        self.analysis.reset()
        self.synthesis.reset()
