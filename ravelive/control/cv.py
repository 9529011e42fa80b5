"""Eurorack CV and gates on a DC-coupled interface: what `--cv-in`, `--gate-in` and `--cv-out` ask for.

On interfaces such as the Expert Sleepers ES-8/ES-9 or a DC-coupled MOTU a
control voltage is just another audio channel: a sample value times the
interface's `volts_full_scale` is the voltage at the jack (ES-8/ES-9: a
sample of 1.0 is +10 V). Channels are 1-based device channels, counted as a
user counts jacks; they must lie above the model's audio channels.

- `--cv-in CH=PARAM[:MIN:MAX]`: the voltage range of the jack (bipolar
  -5..+5 V by default, unipolar 0..10 V, or any [low, high]) is mapped onto
  MIN..MAX of the parameter (default: the parameter's own range).
- `--gate-in CH=ACTION`: each rising edge (above `gate_threshold` volts,
  re-armed below `gate_threshold - gate_hysteresis`) runs ACTION once:
  `preset-next`, `preset-recall:NAME`, `freeze` (toggles every latent
  freeze), `freeze-hold` (frozen while the gate is high), `learn:PARAM`.
- `--cv-out CH=SOURCE[:MIN:MAX]`: `level` (the output envelope, 0..1) or
  `latent/N` (the running latent, default -3..3) mapped onto the jack's
  voltage range.

Calibration lives in the `[cv]` table of a TOML file (`--cv-calibration`,
which may be the MIDI map file itself): see docs/midi.md.
"""

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ravelive.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject.toml installs tomli there)
    import tomli as tomllib

RANGES = {"bipolar": (-5.0, 5.0), "unipolar": (0.0, 10.0)}  # Eurorack's two voltage conventions
LATENT_OUT_RANGE = (-3.0, 3.0)  # a unit-normal latent spends 99.7% of its time here
GATE_ACTIONS = ("preset-next", "preset-recall", "freeze", "freeze-hold", "learn")


@dataclass(frozen=True)
class JackCalibration:
    """How samples of one jack become volts, and which voltages span the mapped range."""

    volts_full_scale: float = 10.0  # volts at a sample of 1.0 (ES-8, ES-9: 10 V)
    low: float = -5.0  # volts that map to MIN (bipolar: -5 V)
    high: float = 5.0  # volts that map to MAX

    def to_unit(self, sample: float) -> float:
        """A sample as 0..1 of the voltage range (clipped)."""
        return min(1.0, max(0.0, (sample * self.volts_full_scale - self.low) / (self.high - self.low)))

    def to_sample(self, unit: float) -> float:
        """0..1 of the voltage range as the sample that puts that voltage on the jack."""
        return (self.low + min(1.0, max(0.0, unit)) * (self.high - self.low)) / self.volts_full_scale


@dataclass(frozen=True)
class Calibration:
    """The `[cv]` table: the interface's defaults and per-jack overrides."""

    default: JackCalibration = JackCalibration()
    inputs: dict[int, JackCalibration] = field(default_factory=dict)  # [cv.in.CH]
    outputs: dict[int, JackCalibration] = field(default_factory=dict)  # [cv.out.CH]
    gate_threshold: float = 2.0  # volts: a gate opens above this (Eurorack gates are 5 or 10 V)
    gate_hysteresis: float = 1.0  # volts: it closes again below threshold - hysteresis (noise never retriggers)
    smoothing_ms: float = 10.0  # time constant of the CV input smoothing (no zipper noise, no jitter)

    def input(self, channel: int) -> JackCalibration:
        return self.inputs.get(channel, self.default)

    def output(self, channel: int) -> JackCalibration:
        return self.outputs.get(channel, self.default)


@dataclass(frozen=True)
class CvIn:
    channel: int  # 1-based device channel
    parameter: str  # a ParameterStore name, e.g. "latent/0/bias"
    minimum: float | None = None  # None: the parameter's own range
    maximum: float | None = None


@dataclass(frozen=True)
class GateIn:
    channel: int
    action: str  # one of GATE_ACTIONS
    argument: str | None = None  # preset-recall's NAME, learn's PARAM


@dataclass(frozen=True)
class CvOut:
    channel: int
    source: str  # "level" or "latent/N"
    minimum: float = 0.0  # the source value put out as the low voltage
    maximum: float = 1.0

    @property
    def latent(self) -> int | None:
        """The latent dimension this jack puts out (None: the level)."""
        return int(self.source.split("/")[1]) if self.source.startswith("latent/") else None


@dataclass(frozen=True)
class CvConfig:
    """Every CV and gate jack of `ravelive serve`, and the interface's calibration."""

    inputs: tuple[CvIn, ...] = ()
    gates: tuple[GateIn, ...] = ()
    outputs: tuple[CvOut, ...] = ()
    calibration: Calibration = Calibration()

    @property
    def channels(self) -> list[int]:
        return [jack.channel for jack in (*self.inputs, *self.gates, *self.outputs)]

    def device_channels(self, audio_channels: int) -> int:
        """Channels the device opens: the audio ones, then up to the highest CV jack.

        ConfigError when a jack is one of the audio channels or two inputs share a jack.
        """
        for jack in (*self.inputs, *self.gates, *self.outputs):
            if jack.channel <= audio_channels:
                raise ConfigError(
                    f"CV channel {jack.channel} is one of the model's {audio_channels} audio channel(s); "
                    f"use a channel above {audio_channels} (or fewer --channels)")
        ins = [jack.channel for jack in (*self.inputs, *self.gates)]
        twice = sorted({channel for channel in ins if ins.count(channel) > 1})
        outs = [jack.channel for jack in self.outputs]
        twice += sorted({channel for channel in outs if outs.count(channel) > 1})
        if twice:
            raise ConfigError(f"CV channel {twice[0]} is mapped twice; give each jack one --cv-in/--gate-in "
                              f"(inputs) or one --cv-out (outputs)")
        return max([audio_channels, *self.channels])

    @property
    def latent_outputs(self) -> bool:
        return any(jack.latent is not None for jack in self.outputs)


def parse_cv_in(text: str) -> CvIn:
    """`CH=PARAM[:MIN:MAX]`, e.g. `3=latent/0/bias:-2:2`."""
    channel, rest = _split_channel("--cv-in", text, "CH=PARAM[:MIN:MAX]", "3=latent/0/bias:-2:2")
    name, minimum, maximum = _split_range("--cv-in", text, rest, "CH=PARAM[:MIN:MAX]", "3=latent/0/bias:-2:2")
    return CvIn(channel, name, minimum, maximum)


def parse_gate_in(text: str) -> GateIn:
    """`CH=ACTION`: preset-next, preset-recall:NAME, freeze, freeze-hold, learn:PARAM."""
    form, example = "CH=ACTION", "4=freeze"
    channel, rest = _split_channel("--gate-in", text, form, example)
    action, _, argument = rest.partition(":")
    if action not in GATE_ACTIONS:
        raise ConfigError(f"--gate-in {text!r}: {action!r} is not an action; use one of preset-next, "
                          f"preset-recall:NAME, freeze, freeze-hold, learn:PARAM")
    needs = action in ("preset-recall", "learn")
    if needs and not argument:
        what = "NAME" if action == "preset-recall" else "PARAM"
        raise ConfigError(f"--gate-in {text!r}: {action} needs its {what}, e.g. {channel}={action}:"
                          f"{'verse' if action == 'preset-recall' else 'latent/0/bias'}")
    if not needs and argument:
        raise ConfigError(f"--gate-in {text!r}: {action} takes no argument; write {channel}={action}")
    return GateIn(channel, action, argument or None)


def parse_cv_out(text: str) -> CvOut:
    """`CH=SOURCE[:MIN:MAX]`: `level` (0..1) or `latent/N` (default -3..3)."""
    form, example = "CH=SOURCE[:MIN:MAX]", "5=latent/0"
    channel, rest = _split_channel("--cv-out", text, form, example)
    source, minimum, maximum = _split_range("--cv-out", text, rest, form, example)
    parts = source.split("/")
    if source == "level":
        default = (0.0, 1.0)
    elif len(parts) == 2 and parts[0] == "latent" and parts[1].isdigit():
        default = LATENT_OUT_RANGE
    else:
        raise ConfigError(f"--cv-out {text!r}: {source!r} is not a source; use level or latent/N (N: a latent "
                          f"dimension, from 0), e.g. {example}")
    if minimum is None:
        minimum, maximum = default
    return CvOut(channel, source, minimum, maximum)


def load_calibration(path: Path | str) -> Calibration:
    """The `[cv]` table of the TOML file at `path` (defaults for what it leaves out; no table: all defaults)."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"--cv-calibration {path}: cannot be read ({error.strerror})") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"--cv-calibration {path}: not valid TOML ({error})") from error
    return calibration_from_table(document.get("cv", {}), str(path))


def calibration_from_table(table: Any, where: str = "[cv]") -> Calibration:
    """A Calibration from the `[cv]` table's contents; ConfigError naming the key and the fix."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: cv must be a table ([cv]), not {type(table).__name__}")
    known = {"volts_full_scale", "range", "gate_threshold", "gate_hysteresis", "smoothing_ms", "in", "out"}
    _refuse_unknown(table, known, f"{where} [cv]")
    default = _jack(table, JackCalibration(), f"{where} [cv]")
    jacks = {}
    for side in ("in", "out"):
        section = table.get(side, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{where} [cv.{side}]: must be a table of channels, e.g. [cv.{side}.3]")
        jacks[side] = {}
        for key, value in section.items():
            if not key.isdigit() or int(key) < 1 or not isinstance(value, dict):
                raise ConfigError(f"{where} [cv.{side}.{key}]: give a channel number from 1 with a table, "
                                  f"e.g. [cv.{side}.3] range = \"unipolar\"")
            _refuse_unknown(value, {"volts_full_scale", "range"}, f"{where} [cv.{side}.{key}]")
            jacks[side][int(key)] = _jack(value, default, f"{where} [cv.{side}.{key}]")
    calibration = Calibration(default, jacks["in"], jacks["out"])
    values = {}
    for key in ("gate_threshold", "gate_hysteresis", "smoothing_ms"):
        if key in table:
            values[key] = _number(table[key], f"{where} [cv] {key}")
    calibration = replace(calibration, **values)
    if calibration.gate_hysteresis < 0 or calibration.smoothing_ms < 0:
        raise ConfigError(f"{where} [cv]: gate_hysteresis and smoothing_ms must be >= 0")
    return calibration


def _jack(table: dict, base: JackCalibration, where: str) -> JackCalibration:
    full_scale = _number(table.get("volts_full_scale", base.volts_full_scale), f"{where} volts_full_scale")
    if full_scale <= 0:
        raise ConfigError(f"{where} volts_full_scale = {full_scale:g}: give the volts of a full-scale sample, > 0 "
                          f"(ES-8/ES-9: 10)")
    low, high = base.low, base.high
    if "range" in table:
        span = table["range"]
        if isinstance(span, str) and span in RANGES:
            low, high = RANGES[span]
        elif isinstance(span, list) and len(span) == 2:
            low, high = (_number(volts, f"{where} range") for volts in span)
        else:
            raise ConfigError(f"{where} range = {span!r}: use \"bipolar\" (-5..5 V), \"unipolar\" (0..10 V) or "
                              f"[low, high] in volts")
        if not high > low:
            raise ConfigError(f"{where} range = {span!r}: the high voltage must be above the low one")
    return JackCalibration(full_scale, low, high)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r}: give a number")
    return float(value)


def _refuse_unknown(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(known))}")


def _split_channel(option: str, text: str, form: str, example: str) -> tuple[int, str]:
    channel, equals, rest = text.partition("=")
    if not equals or not rest:
        raise ConfigError(f"{option} {text!r}: expected {form}, e.g. {example}")
    if not channel.strip().isdigit() or int(channel) < 1:
        raise ConfigError(f"{option} {text!r}: {channel!r} is not a channel; give the jack's device channel, "
                          f"counted from 1, e.g. {example}")
    return int(channel), rest.strip()


def _split_range(option: str, text: str, rest: str, form: str, example: str) -> tuple[str, float | None, float | None]:
    name, *bounds = rest.split(":")
    if len(bounds) not in (0, 2):
        raise ConfigError(f"{option} {text!r}: expected {form}; give both MIN and MAX or neither, e.g. {example}")
    if not bounds:
        return name, None, None
    try:
        minimum, maximum = (float(bound) for bound in bounds)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: MIN and MAX must be numbers, e.g. {example}") from None
    if not (math.isfinite(minimum) and math.isfinite(maximum)) or minimum == maximum:
        raise ConfigError(f"{option} {text!r}: MIN and MAX must be finite and differ (MAX < MIN inverts)")
    return name, minimum, maximum


def cv_config(cv_in: tuple[str, ...] = (), gate_in: tuple[str, ...] = (), cv_out: tuple[str, ...] = (),
              calibration: Path | str | None = None) -> CvConfig | None:
    """The CvConfig for `serve`'s --cv-in, --gate-in, --cv-out and --cv-calibration (None: no jack given)."""
    if not (cv_in or gate_in or cv_out):
        if calibration is not None:
            raise ConfigError(f"--cv-calibration {calibration}: no jack to calibrate; add --cv-in, --gate-in or "
                              f"--cv-out")
        return None
    return CvConfig(tuple(map(parse_cv_in, cv_in)), tuple(map(parse_gate_in, gate_in)),
                    tuple(map(parse_cv_out, cv_out)),
                    load_calibration(calibration) if calibration is not None else Calibration())
