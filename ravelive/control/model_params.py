"""The parameters a loaded model offers, and the per-block snapshot the worker reads.

`ModelControls.from_model(model)` declares, once, everything a surface can
change for that model: the method, the model's own attributes (read from the
file, with their current values as defaults), per-latent-dimension bias,
scale, freeze, replace and noise and the latent loop (models with encode and
decode), `prior/play` and `prior/temperature` (when serve plays a prior
into decode), `descriptor/<name>` and `descriptor/<name>/follow` (a
descriptor-conditioned model's knobs), input and output gain in dB, dry/wet, bypass, the preset morph position and `allow_control_output`. A method
whose output is not audio (`MethodSpec.outputs_audio`: encode's and prior's
latents) is refused by the store's check unless `allow_control_output` is on,
so the client that asked gets the usual /ravelive/error. `ModelControls.derive` turns the
store's values into a `ControlSnapshot` with everything precomputed for the
audio worker (linear gains, a ready LatentTransform). `AttributeApplier`
writes changed attribute values into the model on the worker thread, the
only thread that may touch the model.
"""

import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ravelive.control.params import ParameterSpec, ParameterStore, ParameterType
from ravelive.control.presets import LOOP_PLAY, LOOP_RECORD, MORPH_PARAMETER
from ravelive.dsp.latent import LatentTransform, PriorControl
from ravelive.dsp.latent_loop import LoopControl
from ravelive.dsp.smoothing import SILENCE_DB, db_to_gain
from ravelive.errors import ModelAttributeError, ParameterError
from ravelive.models.attributes import AttributeType
from ravelive.models.nn_model import NNModel

logger = logging.getLogger(__name__)

ALLOW_CONTROL_OUTPUT = "allow_control_output"  # the flag that lets a non-audio method play (serve --allow-control-output)
OUTPUT_GAIN = "gain/out"  # dB; the C callback applies it per period, before its limiter
LATENT_RANGE = 5.0  # latents of RAVE-style models are roughly unit normal: +-5 covers any useful bias or value
LOOP_SECONDS = (0.1, 60.0, 4.0)  # latent/loop/seconds: shortest, longest, default
PRIOR_PLAY = "prior/play"  # decode the prior's frames in place of the encoder's (serve --prior, or the model's own)
PRIOR_TEMPERATURE = "prior/temperature"
DESCRIPTOR = "descriptor"  # descriptor/<name>: a conditioned model's knob; descriptor/<name>/follow: the input's own
TEMPERATURE_RANGE = (0.0, 2.0, 1.0)  # prior/temperature: lowest (the mean path), highest, default (as trained)
_ATTRIBUTE_PARAMETER_TYPES = {
    AttributeType.BOOL: ParameterType.BOOL,
    AttributeType.INT: ParameterType.INT,
    AttributeType.FLOAT: ParameterType.FLOAT,
    AttributeType.STR: ParameterType.STRING,
}  # tensor and buffer attributes hold arrays, not one OSC value: they are set from the CLI or files


@dataclass(frozen=True)
class ControlSnapshot:
    """Every control value for one block, immutable and ready to use."""

    values: Mapping[str, Any]  # every parameter by name, as stored
    method: str | None  # the method the engine should run (None: the model has none to choose)
    attributes: Mapping[str, tuple[Any, ...]]  # model attribute name -> all its values
    latent: LatentTransform | None  # None when the model has no encode/decode pair
    input_gain: float  # linear
    output_gain: float  # linear
    wet: float  # 0 = dry only, 1 = processed only; 0 while bypassed
    bypass: bool


@dataclass(frozen=True)
class ModelControls:
    """The parameter declarations of one model, and how their values become a snapshot."""

    specs: tuple[ParameterSpec, ...]
    attribute_names: Mapping[str, tuple[str, ...]]  # model attribute -> its parameter names, in value order
    latent_size: int  # latent dimensions (0: no latent controls)
    control_methods: Mapping[str, str] = dataclasses.field(default_factory=dict)  # method -> its output, if not audio
    latent_rate: float = 0.0  # latent frames per second (the loop's seconds -> frames)
    prior: bool = False  # whether prior/play and prior/temperature are declared
    descriptors: tuple[str, ...] = ()  # a conditioned model's descriptor knobs, descriptor/<name> and .../follow

    @classmethod
    def from_model(cls, model: NNModel, methods: Sequence[str] | None = None, method: str | None = None,
                   allow_control_output: bool = False, prior: bool = False) -> "ModelControls":
        """Declare the controls of `model`; `methods` are the choices for `method` (default: all).

        `allow_control_output` is the flag's default (a store that already holds it keeps its value on install).
        `prior`: a prior plays into this model's decode (the engine's `prior`): declare its two parameters.
        """
        methods = tuple(methods if methods is not None else model.methods)
        specs: list[ParameterSpec] = []
        if methods:
            default = method if method in methods else _default_method(model, methods)
            specs.append(
                ParameterSpec("method", ParameterType.STRING, default, "model method run on the stream", choices=methods)
            )
        attribute_names = {}
        for name, attribute in model.attributes.items():
            attribute_specs = _attribute_specs(model, name, attribute.types)
            if attribute_specs:
                attribute_names[name] = tuple(spec.name for spec in attribute_specs)
                specs.extend(attribute_specs)
        latent_size = _latent_size(model)
        for dimension in range(latent_size):
            specs.extend(_latent_specs(dimension))
        if latent_size:
            specs.extend(_loop_specs())
        prior = prior and bool(latent_size)
        if prior:
            specs.extend(_prior_specs())
        descriptors = model.descriptors if latent_size else ()
        for name in descriptors:
            specs.extend(_descriptor_specs(name))
        specs.extend(_mix_specs())
        specs.append(ParameterSpec(ALLOW_CONTROL_OUTPUT, ParameterType.BOOL, bool(allow_control_output),
                                   "let `method` pick a method whose output is not audio (encode, prior): "
                                   "its control-rate values are played as held DC"))
        control_methods = {name: model.methods[name].describe_output() for name in methods
                           if not model.methods[name].outputs_audio}
        latent_rate = (model.sample_rate or 0) / model.methods["encode"].out_ratio if latent_size else 0.0
        return cls(tuple(specs), attribute_names, latent_size, MappingProxyType(control_methods), latent_rate, prior,
                   descriptors)

    def check(self, values: Mapping[str, Any], changed: Collection[str]) -> None:
        """The store's check of a write: ParameterError when `values` (all of them, after the write of the
        names in `changed`) would play a non-audio method without allow_control_output."""
        method = values.get("method")
        if method not in self.control_methods or values.get(ALLOW_CONTROL_OUTPUT):
            return
        if "method" not in changed and ALLOW_CONTROL_OUTPUT not in changed:
            return  # a write of something else is not this rule's business
        what = f"'{method}' outputs {self.control_methods[method]}, not audio (played, it is held DC)"
        if "method" not in changed:  # the flag was turned off under a running control-rate method
            audio = [spec.choices for spec in self.specs if spec.name == "method"][0]
            audio = [name for name in audio if name not in self.control_methods]
            raise ParameterError(f"{ALLOW_CONTROL_OUTPUT}: {what} and is playing; select an audio method "
                                 f"({', '.join(audio) or 'none'}) first")
        raise ParameterError(f"method: {what}; send /ravelive/{ALLOW_CONTROL_OUTPUT} 1 first "
                             f"(or start serve with --allow-control-output) to play it anyway")

    def derive(self, values: Mapping[str, Any]) -> ControlSnapshot:
        """The snapshot for `values` (a complete mapping, as ParameterStore passes it)."""
        latent = None
        if self.latent_size:
            dimensions = [f"latent/{d}/" for d in range(self.latent_size)]
            latent = LatentTransform(
                bias=tuple(values[d + "bias"] for d in dimensions),
                scale=tuple(values[d + "scale"] for d in dimensions),
                freeze=tuple(values[d + "freeze"] for d in dimensions),
                replace=tuple(values[d + "replace_value"] if values[d + "replace"] else None for d in dimensions),
                noise=tuple(values[d + "noise"] for d in dimensions),
                loop=LoopControl(values[LOOP_RECORD], values[LOOP_PLAY], values["latent/loop/overdub"],
                                 round(values["latent/loop/seconds"] * self.latent_rate),
                                 values["latent/loop/start"], values["latent/loop/end"]),
                prior=PriorControl(values[PRIOR_PLAY], values[PRIOR_TEMPERATURE]) if self.prior else PriorControl(),
                descriptors=tuple(None if values[f"{DESCRIPTOR}/{name}/follow"] else values[f"{DESCRIPTOR}/{name}"]
                                  for name in self.descriptors),
            )
        bypass = values["bypass"]
        return ControlSnapshot(
            values=values,
            method=values.get("method"),
            attributes=MappingProxyType({name: tuple(values[p] for p in names) for name, names in self.attribute_names.items()}),
            latent=latent,
            input_gain=db_to_gain(values["gain/in"]),
            output_gain=db_to_gain(values[OUTPUT_GAIN]),
            wet=0.0 if bypass else values["mix"],
            bypass=bypass,
        )

    def store(self) -> ParameterStore[ControlSnapshot]:
        """A new store holding these parameters at their defaults."""
        return ParameterStore(self.specs, self.derive, self.check)

    def install(self, store: ParameterStore) -> None:
        """Make `store` hold these declarations (after a model swap); values that still fit are kept."""
        store.redeclare(self.specs, self.derive, self.check)


class AttributeApplier:
    """Writes attribute values that changed in the snapshot into the model (worker thread only).

    A value the model refuses is logged, counted, and the store is put back
    to the model's actual value so every client sees what is really playing.
    """

    def __init__(self, model: NNModel, controls: ModelControls, store: ParameterStore) -> None:
        self._model = model
        self._controls = controls
        self._store = store
        # What the model holds now: after a swap (a fresh file) the store's values differ, and the first
        # apply() writes them, so the new model plays the values clients read.
        self._applied = _current_attributes(model, controls)
        self.refusals = 0

    def apply(self, snapshot: ControlSnapshot) -> None:
        """Set every attribute whose values differ from the last ones applied."""
        for name, values in snapshot.attributes.items():
            if self._applied.get(name) == values:
                continue
            try:
                self._model.set_attribute(name, values)
                self._applied[name] = values
            except ModelAttributeError as error:
                self.refusals += 1
                logger.warning("%s", error)
                self._put_back(name)

    def _put_back(self, name: str) -> None:
        try:
            actual = self._model.get_attribute(name)
        except ModelAttributeError:
            actual = self._applied.get(name)
        if actual is None:
            return
        self._applied[name] = tuple(actual)
        self._store.update(dict(zip(self._controls.attribute_names[name], actual)), source=None)


def _current_attributes(model: NNModel, controls: ModelControls) -> dict[str, tuple[Any, ...]]:
    """The model's own values of every attribute that has parameters (one it cannot read is left out)."""
    current = {}
    for name in controls.attribute_names:
        try:
            current[name] = tuple(model.get_attribute(name))
        except ModelAttributeError:
            pass  # unreadable: the first apply() sets it
    return current


def _default_method(model: NNModel, methods: Sequence[str]) -> str:
    """forward (as the engine picks), else the first method whose output is audio, else the first."""
    if "forward" in methods:
        return "forward"
    return next((name for name in methods if model.methods[name].outputs_audio), methods[0])


def _latent_size(model: NNModel) -> int:
    """Latent dimensions when encode feeds decode (the engine's latent path), else 0."""
    encode, decode = model.methods.get("encode"), model.methods.get("decode")
    if encode is None or decode is None or encode.out_channels + len(model.descriptors) != decode.in_channels:
        return 0
    return encode.out_channels


def _attribute_specs(model: NNModel, name: str, types: Sequence[AttributeType]) -> list[ParameterSpec]:
    """One parameter per value of attribute `name`: `attr/name`, or `attr/name/0`, `attr/name/1` ..."""
    if not types or any(kind not in _ATTRIBUTE_PARAMETER_TYPES for kind in types):
        logger.debug("attribute %s (%s) has no OSC parameter: it holds arrays", name, types)
        return []
    try:
        current = model.get_attribute(name)
    except ModelAttributeError:
        current = ()
    if len(current) != len(types):
        current = tuple(_EMPTY_VALUES[_ATTRIBUTE_PARAMETER_TYPES[kind]] for kind in types)
    specs = []
    for index, (kind, value) in enumerate(zip(types, current)):
        parameter_type = _ATTRIBUTE_PARAMETER_TYPES[kind]
        suffix = "" if len(types) == 1 else f"/{index}"
        label = kind.label if len(types) == 1 else f"{kind.label}, value {index} of {len(types)}"
        spec = ParameterSpec(f"attr/{name}{suffix}", parameter_type, value, f"model attribute {name} ({label})")
        try:
            spec = ParameterSpec(spec.name, spec.type, spec.coerce(value), spec.description)
        except ParameterError:
            spec = ParameterSpec(spec.name, spec.type, _EMPTY_VALUES[parameter_type], spec.description)
        specs.append(spec)
    return specs


_EMPTY_VALUES = {ParameterType.BOOL: False, ParameterType.INT: 0, ParameterType.FLOAT: 0.0, ParameterType.STRING: ""}


def _latent_specs(dimension: int) -> list[ParameterSpec]:
    prefix = f"latent/{dimension}"
    return [
        ParameterSpec(f"{prefix}/bias", ParameterType.FLOAT, 0.0, f"added to latent dimension {dimension}",
                      -LATENT_RANGE, LATENT_RANGE),
        ParameterSpec(f"{prefix}/scale", ParameterType.FLOAT, 1.0, f"multiplies latent dimension {dimension} (before the bias)",
                      -4.0, 4.0),
        ParameterSpec(f"{prefix}/freeze", ParameterType.BOOL, False, f"hold the last value of latent dimension {dimension}"),
        ParameterSpec(f"{prefix}/replace", ParameterType.BOOL, False,
                      f"play replace_value in place of latent dimension {dimension}"),
        ParameterSpec(f"{prefix}/replace_value", ParameterType.FLOAT, 0.0,
                      f"the value latent dimension {dimension} takes while replace is on", -LATENT_RANGE, LATENT_RANGE),
        ParameterSpec(f"{prefix}/noise", ParameterType.FLOAT, 0.0, f"standard deviation of noise added to latent dimension {dimension}",
                      0.0, 4.0),
    ]


def _loop_specs() -> list[ParameterSpec]:
    shortest, longest, default = LOOP_SECONDS
    return [
        ParameterSpec(LOOP_RECORD, ParameterType.BOOL, False,
                      "record the encoder's latent from the loop's start; off closes the loop (while playing: "
                      "overdub)"),
        ParameterSpec(LOOP_PLAY, ParameterType.BOOL, False,
                      "decode the recorded loop, cycling, in place of the live latent (the latent edits still act)"),
        ParameterSpec("latent/loop/overdub", ParameterType.FLOAT, 0.5,
                      "share of the live latent blended into each frame recorded while the loop plays", 0.0, 1.0),
        ParameterSpec("latent/loop/seconds", ParameterType.FLOAT, default,
                      "longest loop; a recording reaching it closes by itself", shortest, longest, unit="s"),
        ParameterSpec("latent/loop/start", ParameterType.FLOAT, 0.0,
                      "loop point: where in the loop (0 = its start, 1 = its end) play cycles from", 0.0, 1.0),
        ParameterSpec("latent/loop/end", ParameterType.FLOAT, 1.0,
                      "loop point: where in the loop play cycles back to start (at least one frame after it)",
                      0.0, 1.0),
    ]


def _prior_specs() -> list[ParameterSpec]:
    lowest, highest, default = TEMPERATURE_RANGE
    return [
        ParameterSpec(PRIOR_PLAY, ParameterType.BOOL, False,
                      "decode the prior's latent frames in place of the encoder's (the latent edits and the loop still "
                      "act; the input is not heard)"),
        ParameterSpec(PRIOR_TEMPERATURE, ParameterType.FLOAT, default,
                      "the prior's sampling temperature: 0 plays its mean path, 1 samples as trained, above 1 wilder",
                      lowest, highest),
    ]


def _descriptor_specs(name: str) -> list[ParameterSpec]:
    return [
        ParameterSpec(f"{DESCRIPTOR}/{name}", ParameterType.FLOAT, 0.0,
                      f"the {name} the decoder plays, while follow is off: -1 and 1 are the training corpus's "
                      f"lowest and highest", -1.0, 1.0),
        ParameterSpec(f"{DESCRIPTOR}/{name}/follow", ParameterType.BOOL, True,
                      f"take {name} from the live input (on) or from descriptor/{name} (off)"),
    ]


def _mix_specs() -> list[ParameterSpec]:
    return [
        ParameterSpec("gain/in", ParameterType.FLOAT, 0.0, f"input gain before the model ({SILENCE_DB:g} dB mutes)",
                      SILENCE_DB, 24.0, unit="dB"),
        ParameterSpec(OUTPUT_GAIN, ParameterType.FLOAT, 0.0, f"gain of the processed signal ({SILENCE_DB:g} dB mutes)",
                      SILENCE_DB, 24.0, unit="dB"),
        ParameterSpec("mix", ParameterType.FLOAT, 1.0, "dry/wet: 0 = input only, 1 = processed only", 0.0, 1.0),
        ParameterSpec("bypass", ParameterType.BOOL, False, "play the input (latency-aligned) instead of the model; the model keeps running"),
        ParameterSpec(MORPH_PARAMETER, ParameterType.FLOAT, 0.0,
                      "morph position between presets A and B (send this address the two names to choose them): "
                      "0 = A, 1 = B",
                      0.0, 1.0),
    ]
