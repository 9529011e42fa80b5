"""Export streaming torch modules as nn~-contract `.ts` files: build, save, reload, verify.

`ContractModule` lays a module out the way nn_tilde's `Module` and RAVE's
export do (see docs in ../shared/docs/nn-contract.md): a `<M>_params` int
buffer `[in_ch, in_ratio, out_ch, out_ratio]` and `<M>_input_labels` /
`<M>_output_labels` per method, `get_methods()`, `get_attributes()` with an
`<A>_params` type-id buffer and `get_<A>` / `set_<A>` per attribute, `sr`,
`get_sample_rate()`, and `reset()` for the stream state. Nothing but torch is
needed to load the file, so nn~ and the RAVE VST load it. There is no
`set_sample_rate`: the models run at one rate, hosts resample around them
(older RAVE exports lack it too, so nn~ copes without it).

`export_model` saves the scripted module with a `ravelive.json` description
(format version, sample rate, per-method delay and block multiple, whether it
streams, model config, and whatever the architecture adds), reloads the file
as a host would, checks the contract and, at batch 1 and 4, that streaming
equals offline after each method's delay, and only then moves the file into
place: a failed export leaves nothing behind. A random method (declared not
deterministic: a `prior`, its input a temperature) has no offline output to
equal; it is checked where it is deterministic, at input 0 (the noise
prior's zeros, a trained prior's mean path), streamed in blocks against one
call on the whole signal (its stream state carries over between calls), and
at input 1, where its output must be finite.

A non-streaming export (`streaming=False`: plain convolutions, no cached
state, what RAVE writes without `--streaming`) plays whole signals only; its
file says `"streaming": false`, its delays are 0, its check is that one call
on the reloaded file equals the offline module's, and the engine refuses to
play it in blocks (`NNModel.require_streaming`).
"""

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List

import torch
from torch import nn

from ravelive.errors import ConfigError, ModelFormatError, ModelRuntimeError
from ravelive.models.attributes import AttributeType
from ravelive.models.nn_model import NNModel
from ravelive.models.torchscript import script_and_save

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the `ravelive.json` layout written into exported archives.

2 added `streaming` (a version 1 file always streams) and the architecture's
extras (a RAVE export's `latent` and `training_sample_rate`)."""

VERIFY_BLOCKS = 4  # blocks streamed per method past its delay when verifying an export
VERIFY_BATCHES = (1, 4)  # batch sizes every method is verified at: one voice, and mc.nn~ voices
TOLERANCE = 1e-4  # largest streaming-vs-offline difference accepted, relative to the signal's peak (at least 1)


@dataclass(frozen=True)
class ExportedMethod:
    """What a host needs to know about one method beyond its `_params`."""

    name: str
    in_channels: int
    in_ratio: int
    out_channels: int
    out_ratio: int
    delay: int  # samples by which the streamed output lags the offline output
    block_multiple: int  # a streaming block (samples) must be a multiple of this
    deterministic: bool  # False when the output is random, so streaming cannot be compared with offline

    @property
    def params(self) -> list[int]:
        return [self.in_channels, self.in_ratio, self.out_channels, self.out_ratio]

    def describe(self) -> dict[str, Any]:
        """The method's entry in `ravelive.json`."""
        return {
            "params": self.params,
            "delay": self.delay,
            "block_multiple": self.block_multiple,
            "deterministic": self.deterministic,
        }


class ContractModule(nn.Module):
    """Base of modules exported under the nn~ contract; subclasses register methods and attributes."""

    __jit_ignored_attributes__ = ["exported_methods"]
    _methods: List[str]
    _attributes: List[str]
    sr: int

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self._methods = []
        self._attributes = []
        self.sr = sample_rate
        self.exported_methods: dict[str, ExportedMethod] = {}

    def register_method(
        self,
        name: str,
        params: Sequence[int],
        input_labels: Sequence[str],
        output_labels: Sequence[str],
        *,
        delay: int,
        block_multiple: int | None = None,
        deterministic: bool = True,
    ) -> None:
        """Declare method `name` (already defined, exported with @torch.jit.export unless `forward`).

        `params` is [in_ch, in_ratio, out_ch, out_ratio]; `delay` (samples) is
        how late its streamed output comes; `block_multiple` defaults to the
        larger ratio.
        """
        in_channels, in_ratio, out_channels, out_ratio = params
        if delay % out_ratio:
            raise ValueError(f"method '{name}': delay {delay} is not a whole number of output frames of {out_ratio}")
        if len(input_labels) != in_channels or len(output_labels) != out_channels:
            raise ValueError(
                f"method '{name}': {len(input_labels)} input / {len(output_labels)} output labels for "
                f"{in_channels} / {out_channels} channels; give one label per channel"
            )
        self.register_buffer(f"{name}_params", torch.tensor(list(params), dtype=torch.int64))
        setattr(self, f"{name}_input_labels", list(input_labels))
        setattr(self, f"{name}_output_labels", list(output_labels))
        self._methods.append(name)
        self.exported_methods[name] = ExportedMethod(
            name, in_channels, in_ratio, out_channels, out_ratio, delay,
            block_multiple or math.lcm(in_ratio, out_ratio), deterministic,
        )

    def register_attribute(self, name: str, types: Sequence[AttributeType]) -> None:
        """Declare attribute `name`, whose `get_<name>` / `set_<name>` the subclass defines."""
        for accessor in (f"get_{name}", f"set_{name}"):
            if not callable(getattr(self, accessor, None)):
                raise TypeError(f"attribute '{name}' needs a method {accessor}; define it with @torch.jit.export")
        self.register_buffer(f"{name}_params", torch.tensor([int(kind) for kind in types], dtype=torch.int64))
        self._attributes.append(name)

    @torch.jit.unused
    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """`load_state_dict`, keeping this module's own `<name>_params` buffers.

        They are in a training checkpoint too, but they describe the module as built: an export
        that keeps fewer latent dims or declares another rate must not take the training model's.
        """
        contract = {f"{name}_params" for name in self._methods + self._attributes}
        own = {name: buffer for name, buffer in self.named_buffers() if name in contract}
        self.load_state_dict({**state_dict, **own})

    @torch.jit.export
    def get_methods(self) -> List[str]:
        return self._methods

    @torch.jit.export
    def get_attributes(self) -> List[str]:
        return self._attributes

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return self.sr

    @torch.jit.export
    def reset(self) -> None:
        """Forget the stream (subclasses with streaming state override this)."""


def block_multiple(module: ContractModule) -> int:
    """Smallest block (samples) every method of `module` accepts."""
    return math.lcm(*(method.block_multiple for method in module.exported_methods.values()))


def describe_export(
    module: ContractModule,
    config: Mapping[str, Any] | None = None,
    *,
    streaming: bool = True,
    extras: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `ravelive.json` written into the archive; `extras` are the architecture's own entries."""
    return {
        "format": "ravelive-model",
        "format_version": FORMAT_VERSION,
        "architecture": type(module).__name__,
        "sample_rate": module.sr,
        "streaming": streaming,
        "block_multiple": block_multiple(module),
        "methods": {name: method.describe() for name, method in module.exported_methods.items()},
        "attributes": list(module._attributes),
        "config": dict(config) if config is not None else None,
        **(extras or {}),
    }


def export_model(
    module: ContractModule,
    path: str | Path,
    *,
    offline: nn.Module | None = None,
    config: Mapping[str, Any] | None = None,
    streaming: bool = True,
    extras: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Script `module`, save it to `path`, reload and verify it, then return `path`.

    `offline` is the same model in offline mode (same weights); when given,
    every deterministic method must stream to exactly its offline output,
    `delay` samples late. Without it, streaming in small blocks must equal one
    call on the whole signal. `streaming=False`: `module` is itself offline
    and one call on the reloaded file must equal `offline`'s. `extras` go into
    `ravelive.json` beside the standard entries. `seed` draws the test signals.
    Raises ModelFormatError / ModelRuntimeError and leaves no file when a check
    fails; ConfigError when the folder is missing.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the folder {path.parent} does not exist; create it or export somewhere else")
    partial = path.with_name(f".{path.name}.partial")
    module.eval()
    module.reset()
    if offline is not None:
        offline.eval()
    metadata = describe_export(module, config, streaming=streaming, extras=extras)
    try:
        script_and_save(module, partial, metadata)
        verify_export(partial, module, metadata, offline=offline, seed=seed)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("exported %s (methods %s, block multiple %d)", path, ", ".join(module._methods), block_multiple(module))
    return path


def verify_export(
    path: Path, module: ContractModule, metadata: Mapping[str, Any], *, offline: nn.Module | None, seed: int
) -> None:
    """Reload `path` as a host does and check it against what `module` declared and `metadata` says."""
    model = NNModel.load(path)
    if model.metadata != json.loads(json.dumps(metadata)):
        raise ModelFormatError(f"{path}: the ravelive.json read back differs from the one written")
    if model.sample_rate != module.sr:
        raise ModelFormatError(f"{path}: sample rate reads back as {model.sample_rate}, expected {module.sr}")
    for name, declared in module.exported_methods.items():
        spec = model.methods.get(name)
        if spec is None or list(spec.params) != declared.params:
            raise ModelFormatError(f"{path}: method '{name}' reads back as {spec}, expected params {declared.params}")
    for name in module._attributes:
        if name not in model.attributes:
            raise ModelFormatError(f"{path}: attribute '{name}' is missing after reloading")
        model.get_attribute(name)
    generator = torch.Generator().manual_seed(seed)
    streaming = metadata["streaming"]
    with torch.inference_mode():
        for batch in VERIFY_BATCHES:
            for declared in module.exported_methods.values():
                x = _test_input(declared, batch, generator)
                if not declared.deterministic:
                    _verify_random(model, declared, x, streaming)
                elif streaming:
                    _verify_streaming(model, declared, offline, x)
                elif offline is not None:
                    model.module.reset()
                    _check_equal(model, declared, model(declared.name, x), getattr(offline, declared.name)(x),
                                 "one call on the reloaded file", "the offline module's")
    model.module.reset()


def _test_input(method: ExportedMethod, batch: int, generator: torch.Generator) -> torch.Tensor:
    blocks = VERIFY_BLOCKS + -(-method.delay // method.block_multiple)  # past the delay, then some
    frames = blocks * method.block_multiple // method.in_ratio
    scale = 0.5 if method.in_ratio == 1 else 1.0  # audio in [-1, 1]-ish, latents unit variance
    return scale * torch.randn(batch, method.in_channels, frames, generator=generator)


def _run_blocks(model: NNModel, method: ExportedMethod, x: torch.Tensor) -> torch.Tensor:
    """Stream `x` through a fresh stream of `model`, one smallest block at a time."""
    model.module.reset()
    frames = method.block_multiple // method.in_ratio
    blocks = [model(method.name, x[:, :, start : start + frames]) for start in range(0, x.shape[-1], frames)]
    return torch.cat(blocks, -1)


def _verify_streaming(model: NNModel, method: ExportedMethod, offline: nn.Module | None, x: torch.Tensor) -> None:
    streamed = _run_blocks(model, method, x)
    if offline is None:
        model.module.reset()
        reference, lag = model(method.name, x), 0
    else:
        reference, lag = getattr(offline, method.name)(x), method.delay // method.out_ratio
    expected = torch.cat([torch.zeros_like(reference[:, :, :lag]), reference[:, :, : reference.shape[-1] - lag]], -1)
    _check_equal(
        model, method, streamed, expected, f"streamed in blocks of {method.block_multiple} samples",
        f"{'its offline output' if offline is not None else 'one call on the whole signal'} "
        f"delayed by {method.delay} samples",
    )


def _verify_random(model: NNModel, method: ExportedMethod, x: torch.Tensor, streaming: bool) -> None:
    """A random method: deterministic at input 0, streamed as in one call; finite at input 1."""
    if streaming:
        _verify_streaming(model, method, None, torch.zeros_like(x))
        y = _run_blocks(model, method, torch.ones_like(x))
    else:
        y = model(method.name, torch.ones_like(x))
    if not torch.isfinite(y).all():
        raise ModelRuntimeError(f"{model.path}: method '{method.name}' at batch {y.shape[0]} gives non-finite values "
                                f"at input 1 (a prior's temperature 1); fix the network before exporting")


def _check_equal(
    model: NNModel, method: ExportedMethod, got: torch.Tensor, expected: torch.Tensor, how: str, against: str
) -> None:
    error = (got - expected).abs().max().item()
    if not error <= TOLERANCE * max(1.0, expected.abs().max().item()):
        raise ModelRuntimeError(
            f"{model.path}: method '{method.name}' at batch {got.shape[0]} {how} differs from {against} "
            f"(max difference {error:.3g}); the architecture's delay arithmetic is wrong, fix it before exporting"
        )
