"""Presets: named snapshots of parameter values, saved as small JSON files.

A preset stores every parameter's value by its declared name, plus the model
it was made with (for information: a preset made for one model applies to
another as far as the names and ranges fit). Loading validates every value
through its ParameterSpec and applies the valid ones in one store update, so
the audio worker never sees half a preset.
"""

import json
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ravelive.control.named_files import NamedFiles
from ravelive.control.params import ParameterStore
from ravelive.errors import ConfigError, ParameterError

logger = logging.getLogger(__name__)

PRESET_FORMAT = "ravelive-preset"
PRESET_VERSION = 1
PRESET_SUFFIX = ".json"
MAX_PRESET_BYTES = 1 << 20  # a preset with a few thousand values is ~100 kB; refuse anything far larger


@dataclass(frozen=True)
class PresetResult:
    """What loading a preset did."""

    applied: int  # values stored
    skipped: tuple[str, ...]  # one line per value not applied: unknown name or refused value


class PresetLibrary:
    """The presets of one directory, saved from and loaded into a ParameterStore."""

    def __init__(self, directory: Path | str) -> None:
        self.files = NamedFiles(directory, PRESET_SUFFIX, "preset")

    def names(self) -> list[str]:
        """The presets present, sorted."""
        return self.files.names()

    def save(self, name: str, store: ParameterStore, model: str | None = None) -> Path:
        """Write every current value of `store` as preset `name` (replacing one of that name)."""
        path = self.files.new(name)
        document = {"format": PRESET_FORMAT, "version": PRESET_VERSION, "model": model, "values": store.values()}
        temporary = path.with_name(path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            temporary.replace(path)  # atomic: a crash never leaves half a preset
        except OSError as error:
            raise ConfigError(f"preset {path} cannot be written ({error.strerror})") from error
        logger.info("saved preset %s", path)
        return path

    def load(self, name: str, store: ParameterStore, source: Hashable | None = None) -> PresetResult:
        """Apply preset `name` to `store`: valid values in one update, the rest reported in `skipped`."""
        values = self.read(name)
        accepted: dict[str, Any] = {}
        skipped = []
        for parameter, value in values.items():
            try:
                store.spec(parameter).coerce(value)
            except ParameterError as error:
                skipped.append(str(error))
                continue
            accepted[parameter] = value
        if accepted:
            store.update(accepted, source)
        logger.info("loaded preset %s: %d values, %d skipped", name, len(accepted), len(skipped))
        return PresetResult(len(accepted), tuple(skipped))

    def read(self, name: str) -> dict[str, Any]:
        """The values of preset `name`; ConfigError naming the file and the fault."""
        path = self.files.existing(name)
        try:
            if path.stat().st_size > MAX_PRESET_BYTES:
                raise ConfigError(f"preset {path} is larger than {MAX_PRESET_BYTES} bytes; is it a preset?")
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"preset {path} cannot be read ({error.strerror})") from error
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"preset {path} is not valid JSON ({error}); save it again") from error
        if not isinstance(document, dict) or document.get("format") != PRESET_FORMAT:
            raise ConfigError(f"preset {path} is not a ravelive preset (no \"format\": \"{PRESET_FORMAT}\")")
        if document.get("version") != PRESET_VERSION:
            raise ConfigError(
                f"preset {path} has version {document.get('version')!r}; this ravelive reads version {PRESET_VERSION}"
            )
        values = document.get("values")
        if not isinstance(values, dict):
            raise ConfigError(f"preset {path} has no \"values\" object")
        return values
