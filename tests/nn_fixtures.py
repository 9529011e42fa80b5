"""Builders of small nn~-contract model files for tests.

Each `build_*` function writes one `.ts` file into `directory` and returns its
path. The models are laid out the way nn_tilde's `Module` and RAVE's export
lay them out: a `<method>_params` int64 buffer [in_ch, in_ratio, out_ch,
out_ratio] per method, `get_methods()`, `<method>_input_labels` /
`<method>_output_labels` string lists, `get_attributes()` with `<attr>_params`
type-id buffers and `get_<attr>` / `set_<attr>` methods, `sr`.
`build_malformed` writes every kind of broken file NNModel must reject.
"""

import io
import struct
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import soundfile
import torch

from ravelive.models.torchscript import script_and_save

CODEC_RATIO = 64  # samples per latent frame of the streaming codec
CODEC_LATENT = 4  # latent dimensions of the streaming codec
ENVELOPE_RATIO = 32  # samples per frame of the control-rate envelope
BUFFER_MAX_SAMPLES = 48000  # the attribute model refuses longer buffers (set_buffer_attribute returns -1)
NAN_TRIGGER = 4.0  # the NaN models poison their state on a block holding a sample louder than this


class _ContractModule(torch.nn.Module):
    """Registers methods and attributes the way nn_tilde does, without nn_tilde."""

    def __init__(self) -> None:
        super().__init__()
        self._methods: List[str] = []
        self._attributes: List[str] = ["none"]  # nn_tilde lists a "none" placeholder

    def register_method(self, name: str, params: List[int], input_labels: Optional[List[str]] = None,
                        output_labels: Optional[List[str]] = None) -> None:
        self.register_buffer(f"{name}_params", torch.tensor(params))
        if input_labels is not None:
            setattr(self, f"{name}_input_labels", input_labels)
        if output_labels is not None:
            setattr(self, f"{name}_output_labels", output_labels)
        self._methods.append(name)

    def register_attribute(self, name: str, type_ids: List[int]) -> None:
        self.register_buffer(f"{name}_params", torch.tensor(type_ids))
        self._attributes.append(name)

    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self._methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self._attributes


class Identity(_ContractModule):
    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1], ["(signal) input"], ["(signal) output"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class TwoInputs(_ContractModule):
    """`mix` takes two input channels (signal, gain) and returns their product."""

    def __init__(self) -> None:
        super().__init__()
        self.register_method("mix", [2, 1, 1, 1], ["(signal) audio", "(signal) gain"], ["(signal) audio x gain"])
        self.register_method("forward", [1, 1, 1, 1])

    @torch.jit.export
    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * x[:, 1:2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class StreamingCodec(_ContractModule):
    """A RAVE-shaped streaming encoder/decoder with its state in buffers.

    encode [1, 1, 4, 64]: per 64-sample frame (mean, previous frame's mean,
    max, min); the previous frame comes from a cached tail, so blocks of any
    multiple of 64 give the same latents as the whole signal. decode
    [4, 64, 1, 1]: ramps linearly from the previous frame's mean to this
    frame's mean, the previous frame again from a cached state. forward is
    decode(encode(x)) at [1, 1, 1, 1], like RAVE's, so it needs blocks of 64.
    The state has batch 1, like cached_conv: batch 2 raises.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_method("encode", [1, 1, CODEC_LATENT, CODEC_RATIO], ["(signal) audio"],
                             [f"(signal) latent {i}" for i in range(CODEC_LATENT)])
        self.register_method("decode", [CODEC_LATENT, CODEC_RATIO, 1, 1],
                             [f"(signal) latent {i}" for i in range(CODEC_LATENT)], ["(signal) audio"])
        self.register_method("forward", [1, 1, 1, 1], ["(signal) audio"], ["(signal) audio"])
        self.register_buffer("encode_cache", torch.zeros(1, 1, CODEC_RATIO))
        self.register_buffer("decode_cache", torch.zeros(1, CODEC_LATENT, 1))
        self.register_buffer("ramp", torch.arange(1, CODEC_RATIO + 1, dtype=torch.float32) / CODEC_RATIO)
        self.ratio = CODEC_RATIO
        self.sr = 48000

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([self.encode_cache, x], -1)
        self.encode_cache.copy_(padded[..., -self.ratio:])
        frames = padded.reshape(padded.shape[0], -1, self.ratio)
        current, previous = frames[:, 1:], frames[:, :-1]
        return torch.stack(
            [current.mean(-1), previous.mean(-1), current.amax(-1), current.amin(-1)], 1
        )

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([self.decode_cache, z], -1)
        self.decode_cache.copy_(padded[..., -1:])
        start, end = padded[:, 0, :-1], padded[:, 0, 1:]
        y = start.unsqueeze(-1) + (end - start).unsqueeze(-1) * self.ramp
        return y.reshape(z.shape[0], 1, -1)

    @torch.jit.export
    def reset(self) -> None:
        self.encode_cache.zero_()
        self.decode_cache.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ControlRate(_ContractModule):
    """`envelope` [1, 1, 2, 32]: RMS and peak of each 32-sample frame (a control-rate output)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_method("envelope", [1, 1, 2, ENVELOPE_RATIO], ["(signal) audio"], ["(signal) rms", "(signal) peak"])
        self.ratio = ENVELOPE_RATIO

    @torch.jit.export
    def envelope(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.reshape(x.shape[0], -1, self.ratio)
        return torch.stack([frames.pow(2).mean(-1).sqrt(), frames.abs().amax(-1)], 1)


class NaNOnLoud(_ContractModule):
    """forward [1, 1, 1, 1] = x + 0 * cache: the identity, until a block holds a sample above NAN_TRIGGER.

    Then NaN goes into its streaming cache, and that block and every later one come out NaN, as from a
    cached convolution whose state a NaN reached. It has no way to reset (only loading it again helps).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1], ["(signal) input"], ["(signal) output"])
        self.register_buffer("cache", torch.zeros(1))
        self.trigger = NAN_TRIGGER

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.abs() > self.trigger).any()):
            self.cache.fill_(float("nan"))
        return x + self.cache * 0.0


class NaNOnLoudWithReset(NaNOnLoud):
    """NaNOnLoud with `reset()`, as ravelive's and cached_conv's exports have: it clears the cache."""

    @torch.jit.export
    def reset(self) -> None:
        self.cache.zero_()


class _WithGain(_ContractModule):
    """Attribute `gain` (one float), whose setter refuses negative gains (returns 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain: Tuple[float] = (1.0,)

    @torch.jit.export
    def get_gain(self) -> Tuple[float]:
        return self.gain

    @torch.jit.export
    def set_gain(self, gain: float) -> int:
        if gain < 0:
            return 1
        self.gain = (gain,)
        return 0


class WithAttributes(_WithGain):
    """forward = gain * x (inverted when `invert`), plus one attribute of every type.

    set_gain refuses negative gains (returns 1); set_buffer_attribute refuses
    buffers longer than BUFFER_MAX_SAMPLES (returns -1).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1])
        self.invert: Tuple[bool] = (False,)
        self.steps: Tuple[int] = (4,)
        self.mode: Tuple[str] = ("clean",)
        self.curve: Tuple[torch.Tensor] = (torch.tensor([0.0, 0.5, 1.0]),)
        self.range: Tuple[float, int] = (0.25, 8)
        self.ir_audio = torch.zeros(0, 0)
        self.ir_sample_rate = -1
        self.ir_max_samples = BUFFER_MAX_SAMPLES
        for name, type_ids in [("gain", [2]), ("invert", [0]), ("steps", [1]), ("mode", [3]),
                               ("curve", [4]), ("range", [2, 1]), ("ir", [5])]:
            self.register_attribute(name, type_ids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.gain[0]
        return -y if self.invert[0] else y

    @torch.jit.export
    def get_invert(self) -> List[bool]:
        return [self.invert[0]]

    @torch.jit.export
    def set_invert(self, invert: bool) -> int:
        self.invert = (invert,)
        return 0

    @torch.jit.export
    def get_steps(self) -> Tuple[int]:
        return self.steps

    @torch.jit.export
    def set_steps(self, steps: int) -> int:
        self.steps = (steps,)
        return 0

    @torch.jit.export
    def get_mode(self) -> Tuple[str]:
        return self.mode

    @torch.jit.export
    def set_mode(self, mode: str) -> int:
        self.mode = (mode,)
        return 0

    @torch.jit.export
    def get_curve(self) -> Tuple[torch.Tensor]:
        return self.curve

    @torch.jit.export
    def set_curve(self, curve: torch.Tensor) -> int:
        self.curve = (curve,)
        return 0

    @torch.jit.export
    def get_range(self) -> Tuple[float, int]:
        return self.range

    @torch.jit.export
    def set_range(self, low: float, count: int) -> int:
        self.range = (low, count)
        return 0

    @torch.jit.export
    def get_ir(self) -> Tuple[str]:
        if self.ir_audio.numel() == 0:
            return ("Buffer(empty)",)
        return ("Buffer(shape=" + str(self.ir_audio.shape) + ", sr=" + str(self.ir_sample_rate) + ")",)

    @torch.jit.export
    def set_ir(self, ignored: str) -> int:
        return 0  # nn_tilde's buffer slots take a str and keep the buffer

    @torch.jit.export
    def get_buffer_attributes(self) -> List[str]:
        return ["ir#0"]

    @torch.jit.export
    def set_buffer_attribute(self, name: str, audio: torch.Tensor, sr: int) -> int:
        if name != "ir#0" or audio.shape[-1] > self.ir_max_samples:
            return -1
        self.ir_audio = audio.clone()
        self.ir_sample_rate = sr
        return 0


class Switchable(_WithGain):
    """Audio methods forward = gain * x, negate = -gain * x, and `broken` (raises); attribute gain (>= 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1])
        self.register_method("negate", [1, 1, 1, 1])
        self.register_method("broken", [1, 1, 1, 1])
        self.register_attribute("gain", [2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain[0]

    @torch.jit.export
    def negate(self, x: torch.Tensor) -> torch.Tensor:
        return -x * self.gain[0]

    @torch.jit.export
    def broken(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("broken always fails")


class Raising(_ContractModule):
    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this model always fails")


class BadOutput(_ContractModule):
    """Declares forward [1, 1, 1, 1] but returns half as many samples."""

    def __init__(self) -> None:
        super().__init__()
        self.register_method("forward", [1, 1, 1, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] // 2]


class Resampled(Identity):
    """An identity whose native rate is 44.1 kHz (`sr`, as RAVE exports set it)."""

    def __init__(self) -> None:
        super().__init__()
        self.sr = 44100


class WithoutGetMethods(torch.nn.Module):
    """No get_methods(): methods count by their `_params` buffers; rate from get_sample_rate()."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.register_buffer("halve_params", torch.tensor([1, 1, 1, 2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @torch.jit.export
    def halve(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2].contiguous()

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return 22050


class LegacyAttributes(torch.nn.Module):
    """Older nn_tilde layout: float `_params` (torch.Tensor(type ids)), no get_methods/get_attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("forward_params", torch.Tensor([1, 1, 1, 1]))
        self.register_buffer("depth_params", torch.Tensor([2]))
        self.depth: Tuple[float] = (0.5,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.depth[0]

    @torch.jit.export
    def get_depth(self) -> Tuple[float]:
        return self.depth

    @torch.jit.export
    def set_depth(self, depth: float) -> int:
        self.depth = (depth,)
        return 0


class NoContract(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class WrongParamsShape(Identity):
    def __init__(self) -> None:
        super().__init__()
        self.forward_params = torch.tensor([1, 1, 1])


class MissingParams(Identity):
    """get_methods() lists `encode`, which has no `encode_params` buffer."""

    def __init__(self) -> None:
        super().__init__()
        self._methods.append("encode")

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x


class UnknownMethod(Identity):
    """get_methods() lists `decode`, which the file does not define."""

    def __init__(self) -> None:
        super().__init__()
        self._methods.append("decode")
        self.register_buffer("decode_params", torch.tensor([8, 2048, 1, 1]))


class ZeroRatio(Identity):
    def __init__(self) -> None:
        super().__init__()
        self.forward_params = torch.tensor([1, 0, 1, 1])


class AttributeWithoutParams(Identity):
    """get_attributes() lists `gain`, which has no `gain_params` buffer."""

    def __init__(self) -> None:
        super().__init__()
        self._attributes.append("gain")


class UnknownTypeId(Identity):
    def __init__(self) -> None:
        super().__init__()
        self.register_attribute("gain", [7])


class NegativeSampleRate(Identity):
    def __init__(self) -> None:
        super().__init__()
        self.sr = -1


def build_identity(directory: Path) -> Path:
    return script_and_save(Identity(), directory / "identity.ts")


def build_two_inputs(directory: Path) -> Path:
    return script_and_save(TwoInputs(), directory / "two_inputs.ts")


def build_codec(directory: Path) -> Path:
    return script_and_save(StreamingCodec(), directory / "codec.ts")


def build_control_rate(directory: Path) -> Path:
    return script_and_save(ControlRate(), directory / "control_rate.ts")


def build_nan_on_loud(directory: Path) -> Path:
    return script_and_save(NaNOnLoudWithReset(), directory / "nan_on_loud.ts")


def build_nan_on_loud_without_reset(directory: Path) -> Path:
    return script_and_save(NaNOnLoud(), directory / "nan_on_loud_without_reset.ts")


def build_attributes(directory: Path) -> Path:
    return script_and_save(WithAttributes(), directory / "attributes.ts")


def build_switchable(directory: Path) -> Path:
    return script_and_save(Switchable(), directory / "switchable.ts")


def build_raising(directory: Path) -> Path:
    return script_and_save(Raising(), directory / "raising.ts")


def build_bad_output(directory: Path) -> Path:
    return script_and_save(BadOutput(), directory / "bad_output.ts")


def build_sr44100(directory: Path) -> Path:
    return script_and_save(Resampled(), directory / "sr44100.ts")


def build_without_get_methods(directory: Path) -> Path:
    return script_and_save(WithoutGetMethods(), directory / "no_get_methods.ts")


def build_legacy_attributes(directory: Path) -> Path:
    return script_and_save(LegacyAttributes(), directory / "legacy_attributes.ts")


def build_with_metadata(directory: Path) -> Path:
    return script_and_save(Identity(), directory / "with_metadata.ts", metadata={"format_version": 1, "name": "identity"})


def build_malformed(directory: Path) -> dict[str, Path]:
    """Every kind of wrong model file, by kind: missing, directory, empty, wav, text, state_dict,
    legacy_pickle, truncated, corrupt, no_contract, params_shape, missing_params, unknown_method, zero_ratio,
    attribute_without_params, unknown_type_id, negative_sample_rate."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"missing": directory / "missing.ts", "directory": directory / "folder.ts"}
    files["directory"].mkdir(exist_ok=True)
    files["empty"] = directory / "empty.ts"
    files["empty"].write_bytes(b"")
    files["wav"] = directory / "sound.wav"
    soundfile.write(files["wav"], np.zeros(64, dtype=np.float32), 48000)
    files["text"] = directory / "notes.ts"
    files["text"].write_text("this is not a model\n")
    files["state_dict"] = directory / "state_dict.ts"
    torch.save(StreamingCodec().state_dict(), files["state_dict"])
    files["legacy_pickle"] = directory / "legacy.ts"
    torch.save(StreamingCodec().state_dict(), files["legacy_pickle"], _use_new_zipfile_serialization=False)
    whole = build_codec(directory).read_bytes()
    files["truncated"] = directory / "truncated.ts"
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    files["corrupt"] = directory / "corrupt.ts"
    files["corrupt"].write_bytes(_flip_first_tensor_byte(whole))
    files["no_contract"] = script_and_save(NoContract(), directory / "no_contract.ts")
    files["params_shape"] = script_and_save(WrongParamsShape(), directory / "params_shape.ts")
    files["missing_params"] = script_and_save(MissingParams(), directory / "missing_params.ts")
    for kind, module in [("unknown_method", UnknownMethod()), ("zero_ratio", ZeroRatio()),
                         ("attribute_without_params", AttributeWithoutParams()),
                         ("unknown_type_id", UnknownTypeId()), ("negative_sample_rate", NegativeSampleRate())]:
        files[kind] = script_and_save(module, directory / f"{kind}.ts")
    return files


def _flip_first_tensor_byte(archive: bytes) -> bytes:
    """The archive with one byte of its first tensor's data inverted (the zip directory stays intact)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as reader:
        member = next(info for info in reader.infolist() if info.filename.endswith("/data/0"))
    name_length, extra_length = struct.unpack("<HH", archive[member.header_offset + 26 : member.header_offset + 30])
    data_start = member.header_offset + 30 + name_length + extra_length  # local header is 30 bytes + name + extra
    damaged = bytearray(archive)
    damaged[data_start] ^= 0xFF
    return bytes(damaged)
