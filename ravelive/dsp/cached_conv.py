"""Streaming (cached) 1-d convolutions that know their delay and their block rule.

Every module here runs in one of two modes, chosen at construction:

- offline (`streaming=False`): the whole signal at once, zero-padded on both
  sides like a "same" convolution; this is how a model is trained;
- streaming (`streaming=True`): consecutive blocks of one stream; the frames
  a kernel needs from the previous block live in state buffers (allocated
  once, `max_batch` rows, never in `state_dict()`), zeroed by `reset()`.

A non-causal kernel looks `future` frames ahead. A stream cannot, so its
output comes `future` frames late: that look-ahead becomes delay. A strided
convolution can only shift its output by whole output frames, so when the
delay of its input plus its look-ahead is not a multiple of the stride, the
input is delayed a little more (`alignment`) until it is (the arithmetic of
acids-ircam/cached_conv). Each module is built for the delay of the stream it
receives (`input_delay`, input frames) and reports the delay of the stream it
produces (`delay`, output frames), so a stack computes its total delay layer
by layer. The first `delay` output frames of a fresh stream would be values
the offline model never computes (positions before the signal starts); they
are zeroed. The contract, tested for every module:

    streaming(x)[..., :delay] == 0
    streaming(x)[..., delay:] == offline(x)[..., :-delay]

Block rule: a streaming block must hold a multiple of `block_multiple` input
frames; `up` / `down` give the rate change (output frames = input * up / down).
"""

from fractions import Fraction
from math import gcd, lcm

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_MAX_BATCH = 16
"""Rows of streaming state per module: the largest batch (mc.nn~ voices) a stream may use."""

NEGATIVE_SLOPE = 0.2
"""Slope of the leaky ReLU applied by `pre_activation`."""


class _History(nn.Module):
    """The last `length` frames of a stream, per batch row, in a preallocated buffer."""

    length: torch.jit.Final[int]
    max_batch: torch.jit.Final[int]

    def __init__(self, channels: int, length: int, max_batch: int) -> None:
        super().__init__()
        self.length = length
        self.max_batch = max_batch
        self.register_buffer("frames", torch.zeros(max_batch, channels, length), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the kept frames followed by `x`, and keeps the last `length` frames of that."""
        if self.length == 0:
            return x
        batch = x.shape[0]
        if batch > self.max_batch:
            raise RuntimeError(
                "batch " + str(batch) + " is larger than the " + str(self.max_batch)
                + " streams this model keeps state for; use a smaller batch or export with a larger max_batch"
            )
        extended = torch.cat([self.frames[:batch], x], -1)
        self.frames[:batch].copy_(extended[:, :, extended.shape[-1] - self.length :])
        return extended

    def reset(self) -> None:
        self.frames.zero_()


class CachedConv1d(nn.Module):
    """Conv1d (optionally strided, dilated, non-causal) that streams with cached padding."""

    streaming: torch.jit.Final[bool]
    pre_activation: torch.jit.Final[bool]
    negative_slope: torch.jit.Final[float]
    stride: torch.jit.Final[int]
    past: torch.jit.Final[int]
    future: torch.jit.Final[int]
    alignment: torch.jit.Final[int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = True,
        pre_activation: bool = False,
        streaming: bool = True,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """`pre_activation` applies a leaky ReLU to the input; `input_delay` is in input frames."""
        super().__init__()
        span = (kernel_size - 1) * dilation  # frames of context besides the current one
        self.streaming = streaming
        self.pre_activation = pre_activation
        self.negative_slope = NEGATIVE_SLOPE
        self.stride = stride
        self.future = 0 if causal else span // 2
        self.past = span - self.future
        self.alignment = -(self.future + input_delay) % stride
        self.input_delay = input_delay
        self.delay = (self.future + input_delay + self.alignment) // stride
        self.up, self.down, self.block_multiple = 1, stride, stride
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups, bias=bias
        )
        self.history = _History(in_channels, span + self.alignment if streaming else 0, max_batch)
        # output frames of a fresh stream still to zero: they precede the offline signal
        self.register_buffer("warmup", torch.tensor(self.delay), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_activation:
            x = F.leaky_relu(x, self.negative_slope)
        if not self.streaming:
            return self.conv(F.pad(x, [self.past, self.future]))
        if x.shape[-1] % self.stride != 0:
            raise RuntimeError(
                "a block of " + str(x.shape[-1]) + " frames does not divide by the stride "
                + str(self.stride) + "; use blocks that are a multiple of the model's ratio"
            )
        extended = self.history(x)
        if self.alignment > 0:
            extended = extended[:, :, : extended.shape[-1] - self.alignment]
        # the bias added after the conv: on the CPU a dilated conv with a bias leaves oneDNN for a path several
        # times slower at streaming block sizes (benchmarks/export_rtf.py); equal to the offline conv to rounding
        conv = self.conv
        y = F.conv1d(extended, conv.weight, None, conv.stride, 0, conv.dilation, conv.groups)
        bias = conv.bias
        if bias is not None:
            y = y + bias.unsqueeze(-1)
        return self._zero_warmup(y)

    def _zero_warmup(self, y: torch.Tensor) -> torch.Tensor:
        remaining = int(self.warmup)
        if remaining > 0:
            count = min(remaining, y.shape[-1])
            y[:, :, :count] = 0.0
            self.warmup.sub_(count)
        return y

    @torch.jit.export
    def reset(self) -> None:
        """Forget the stream: zero the cached frames, zero the next `delay` output frames again."""
        self.history.reset()
        self.warmup.fill_(self.delay)


def fixed_conv(
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int = 1,
    streaming: bool = True,
    input_delay: int = 0,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> CachedConv1d:
    """A non-causal CachedConv1d with a given weight [out, in, kernel] (and bias [out]) that is not trained state.

    The weight and bias are buffers outside `state_dict()`, computed by whoever builds the layer (a
    resampling filter, a latent rotation): a training checkpoint loads into a model with or without them.
    """
    out_channels, in_channels, kernel_size = weight.shape
    with torch.random.fork_rng(devices=[]):  # the draws of a throwaway init: a seeded model's other layers stay put
        conv = CachedConv1d(
            in_channels, out_channels, kernel_size, stride=stride, bias=bias is not None, causal=False,
            streaming=streaming, input_delay=input_delay, max_batch=max_batch,
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            delattr(conv.conv, name)  # a parameter would be trained and saved with the checkpoint
            conv.conv.register_buffer(name, value.detach().float().contiguous(), persistent=False)
    return conv


class CachedDelay(nn.Module):
    """A delay line of `frames` frames (identity offline); aligns parallel branches."""

    streaming: torch.jit.Final[bool]

    def __init__(
        self,
        channels: int,
        frames: int,
        *,
        streaming: bool = True,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        self.streaming = streaming
        self.input_delay = input_delay
        self.delay = input_delay + frames
        self.up, self.down, self.block_multiple = 1, 1, 1
        self.history = _History(channels, frames if streaming else 0, max_batch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.streaming:
            return x
        return self.history(x)[:, :, : x.shape[-1]]

    @torch.jit.export
    def reset(self) -> None:
        self.history.reset()


class CachedUpsample(nn.Module):
    """Nearest-neighbour upsampling by `factor`, then a CachedConv1d at the new rate."""

    factor: torch.jit.Final[int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        factor: int,
        kernel_size: int,
        *,
        causal: bool = True,
        pre_activation: bool = False,
        streaming: bool = True,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        self.factor = factor
        # repeating a stream that is d frames late gives one d * factor frames late: no alignment needed
        self.conv = CachedConv1d(
            in_channels,
            out_channels,
            kernel_size,
            causal=causal,
            pre_activation=pre_activation,
            streaming=streaming,
            input_delay=input_delay * factor,
            max_batch=max_batch,
        )
        self.input_delay = input_delay
        self.delay = self.conv.delay
        self.up, self.down, self.block_multiple = factor, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.repeat_interleave(self.factor, dim=-1))

    @torch.jit.export
    def reset(self) -> None:
        self.conv.reset()


class CachedResidual(nn.Module):
    """x + conv1x1(act(conv(act(x)))) at one rate; the skip path is delayed to match the branch."""

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        causal: bool = True,
        streaming: bool = True,
        input_delay: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__()
        common = dict(causal=causal, pre_activation=True, streaming=streaming, max_batch=max_batch)
        self.inner = CachedConv1d(channels, channels, kernel_size, dilation=dilation, input_delay=input_delay, **common)
        self.outer = CachedConv1d(channels, channels, 1, input_delay=self.inner.delay, **common)
        self.skip = CachedDelay(
            channels, self.outer.delay - input_delay, streaming=streaming, input_delay=input_delay, max_batch=max_batch
        )
        self.input_delay = input_delay
        self.delay = self.outer.delay
        self.up, self.down, self.block_multiple = 1, 1, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.outer(self.inner(x))

    @torch.jit.export
    def reset(self) -> None:
        self.inner.reset()
        self.outer.reset()
        self.skip.reset()


class CachedSequential(nn.Sequential):
    """Streaming modules in a row; each must be built for the delay of the one before it."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        for index in range(1, len(layers)):
            if layers[index].input_delay != layers[index - 1].delay:
                raise ValueError(
                    f"layer {index} ({type(layers[index]).__name__}) is built for an input delay of "
                    f"{layers[index].input_delay} frames but follows a delay of {layers[index - 1].delay}; "
                    "pass input_delay=<previous layer>.delay when building it"
                )
        self.input_delay = layers[0].input_delay
        self.delay = layers[-1].delay
        rate = Fraction(1)  # frames at this point per input frame
        multiple = Fraction(1)  # the block (input frames) must be a multiple of this
        for layer in layers:
            multiple = _lcm(multiple, layer.block_multiple / rate)
            rate *= Fraction(layer.up, layer.down)
        multiple = _lcm(multiple, 1 / rate)  # a whole number of output frames too
        self.up, self.down = rate.numerator, rate.denominator
        self.block_multiple = int(multiple)

    @torch.jit.export
    def reset(self) -> None:
        for layer in self:
            layer.reset()


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    """Least common multiple of two positive rationals (the smallest number both divide)."""
    return Fraction(lcm(a.numerator, b.numerator), gcd(a.denominator, b.denominator))
