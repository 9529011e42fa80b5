"""StreamEngine: the one code path from stream audio to model blocks and back.

Offline processing, benchmarks and the realtime worker all push audio
through a StreamEngine. Per push, in order:

    stream [channels, n] at the stream rate
      -> to the model's rate (only when the rates differ; dsp.resample)
      -> whole model blocks of `block` samples (a partial block waits)
      -> per block: channel/rate adaptation, one model call (or encode ->
         latent transform -> decode), adaptation to the output channels
      -> back to the stream rate (only when the rates differ)
      -> every output sample that became available, [output_channels, m]

With a `prior` (a `ravelive export-prior` file for this model, or the
model itself when its own `prior` is a trained one), a block
whose LatentTransform says `prior.play` takes its latent frames from the
prior's method `prior` (the temperature held over the block) instead of
from `encode`, on the same thread as the model; the latent edits and the
loop act on them as on the encoder's, and the encoder rests meanwhile (so
the first block back from the prior hears a stale cache, as after a swap).
A descriptor-conditioned model's decode also takes its descriptors: the
LatentTransform's knobs, or the input's own (engine/descriptor_follow.py).

The model only ever sees consecutive, non-overlapping full blocks, so its
own streaming state (cached convolutions) stays valid. The buffers
(partial block, input tensors) are allocated once; per push the output
array is allocated, and per block the model call allocates its own.

Defaults: `block` is the smallest multiple of every ratio of the methods in
use that is at least BLOCK_FLOOR samples (RAVE v2: 2048, v2_small: 512, a
ratio-1 effect: 256); `channels` is the method's input count and
`output_channels` the input stream's count for an audio effect, the method's
own output count when either side runs at control rate (encode writes one
channel per latent dimension, decode reads one per dimension).

`latency` is exact: `FixedLatency(engine)` outputs as many samples as it
receives, and its output is the engine's output delayed by `latency`
stream samples. Without resampling it is `block - 1` (a sample that
completes a block comes straight back; the first sample of a block waits
for the other block - 1). With resampling both resamplers' hold-backs are
added, the input one converted from model-rate to stream-rate samples
(every `resample_quality` is time-aligned and linear phase, so this is
exact for an impulse and for every in-band frequency alike).

The per-block work runs right after the model call has evicted Python's
working set from the CPU caches, so it is kept to a few calls (see
benchmarks/overhead.py); callers pushing small chunks in a loop should hold
`torch.inference_mode()` around the loop, as the realtime worker does.
"""

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from ravelive.dsp.channels import InputAdapter, OutputAdapter
from ravelive.engine.descriptor_follow import DescriptorFollower
from ravelive.dsp.fifo import AudioFifo
from ravelive.dsp.latent import LatentProcessor, LatentTransform
from ravelive.dsp.resample import QUALITY, ResampleStream
from ravelive.errors import ConfigError, ParameterError
from ravelive.models.nn_model import NNModel

logger = logging.getLogger(__name__)

LATENT_METHODS = ("encode", "decode")  # the latent path runs encode -> transform -> decode in place of forward
PRIOR_METHOD = "prior"  # a prior file's method (ravelive export-prior), or a model's: temperature in, latents out
BLOCK_FLOOR = 256  # default block is at least this: 5.3 ms at 48 kHz, per-call overhead ~1% (docs/architecture.md)
_READY_FRAMES = 16384  # initial capacity of FixedLatency's FIFO; it grows once if a push needs more

LatentSink = Callable[[np.ndarray], None]  # receives latent frames [dims, frames]; must not block


class StreamEngine:
    """Runs one model method on a stream in fixed model blocks; see the module docstring.

    `latent_sink`, when set, is called on the pushing thread with every block's
    latent frames, float32 [dims, frames] (valid during the call: copy to keep): the
    transformed latent of the latent path, or the output of method `encode`.
    While a sink is set, `forward` runs as encode -> transform -> decode even
    with no transform active (the same output for RAVE-style models, whose
    forward is decode(encode(x))). The sink must not block: it runs between
    model blocks. `latent_clip`, when a control thread sets it (a whole
    float32 [dims, n] sequence, replaced whole), becomes the latent loop's
    content at the next latent block (dsp/latent_loop.py's `offer`).
    """

    def __init__(
        self,
        model: NNModel,
        method: str | None = None,
        block: int | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        output_channels: int | None = None,
        resample_quality: str = QUALITY,
        prior: NNModel | None = None,
    ) -> None:
        model.require_streaming()
        self.model = model
        self.method = _choose_method(model, method)
        self.latent_dims = _latent_dims(model, self.method)
        methods = [self.method, *LATENT_METHODS] if self.latent_dims else [self.method]
        self.block = _choose_block(model, methods, block)
        self.sample_rate = sample_rate or model.sample_rate
        self.model_rate = model.sample_rate or self.sample_rate
        spec = model.methods[self.method]
        self.channels = _check_channels("channels", spec.in_channels if channels is None else channels)
        if output_channels is None:
            output_channels = self.channels if spec.in_ratio == spec.out_ratio == 1 else spec.out_channels
        self.output_channels = _check_channels("output_channels", output_channels)
        self.latent_sink: LatentSink | None = None
        self.latent_clip: np.ndarray | None = None  # a latent sequence [dims, n] for the loop (replaced whole)

        self._inputs = InputAdapter(spec, self.channels, self.block)
        self._outputs = OutputAdapter(spec, self.output_channels, self.block)
        self._latent: LatentTransform | None = None
        self._latent_running = False  # whether the previous block ran the latent path
        if self.latent_dims:
            self._encode_inputs = InputAdapter(model.methods["encode"], self.channels, self.block)
            self._decode_outputs = OutputAdapter(model.methods["decode"], self.output_channels, self.block)
            self._latent_processor = LatentProcessor(self.latent_dims)
            self._latent = LatentTransform.identity(self.latent_dims)
        # a descriptor-conditioned model's decode inputs after the latent (descriptor_follow.py)
        self._descriptors = DescriptorFollower(model) if self.latent_dims and model.descriptors else None
        self.prior = self._check_prior(prior)
        if self.prior is not None:
            frames = self.block // self.prior.methods[PRIOR_METHOD].in_ratio
            self._temperature = torch.zeros(1, 1, frames)  # the prior's input, refilled per block

        self._to_model, self._from_model = self._resamplers(resample_quality)
        self._pending = np.zeros((self.channels, self.block), dtype=np.float32)  # a block being filled
        self._filled = 0  # samples of self._pending filled so far
        self.blocks_run = 0  # model blocks computed so far (the warm-up times each one)
        self._nothing = np.zeros((self.output_channels, 0), dtype=np.float32)  # a push that completes no block
        self.latency = self._compute_latency()
        logger.info(
            "engine: %s, block %d at %s Hz, stream %s Hz x %d -> %d channels, latency %d samples",
            " -> ".join(methods) if self.latent_dims else self.method, self.block, self.model_rate,
            self.sample_rate, self.channels, self.output_channels, self.latency,
        )

    # ---- latent transform (replaced whole by control threads, read once per block) ----

    @property
    def latent(self) -> LatentTransform | None:
        """The current LatentTransform, or None when the method has no encode/decode latent path."""
        return self._latent

    @latent.setter
    def latent(self, transform: LatentTransform) -> None:
        self.neutral_latent()
        if transform.dims != self.latent_dims:
            raise ParameterError(
                f"latent transform has {transform.dims} dimensions, the model's latent has {self.latent_dims}; "
                f"build it with LatentTransform.identity({self.latent_dims})"
            )
        self._latent = transform

    def neutral_latent(self) -> LatentTransform:
        """The transform that changes nothing, to edit from; ParameterError when there is no latent path."""
        if not self.latent_dims:
            raise ParameterError(
                f"method '{self.method}' has no latent path; latent transforms need a model with "
                f"forward, encode and decode, run with method 'forward'"
            )
        return LatentTransform.identity(self.latent_dims)

    # ---- streaming ----

    def push(self, x: np.ndarray) -> np.ndarray:
        """Feed x [channels, n] at the stream rate; return every output sample now available, [output_channels, m]."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"push takes audio [{self.channels}, n], got shape {list(x.shape)}")
        if self._to_model is not None:
            x = self._to_model.process(x)
        if torch.is_inference_mode_enabled():
            y = self._run_blocks(x)
        else:
            with torch.inference_mode():
                y = self._run_blocks(x)
        return y if self._from_model is None else self._from_model.process(y)

    def frames_wanted(self) -> int:
        """Stream frames to push before the next model block runs: a push of fewer returns no output
        (at least 1; with a soxr converter, whose release points are not known, always 1)."""
        missing = self.block - self._filled
        return missing if self._to_model is None else self._to_model.inputs_for(missing)

    def _run_blocks(self, x: np.ndarray) -> np.ndarray:
        """Model-rate audio in -> the output of every block it completes, [output_channels, blocks * block]."""
        block, filled, frames = self.block, self._filled, x.shape[1]
        blocks = (filled + frames) // block
        if blocks == 0:
            self._pending[:, filled : filled + frames] = x
            self._filled = filled + frames
            return self._nothing
        y = np.empty((self.output_channels, blocks * block), dtype=np.float32)
        start = 0  # where the next whole block starts in x
        if filled:
            start = block - filled
            self._pending[:, filled:] = x[:, :start]
            self._run_block(self._pending, y[:, :block])
        elif frames == block:  # the live case: one push, one block, no slicing
            self._run_block(x, y)
            return y
        for index in range(1 if filled else 0, blocks):
            self._run_block(x[:, start : start + block], y[:, index * block : (index + 1) * block])
            start += block
        self._filled = frames - start
        if self._filled:
            self._pending[:, : self._filled] = x[:, start:]
        return y

    def _run_block(self, audio: np.ndarray, out: np.ndarray) -> None:
        self.blocks_run += 1
        transform, sink = self._latent, self.latent_sink  # one snapshot of each per block (other threads set them)
        if transform is not None and (transform.active or sink is not None):
            self._run_latent_block(transform, sink, audio, out)
            return
        y = self.model(self.method, self._inputs(audio))
        self._outputs(y, out)
        self._latent_running = False
        if sink is not None and self.method == "encode":
            sink(y.numpy()[0])

    def _run_latent_block(self, transform: LatentTransform, sink: LatentSink | None, audio: np.ndarray,
                          out: np.ndarray) -> None:
        if transform.prior.play and self.prior is not None:  # the encoder rests: its input is not heard
            self._temperature.fill_(transform.prior.temperature)
            z = self.prior(PRIOR_METHOD, self._temperature)
        else:
            z = self.model("encode", self._encode_inputs(audio))
        if transform.active:
            self._latent_processor.looper.offer(self.latent_clip)
            if not self._latent_running:  # blocks ran without a transform in between: freeze starts here
                self._latent_processor.forget_held()
                self._latent_running = True
            z = self._latent_processor(transform, z)
        else:  # only the sink wants the latent: no transform work, as in a forward block
            self._latent_running = False
        if sink is not None:
            sink(z.numpy()[0])
        if self._descriptors is not None:  # a conditioned model: its knobs, or the input's own descriptors
            z = torch.cat([z, self._descriptors(self._encode_inputs(audio), transform.descriptors)], 1)
        self._decode_outputs(self.model("decode", z), out)

    # ---- set-up ----

    def _check_prior(self, prior: NNModel | None) -> NNModel | None:
        """The prior when it plays into this engine's latent path; ConfigError when its frames do not fit it."""
        if prior is None:
            return None
        if not self.latent_dims:
            logger.info("method %s has no latent path: the prior %s rests", self.method, prior.path.name)
            return None
        spec = prior.methods.get(PRIOR_METHOD)
        decode = self.model.methods["decode"]
        found = (spec.in_channels, spec.out_channels, spec.in_ratio, spec.out_ratio) if spec else None
        if found != (1, self.latent_dims, decode.in_ratio, decode.in_ratio) or prior.sample_rate != self.model_rate:
            raise ConfigError(
                f"{prior.path.name}: method '{PRIOR_METHOD}' {list(spec.params) if spec else 'missing'} at "
                f"{prior.sample_rate} Hz does not feed {self.model.path.name}'s decode ({self.latent_dims} latents "
                f"at ratio {decode.in_ratio}, {self.model_rate} Hz): export a prior trained on this model's latents"
            )
        return prior

    def warm_prior(self, calls: int = 3) -> None:
        """Call the prior a few times and reset it: TorchScript optimises on the first calls, not on the worker."""
        if self.prior is None:
            return
        with torch.inference_mode():
            for _ in range(calls):
                self.prior(PRIOR_METHOD, self._temperature)
        self.prior.reset_state()

    def _resamplers(self, quality: str) -> tuple[ResampleStream | None, ResampleStream | None]:
        if self.sample_rate is None or self.model.sample_rate is None or self.sample_rate == self.model.sample_rate:
            if self.sample_rate is None:
                logger.info("neither the stream nor the model names a sample rate: no conversion")
            return None, None
        logger.info("converting %d Hz <-> %d Hz (the model's rate), resample quality %s", self.sample_rate,
                    self.model_rate, quality)
        return (
            ResampleStream(self.sample_rate, self.model_rate, self.channels, quality),
            ResampleStream(self.model_rate, self.sample_rate, self.output_channels, quality),
        )

    def _compute_latency(self) -> int:
        if self._to_model is None:
            return self.block - 1
        model_frames = self._to_model.latency + self.block - 1
        return math.ceil(model_frames * self.sample_rate / self.model_rate + self._from_model.latency)


class FixedLatency:
    """A stream with as many samples out as in: the engine's output delayed by `latency` (zeros first)."""

    def __init__(self, engine: StreamEngine) -> None:
        self.engine = engine
        self.latency = engine.latency
        self._zeros_owed = engine.latency
        self._ready = AudioFifo(engine.output_channels, _READY_FRAMES)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed x [channels, n]; return exactly n samples, [output_channels, n]."""
        produced = self.engine.push(x)
        self._ready.reserve(self._ready.available + produced.shape[1])
        self._ready.write(produced)
        frames = x.shape[1]
        out = np.empty((self.engine.output_channels, frames), dtype=np.float32)
        zeros = min(self._zeros_owed, frames)
        out[:, :zeros] = 0.0
        self._zeros_owed -= zeros
        if self._ready.available < frames - zeros:
            raise RuntimeError(
                f"the engine delivered {self._ready.available} of {frames - zeros} samples due at latency "
                f"{self.latency}: its latency computation is wrong"
            )
        self._ready.read(frames - zeros, out=out[:, zeros:])
        return out


def _choose_method(model: NNModel, method: str | None) -> str:
    if method is None:
        return "forward" if "forward" in model.methods else next(iter(model.methods))
    if method not in model.methods:
        raise ConfigError(f"method '{method}' is not in {model.path.name}; choose one of: {', '.join(model.methods)}")
    return method


def _latent_dims(model: NNModel, method: str) -> int:
    """Latent size when `method` is forward and encode/decode form a latent path, else 0.

    A descriptor-conditioned model's decode takes its descriptors after the latent."""
    if method != "forward" or not all(name in model.methods for name in LATENT_METHODS):
        return 0
    encode, decode = model.methods["encode"], model.methods["decode"]
    if encode.out_channels + len(model.descriptors) != decode.in_channels or encode.out_ratio != decode.in_ratio:
        logger.warning(
            "%s: encode outputs [%d, ratio %d] but decode takes [%d, ratio %d]: no latent transforms",
            model.path.name, encode.out_channels, encode.out_ratio, decode.in_channels, decode.in_ratio,
        )
        return 0
    return encode.out_channels


def _choose_block(model: NNModel, methods: list[str], block: int | None) -> int:
    minimum = model.minimum_block(methods)
    if block is None:
        return minimum * math.ceil(BLOCK_FLOOR / minimum)
    if isinstance(block, bool) or not isinstance(block, int) or block <= 0 or block % minimum:
        raise ConfigError(
            f"block {block!r} is not a legal model block for {', '.join(methods)}: "
            f"use a positive multiple of {minimum} ({minimum}, {2 * minimum}, {4 * minimum} ...)"
        )
    return block


def _check_channels(name: str, count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{name} {count!r} must be a positive whole number of stream channels; try 1 or 2")
    return count
