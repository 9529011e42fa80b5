"""NNModel: a loaded nn~-contract model (RAVE / nn_tilde streaming exports).

The contract is read once at load (ravelive/models/contract.py); after that,
calls are checked with tuple compares only, attributes are read and written
with type coercion, and a setter's refusal is an error, not a silent no-op.

The sample rate is reported, never changed: nn~ calls `set_sample_rate(host
rate)` at load, which for RAVE-style models only relabels the model (it still
runs at its training rate, so the sound is pitched). ravelive resamples the
stream to the model's native rate instead, so `set_sample_rate` is not called.
"""

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ravelive.errors import AudioFileError, ModelAttributeError, ModelFormatError, ModelRuntimeError, one_line
from ravelive.models.attributes import coerce_values, to_json_value
from ravelive.models.contract import MODEL_ERRORS, AttributeSpec, MethodSpec, read_contract
from ravelive.models.torchscript import first_line, load_scripted, load_scripted_with_metadata

__all__ = ["AttributeSpec", "MethodSpec", "NNModel"]

logger = logging.getLogger(__name__)


class NNModel:
    """A loaded nn~ model: contract read once at load, checked calls, attributes, describe()."""

    def __init__(
        self,
        path: Path,
        module: torch.jit.ScriptModule,
        methods: dict[str, MethodSpec],
        attributes: dict[str, AttributeSpec],
        sample_rate: int | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        self.path = path
        self.module = module
        self.methods = methods
        self.attributes = attributes
        self.sample_rate = sample_rate
        self.metadata = metadata
        self._callables = {name: getattr(module, name) for name in methods}
        self._expected_shapes: dict[tuple[str, torch.Size], tuple[int, int, int]] = {}
        self._batch_support: dict[str, bool] = {}

    @classmethod
    def load(cls, path: str | Path) -> "NNModel":
        """Open `path` and read its contract; ModelFormatError names the file and the fault."""
        path = Path(path)
        module, metadata = load_scripted_with_metadata(path)
        contract = read_contract(path, module)
        logger.info("loaded %s: methods %s, sample rate %s", path, ", ".join(contract.methods), contract.sample_rate)
        return cls(path, module, contract.methods, contract.attributes, contract.sample_rate, metadata)

    def described(self, key: str) -> Any:
        """The `key` entry of the file's ravelive.json; None when it has none (or no ravelive.json at all)."""
        return self.metadata.get(key) if isinstance(self.metadata, dict) else None

    @property
    def streaming(self) -> bool:
        """Whether the file plays in blocks: False only for a ravelive export marked `"streaming": false`."""
        return self.described("streaming") is not False

    @property
    def descriptors(self) -> tuple[str, ...]:
        """A descriptor-conditioned ravelive export's descriptor names: decode's inputs after the latent."""
        described = self.described("descriptors")
        return tuple(described["names"]) if isinstance(described, dict) else ()

    def require_streaming(self) -> None:
        """Refuse a non-streaming export where blocks are played (serve, process, generate, bench)."""
        if not self.streaming:
            raise ModelFormatError(
                f"{self.path} was exported with --no-streaming (plain convolutions, no cached state), so it cannot "
                "play in blocks: re-export with --streaming (ravelive export RUN --out MODEL.ts)"
            )

    # ---- methods -------------------------------------------------------------------------

    def method(self, name: str) -> MethodSpec:
        """The spec of method `name`; ModelRuntimeError listing the methods when there is none."""
        try:
            return self.methods[name]
        except KeyError:
            raise ModelRuntimeError(
                f"{self.path}: no method '{name}'; this model has: {', '.join(self.methods)}"
            ) from None

    def delay(self, method: str) -> int:
        """Samples by which `method`'s streamed output lags its offline output, as ravelive.json states it.

        0 for a file that does not state it (RAVE's and nn~'s own exports): their delay is not known here.
        """
        described = self.described("methods")
        entry = described.get(method) if isinstance(described, dict) else None
        return int(entry["delay"]) if isinstance(entry, dict) and "delay" in entry else 0

    def minimum_block(self, methods: Iterable[str] | None = None) -> int:
        """Smallest legal model block B for `methods` (default: all): a multiple of every ratio."""
        names = list(self.methods) if methods is None else list(methods)
        block = 1
        for name in names:
            spec = self.method(name)
            block = math.lcm(block, spec.in_ratio, spec.out_ratio)
        return block

    def __call__(self, method: str, x: torch.Tensor) -> torch.Tensor:
        """Run `method` on one block x [batch, in_ch, B // in_ratio]; returns [batch, out_ch, B // out_ratio].

        ModelRuntimeError (one line: file, method, the model's own message)
        when the input does not fit, the model raises, or its output breaks
        the method's `_params`.
        """
        key = (method, x.shape)
        expected = self._expected_shapes.get(key)
        if expected is None:
            expected = self._expected_output(method, x)
            self._expected_shapes[key] = expected
        try:
            y = self._callables[method](x)
        except MODEL_ERRORS as error:
            raise ModelRuntimeError(f"{self.path}: method '{method}' raised: {first_line(error)}") from error
        if not isinstance(y, torch.Tensor) or y.shape != expected or y.dtype != torch.float32:
            raise ModelRuntimeError(self._describe_bad_output(method, expected, y))
        return y

    def _expected_output(self, method: str, x: torch.Tensor) -> tuple[int, int, int]:
        spec = self.method(method)
        if x.dim() != 3 or x.shape[1] != spec.in_channels:
            raise ModelRuntimeError(
                f"{self.path}: method '{method}' takes [batch, {spec.in_channels}, frames], got {list(x.shape)}"
            )
        if x.dtype != torch.float32:
            raise ModelRuntimeError(f"{self.path}: method '{method}' takes float32 input, got {x.dtype}")
        block = x.shape[2] * spec.in_ratio
        if block % spec.out_ratio:
            raise ModelRuntimeError(
                f"{self.path}: method '{method}': {x.shape[2]} input frames make a block of {block} samples, "
                f"not a multiple of its output ratio {spec.out_ratio}; use a multiple of {self.minimum_block([method])}"
            )
        return spec.output_shape(block, batch=x.shape[0])

    def _describe_bad_output(self, method: str, expected: tuple[int, int, int], y: Any) -> str:
        prefix = f"{self.path}: method '{method}'"
        if not isinstance(y, torch.Tensor):
            return f"{prefix} returned {type(y).__name__}, expected a float32 tensor of shape {list(expected)}"
        if y.shape != expected:
            return (
                f"{prefix} returned shape {list(y.shape)}, its {method}_params "
                f"{list(self.methods[method].params)} require {list(expected)}"
            )
        return f"{prefix} returned {y.dtype}, expected float32"

    def supports_batch(self, method: str | None = None) -> bool:
        """Whether `method` (default: every method) accepts batch 2, as mc.nn~ needs.

        Probed once on a fresh load of the same file, so the streaming state
        of this instance is never touched; the answer is cached.
        """
        names = list(self.methods) if method is None else [self.method(method).name]
        missing = [name for name in names if name not in self._batch_support]
        if missing:
            probe = NNModel(self.path, load_scripted(self.path), self.methods, {}, self.sample_rate, None)
            block = self.minimum_block()
            for name in missing:
                x = torch.zeros(probe.methods[name].input_shape(block, batch=2))
                try:
                    with torch.inference_mode():
                        probe(name, x)
                    self._batch_support[name] = True
                except ModelRuntimeError as error:
                    logger.debug("batch probe of %s failed: %s", name, error)
                    self._batch_support[name] = False
        return all(self._batch_support[name] for name in names)

    def reset_state(self) -> bool:
        """Call the model's own `reset()` (clears its streaming caches); False when it has none or it fails.

        Only a method named `reset` that is not a contract method counts (RAVE's `reset_target` is an
        attribute); a model without one gets its fresh state by being loaded again.
        """
        if "reset" in self.methods or not self.module._c._has_method("reset"):
            return False
        try:
            self.module.reset()
        except MODEL_ERRORS as error:
            logger.warning("%s: reset() raised: %s", self.path, first_line(error))
            return False
        return True

    # ---- attributes ------------------------------------------------------------------------

    def attribute(self, name: str) -> AttributeSpec:
        """The spec of attribute `name`; ModelAttributeError listing the attributes when there is none."""
        try:
            return self.attributes[name]
        except KeyError:
            known = ", ".join(self.attributes) or "none"
            raise ModelAttributeError(f"{self.path}: no attribute '{name}'; this model has: {known}") from None

    def get_attribute(self, name: str) -> tuple[Any, ...]:
        """Current values of attribute `name`, read with `get_<name>()`."""
        spec = self.attribute(name)
        if not spec.readable:
            raise ModelAttributeError(f"{self.path}: attribute '{name}' has no getter get_{name}()")
        try:
            result = getattr(self.module, f"get_{name}")()
        except MODEL_ERRORS as error:
            raise ModelAttributeError(f"{self.path}: get_{name}() raised: {first_line(error)}") from error
        return tuple(result) if isinstance(result, (list, tuple)) else (result,)

    def set_attribute(self, name: str, values: Any) -> None:
        """Write attribute `name` with `set_<name>(*values)`, each value coerced to its type id.

        Strings are parsed ("0.5", "true", "1,2,3"), so CLI and OSC text works.
        A non-zero return from the setter is a refusal: ModelAttributeError.
        """
        spec = self.attribute(name)
        if not spec.writable:
            raise ModelAttributeError(f"{self.path}: attribute '{name}' has no setter set_{name}()")
        coerced = coerce_values(name, spec.types, values)
        try:
            status = getattr(self.module, f"set_{name}")(*coerced)
        except MODEL_ERRORS as error:
            raise ModelAttributeError(f"{self.path}: set_{name}{_show_args(coerced)} raised: {first_line(error)}") from error
        if status != 0:
            raise ModelAttributeError(
                f"{self.path}: the model refused {name} = {_show_args(coerced)} (set_{name} returned {status})"
            )
        logger.info("%s: %s = %s", self.path.name, name, _show_args(coerced))

    def get_buffer_attributes(self) -> list[str]:
        """Names of buffer attributes ("attr#index"), empty when the model has none."""
        if not self.module._c._has_method("get_buffer_attributes"):
            return []
        try:
            return list(self.module.get_buffer_attributes())
        except MODEL_ERRORS as error:
            raise ModelAttributeError(f"{self.path}: get_buffer_attributes() raised: {first_line(error)}") from error

    def set_buffer_attribute(self, name: str, audio: torch.Tensor | np.ndarray, sample_rate: int) -> None:
        """Fill buffer attribute `name` ("attr#index") with audio [channels, samples] at `sample_rate`."""
        names = self.get_buffer_attributes()
        if name not in names:
            raise ModelAttributeError(
                f"{self.path}: no buffer attribute '{name}'; this model has: {', '.join(names) or 'none'}"
            )
        tensor = torch.as_tensor(np.asarray(audio, dtype=np.float32) if isinstance(audio, np.ndarray) else audio)
        tensor = tensor.to(torch.float32)
        if tensor.dim() != 2 or tensor.shape[1] == 0:
            raise ModelAttributeError(
                f"{self.path}: buffer '{name}' takes audio [channels, samples], got shape {list(tensor.shape)}"
            )
        try:
            status = self.module.set_buffer_attribute(name, tensor, int(sample_rate))
        except MODEL_ERRORS as error:
            raise ModelAttributeError(f"{self.path}: set_buffer_attribute('{name}') raised: {first_line(error)}") from error
        if status != 0:
            raise ModelAttributeError(
                f"{self.path}: the model refused {list(tensor.shape)} samples at {sample_rate} Hz for buffer "
                f"'{name}' (set_buffer_attribute returned {status})"
            )

    def set_buffer_attribute_from_file(self, name: str, audio_path: str | Path) -> None:
        """Fill buffer attribute `name` from an audio file, at the file's own sample rate."""
        import soundfile

        try:
            data, sample_rate = soundfile.read(str(audio_path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, OSError, RuntimeError) as error:
            raise AudioFileError(f"{audio_path}: cannot read audio for buffer '{name}' ({one_line(error)})") from error
        self.set_buffer_attribute(name, data.T, sample_rate)

    # ---- description -----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Everything `ravelive info` shows, as a JSON-ready dict."""
        return {
            "path": str(self.path),
            "sample_rate": self.sample_rate,
            "minimum_block": self.minimum_block(),
            "supports_batch": self.supports_batch(),
            "methods": {
                spec.name: {
                    "params": list(spec.params),
                    "input_labels": list(spec.input_labels),
                    "output_labels": list(spec.output_labels),
                }
                for spec in self.methods.values()
            },
            "attributes": {spec.name: self._describe_attribute(spec) for spec in self.attributes.values()},
            "buffer_attributes": self.get_buffer_attributes(),
            "metadata": self.metadata,
        }

    def _describe_attribute(self, spec: AttributeSpec) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "types": [kind.label for kind in spec.types],
            "type_ids": [int(kind) for kind in spec.types],
            "value": None,
        }
        if spec.readable:
            try:
                entry["value"] = to_json_value(list(self.get_attribute(spec.name)))
            except ModelAttributeError as error:
                entry["error"] = str(error)
        return entry


def _show_args(values: Sequence[Any]) -> str:
    shown = ", ".join(f"<tensor {list(value.shape)}>" if isinstance(value, torch.Tensor) else repr(value) for value in values)
    return f"({shown})"
