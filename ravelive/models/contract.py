"""Read the nn~ contract from a loaded TorchScript module.

What nn~ reads, laid out as nn_tilde's `Module` and RAVE's export write it:
methods from `get_methods()` (or, without it, every method with a
`<M>_params` buffer), each `<M>_params` int tensor [in_ch, in_ratio, out_ch,
out_ratio] and the optional `<M>_input_labels` / `<M>_output_labels` string
lists; attributes from `get_attributes()` ("none" ignored) with their
`<A>_params` type ids and `get_A` / `set_A`; the native rate from `sr` or
`get_sample_rate()`. Every fault is one ModelFormatError line naming the file
and the missing or malformed part.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ravelive.errors import ModelFormatError
from ravelive.models.attributes import AttributeType
from ravelive.models.torchscript import first_line

logger = logging.getLogger(__name__)

_IGNORED_ATTRIBUTE = "none"  # nn_tilde lists "none" as a placeholder attribute
_PARAMS_LAYOUT = "[in_ch, in_ratio, out_ch, out_ratio]"
# What a model may raise from a call: TorchScript raises torch.jit.Error (not a RuntimeError) for
# errors inside the model, RuntimeError for argument and shape errors.
MODEL_ERRORS = (torch.jit.Error, RuntimeError, ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class MethodSpec:
    """One method of the contract: x [batch, in_channels, B // in_ratio] -> [batch, out_channels, B // out_ratio]."""

    name: str
    in_channels: int
    in_ratio: int
    out_channels: int
    out_ratio: int
    input_labels: tuple[str, ...]
    output_labels: tuple[str, ...]

    @property
    def params(self) -> tuple[int, int, int, int]:
        """The `<M>_params` values: (in_channels, in_ratio, out_channels, out_ratio)."""
        return (self.in_channels, self.in_ratio, self.out_channels, self.out_ratio)

    @property
    def outputs_audio(self) -> bool:
        """Whether the output is audio a DAC may play: one value per sample (out_ratio 1), not latents.

        Outputs at out_ratio > 1 are control-rate by the contract (RAVE's encode and prior: one latent frame
        per 2048 samples, held as DC if played). At ratio 1 the labels decide: a method whose every output
        is labelled a latent is not audio either.
        """
        if self.out_ratio > 1:
            return False
        return not (self.output_labels and all("latent" in label.lower() for label in self.output_labels))

    def describe_output(self) -> str:
        """What the output is, for messages: '8 channels at 1/2048 of the audio rate'."""
        channels = f"{self.out_channels} channel{'s' if self.out_channels != 1 else ''}"
        rate = "the audio rate" if self.out_ratio == 1 else f"1/{self.out_ratio} of the audio rate"
        return f"{channels} at {rate}"

    def input_shape(self, block: int, batch: int = 1) -> tuple[int, int, int]:
        """Shape of the input tensor for a model block of `block` samples."""
        return (batch, self.in_channels, block // self.in_ratio)

    def output_shape(self, block: int, batch: int = 1) -> tuple[int, int, int]:
        """Shape the output must have for a model block of `block` samples."""
        return (batch, self.out_channels, block // self.out_ratio)


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute: a value per type id, read by `get_<name>()`, written by `set_<name>(...)`."""

    name: str
    types: tuple[AttributeType, ...]
    readable: bool = True
    writable: bool = True


@dataclass(frozen=True)
class Contract:
    """Everything a host reads from a model file, once, at load."""

    methods: dict[str, MethodSpec]
    attributes: dict[str, AttributeSpec]
    sample_rate: int | None


def read_contract(path: Path, module: torch.jit.ScriptModule) -> Contract:
    """Methods, attributes and sample rate of `module` (loaded from `path`, named in messages)."""
    method_names = set(module._c._method_names())
    return Contract(
        methods=_read_methods(path, module, method_names),
        attributes=_read_attributes(path, module, method_names),
        sample_rate=_read_sample_rate(path, module, method_names),
    )


def _read_methods(path: Path, module: torch.jit.ScriptModule, method_names: set[str]) -> dict[str, MethodSpec]:
    if "get_methods" in method_names:
        listed = _call_listing(path, module, "get_methods")
        source = "listed by get_methods()"
        for name in listed:
            if name not in method_names:
                raise ModelFormatError(f"{path}: method '{name}' {source} is not a method of the model")
        if not listed:
            raise ModelFormatError(f"{path}: get_methods() returns no methods — nothing to run")
    else:
        listed = sorted(name for name in method_names if _has_tensor(module, f"{name}_params"))
        source = "found by its _params buffer"
        if not listed:
            raise ModelFormatError(
                f"{path}: no methods: the file has no get_methods() and no '<method>_params' buffer — not an nn~ model"
            )
    return {name: _read_method(path, module, name, source) for name in listed}


def _read_method(path: Path, module: torch.jit.ScriptModule, name: str, source: str) -> MethodSpec:
    if not _has_tensor(module, f"{name}_params"):
        raise ModelFormatError(f"{path}: method '{name}' {source} has no '{name}_params' buffer")
    params = getattr(module, f"{name}_params")
    if params.dim() != 1 or params.numel() != 4:
        raise ModelFormatError(
            f"{path}: '{name}_params' must be 4 integers {_PARAMS_LAYOUT}, got shape {list(params.shape)}"
        )
    values = _integers(params)
    if values is None or min(values) < 1:
        raise ModelFormatError(
            f"{path}: '{name}_params' must be 4 positive integers {_PARAMS_LAYOUT}, got {params.tolist()}"
        )
    in_channels, in_ratio, out_channels, out_ratio = values
    return MethodSpec(
        name=name,
        in_channels=in_channels,
        in_ratio=in_ratio,
        out_channels=out_channels,
        out_ratio=out_ratio,
        input_labels=_read_labels(path, module, f"{name}_input_labels", in_channels, "in"),
        output_labels=_read_labels(path, module, f"{name}_output_labels", out_channels, "out"),
    )


def _read_labels(path: Path, module: torch.jit.ScriptModule, attribute: str, count: int, prefix: str) -> tuple[str, ...]:
    defaults = tuple(f"{prefix} {index}" for index in range(count))
    labels = getattr(module, attribute, None) if hasattr(module, attribute) else None
    if labels is None:
        return defaults
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        logger.warning("%s: '%s' is not a list of strings; using %s", path, attribute, list(defaults))
        return defaults
    if len(labels) != count:
        logger.warning("%s: '%s' has %d labels for %d channels; using %s", path, attribute, len(labels), count, list(defaults))
        return defaults
    return tuple(labels)


def _read_attributes(path: Path, module: torch.jit.ScriptModule, method_names: set[str]) -> dict[str, AttributeSpec]:
    if "get_attributes" in method_names:
        names = [name for name in _call_listing(path, module, "get_attributes") if name != _IGNORED_ATTRIBUTE]
        for name in names:
            if not _has_tensor(module, f"{name}_params"):
                raise ModelFormatError(
                    f"{path}: attribute '{name}' listed by get_attributes() has no '{name}_params' buffer"
                )
    else:  # like nn~: every `<A>_params` that is not a method's and has a getter or a setter
        names = sorted(
            name.removesuffix("_params")
            for name, _ in module.named_buffers(recurse=False)
            if name.endswith("_params")
            and name.removesuffix("_params") not in method_names
            and ({f"get_{name.removesuffix('_params')}", f"set_{name.removesuffix('_params')}"} & method_names)
        )
    return {name: _read_attribute(path, module, name, method_names) for name in names}


def _read_attribute(path: Path, module: torch.jit.ScriptModule, name: str, method_names: set[str]) -> AttributeSpec:
    params = getattr(module, f"{name}_params")
    ids = _integers(params.reshape(-1))
    valid = [int(kind) for kind in AttributeType]
    if ids is None or not ids or any(type_id not in valid for type_id in ids):
        raise ModelFormatError(
            f"{path}: '{name}_params' must hold one type id per value out of {valid} "
            f"(bool int float str tensor buffer), got {params.tolist()}"
        )
    return AttributeSpec(
        name=name,
        types=tuple(AttributeType(type_id) for type_id in ids),
        readable=f"get_{name}" in method_names,
        writable=f"set_{name}" in method_names,
    )


def _read_sample_rate(path: Path, module: torch.jit.ScriptModule, method_names: set[str]) -> int | None:
    if hasattr(module, "sr"):
        value, source = module.sr, "'sr'"
    elif "get_sample_rate" in method_names:
        try:
            value, source = module.get_sample_rate(), "get_sample_rate()"
        except MODEL_ERRORS as error:
            raise ModelFormatError(f"{path}: get_sample_rate() raised: {first_line(error)}") from error
    else:
        return None
    if value is None:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or not float(value).is_integer():
        raise ModelFormatError(f"{path}: {source} must be a positive whole sample rate in Hz, got {value!r}")
    return int(value)


def _call_listing(path: Path, module: torch.jit.ScriptModule, getter: str) -> list[str]:
    try:
        names = getattr(module, getter)()
    except MODEL_ERRORS as error:
        raise ModelFormatError(f"{path}: {getter}() raised: {first_line(error)}") from error
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise ModelFormatError(f"{path}: {getter}() must return a list of names, got {names!r}")
    return list(names)


def _has_tensor(module: torch.jit.ScriptModule, attribute: str) -> bool:
    return hasattr(module, attribute) and isinstance(getattr(module, attribute), torch.Tensor)


def _integers(tensor: torch.Tensor) -> list[int] | None:
    """The tensor's values as ints, or None when one is not a whole number (old exports store floats)."""
    values = tensor.reshape(-1).tolist()
    if not all(isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() for value in values):
        return None
    return [int(value) for value in values]
