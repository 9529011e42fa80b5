"""Presets: named snapshots of parameter values, saved as small JSON files.

A preset stores every parameter's value by its declared name, plus the model
it was made with (for information: a preset made for one model applies to
another as far as the names and ranges fit). Loading validates every value
through its ParameterSpec and applies the valid ones in one store update, so
the audio worker never sees half a preset. NOT_SAVED parameters are never
saved nor loaded: `preset/morph` (the position of a morph between two
presets, control/morph.py: a preset is a state, not a position between two
others) and the latent loop's record and play (actions of a performance: a
recalled preset must not start recording).

Presets live in one directory, `--presets-dir`, by default
`default_presets_dir()`: $XDG_DATA_HOME/ravelive/presets, else
~/.local/share/ravelive/presets. `names()` lists them sorted as Python sorts
strings (by code point: digits, then capitals, then lower case), and
`recall_index(n)` loads the n-th of that list (MIDI program change n): name
presets "00 intro", "01 drone" ... to fix their program numbers.

`Autosave` keeps preset `AUTOSAVE_NAME` ("last") up to date with the store
(`serve --preset last`): written AUTOSAVE_SECONDS after a change settles and
once more at close, so an installation restarts in the state it was left in,
after a power cut too.
"""

import json
import logging
import os
import threading
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
MORPH_PARAMETER = "preset/morph"  # a position between two presets, not part of any (control/morph.py)
LOOP_RECORD = "latent/loop/record"  # the latent loop's transport (dsp/latent_loop.py)
LOOP_PLAY = "latent/loop/play"
NOT_SAVED = frozenset({MORPH_PARAMETER, LOOP_RECORD, LOOP_PLAY})
AUTOSAVE_NAME = "last"  # the preset Autosave writes; `serve --preset last` resumes from it
AUTOSAVE_SECONDS = 2.0  # Autosave writes this long after the last change (a knob sweep is one write)


def default_presets_dir() -> Path:
    """Where presets live unless --presets-dir says otherwise: $XDG_DATA_HOME/ravelive/presets."""
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "ravelive" / "presets"


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
        """The presets present, sorted by code point (the order `recall_index` counts in)."""
        return self.files.names()

    def recall_index(self, index: int, store: ParameterStore, source: Hashable | None = None) -> PresetResult:
        """Load the `index`-th preset of `names()` (0-based: MIDI program change `index`)."""
        names = self.names()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
            listing = ", ".join(f"{n} {name}" for n, name in enumerate(names[:8])) + (" ..." if len(names) > 8 else "")
            raise ConfigError(
                f"preset number {index!r} is not in 0..{len(names) - 1} ({listing or 'no presets'} in "
                f"{self.files.directory}); save presets first or pick a listed number"
            )
        return self.load(names[index], store, source)

    def save(self, name: str, store: ParameterStore, model: str | None = None) -> Path:
        """Write every current value of `store` (but NOT_SAVED) as preset `name`, replacing one."""
        path = self.files.new(name)
        values = {key: value for key, value in store.values().items() if key not in NOT_SAVED}
        document = {"format": PRESET_FORMAT, "version": PRESET_VERSION, "model": model, "values": values}
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
            if parameter in NOT_SAVED:
                continue  # not a state (files from before it was excluded from saving)
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


class Autosave:
    """Saves `store` as preset AUTOSAVE_NAME after changes settle, and at close (see the module docstring)."""

    def __init__(self, library: PresetLibrary, store: ParameterStore, model: str | None = None,
                 delay: float = AUTOSAVE_SECONDS) -> None:
        self._library, self._store, self._model, self._delay = library, store, model, delay
        self._changed = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ravelive-autosave", daemon=True)

    def start(self) -> "Autosave":
        self._store.add_listener(self._on_change)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop watching, and write the state once more if it changed since the last write."""
        self._store.remove_listener(self._on_change)
        self._closing.set()
        self._thread.join(timeout=5.0)
        if self._changed.is_set():
            self._save()

    def _on_change(self, change) -> None:
        self._changed.set()  # store listener: only a flag, the writing thread never waits for the disk

    def _run(self) -> None:
        while not self._closing.is_set():
            if not self._changed.wait(0.2):
                continue
            if self._closing.wait(self._delay):  # let a knob sweep settle; close() writes what is left
                return
            self._save()

    def _save(self) -> None:
        self._changed.clear()
        try:
            self._library.save(AUTOSAVE_NAME, self._store, self._model)
        except ConfigError as error:  # a full or read-only card must not stop the audio: say so and go on
            logger.warning("autosave: %s", error)
