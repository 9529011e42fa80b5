"""Morphing between two presets with one parameter, `preset/morph` (0 = preset A, 1 = preset B).

`/ravelive/preset/morph A B` chooses the pair (`PresetMorph.choose`); moving
`preset/morph`, from OSC, a MIDI mapping or any other writer of the store,
then sets every parameter that both presets hold:
- float parameters: a + (b - a) * position;
- int parameters: the same, rounded;
- bools and strings: A's value below 0.5, B's from 0.5 on;
- never `method` (a method switch is a model hot swap, not a morph step)
  nor `preset/morph` itself; parameters only one preset holds stay as
  they are.
Values that do not fit the running model are left out when the pair is
chosen and reported, as a preset load reports them.

The store calls its listeners while it holds its lock, so the listener here
only records the newest position; a small thread writes the morphed values
(one store update per position, a burst of positions coalesces to the
newest). Writes it makes carry source MORPH_SOURCE.
"""

import logging
import threading
from collections.abc import Hashable
from typing import Any

from ravelive.control.params import Change, ParameterSpec, ParameterStore, ParameterType
from ravelive.control.presets import MORPH_PARAMETER, PresetLibrary
from ravelive.errors import ParameterError

logger = logging.getLogger(__name__)

MORPH_SOURCE = "preset/morph"  # the source of the values a morph writes
FIXED = ("method", MORPH_PARAMETER)  # never morphed


def morphed(spec: ParameterSpec, a: Any, b: Any, position: float) -> Any:
    """The value of `spec` at `position` between `a` (0) and `b` (1); see the module docstring."""
    if spec.type is ParameterType.FLOAT:
        return a + (b - a) * position
    if spec.type is ParameterType.INT:
        return round(a + (b - a) * position)
    return a if position < 0.5 else b


class PresetMorph:
    """Drives every parameter two presets share from `preset/morph`; start() before use, close() after."""

    def __init__(self, library: PresetLibrary, store: ParameterStore) -> None:
        self._library, self._store = library, store
        self._pair: tuple[str, str] | None = None
        self._table: dict[str, tuple[ParameterSpec, Any, Any]] = {}
        self._wanted: float | None = None  # newest position not yet applied
        self._condition = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ravelive-preset-morph", daemon=True)

    @property
    def pair(self) -> tuple[str, str] | None:
        """The (A, B) preset names chosen, or None."""
        return self._pair

    def start(self) -> "PresetMorph":
        self._store.add_listener(self._on_change)
        self._thread.start()
        return self

    def close(self) -> None:
        try:
            self._store.remove_listener(self._on_change)
        except ValueError:
            pass  # never started
        with self._condition:
            self._closing = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def choose(self, a: str, b: str) -> tuple[str, ...]:
        """Morph between presets `a` and `b` from now on, at once at the current position.

        ConfigError (naming the preset) when either cannot be read; returns one line per value left out.
        """
        values_a, values_b = self._library.read(a), self._library.read(b)
        table, skipped = {}, []
        for name in values_a.keys() & values_b.keys():
            if name in FIXED:
                continue
            try:
                spec = self._store.spec(name)
                table[name] = (spec, spec.coerce(values_a[name]), spec.coerce(values_b[name]))
            except ParameterError as error:
                skipped.append(str(error))
        with self._condition:
            self._pair, self._table = (a, b), table
        self.apply(self._store.get(MORPH_PARAMETER))
        logger.info("morphing %s <-> %s: %d parameters, %d left out", a, b, len(table), len(skipped))
        return tuple(sorted(skipped))

    def values_at(self, position: float) -> dict[str, Any]:
        """Every morphed value at `position` (empty before a pair is chosen)."""
        with self._condition:
            table = self._table
        return {name: morphed(spec, a, b, position) for name, (spec, a, b) in table.items()}

    def apply(self, position: float, source: Hashable = MORPH_SOURCE) -> None:
        """Write the values at `position` into the store, in one update."""
        values = self.values_at(position)
        if values:
            self._store.update(values, source)

    def _on_change(self, change: Change) -> None:
        if change.name == MORPH_PARAMETER:
            with self._condition:
                self._wanted = change.value
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._wanted is None and not self._closing:
                    self._condition.wait()
                if self._closing:
                    return
                position, self._wanted = self._wanted, None
            try:
                self.apply(position)
            except ParameterError as error:  # a model swap redeclared the store: morph what still fits next time
                logger.warning("preset morph: %s", error)
