"""nn~ attribute types and the coercion of user values to them.

An nn~ attribute `A` declares one type id per value in its `A_params` buffer
(0 bool, 1 int, 2 float, 3 str, 4 tensor, 5 buffer). Values reach us as
Python objects (OSC, presets) or as strings (CLI `--set A=0.5`, nn~'s
`set A 0.5` messages); `coerce_values` turns either into exactly what the
model's `set_A` expects, or raises ModelAttributeError naming the value.
"""

import enum
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ravelive.errors import ModelAttributeError

_TRUE_WORDS = frozenset({"true", "1", "on", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "off", "no"})
_TENSOR_SEPARATORS = re.compile(r"[\s,;]+")


class AttributeType(enum.IntEnum):
    """Type ids of the nn~ contract, in `A_params` order."""

    BOOL = 0
    INT = 1
    FLOAT = 2
    STR = 3
    TENSOR = 4
    BUFFER = 5  # filled from audio by set_buffer_attribute; the setter's slot takes a str, which nn~ ignores

    @property
    def label(self) -> str:
        """Lower-case name used in messages and in describe(): 'bool', 'float' ..."""
        return self.name.lower()


def coerce_values(name: str, types: Sequence[AttributeType], values: Any) -> list[Any]:
    """Convert `values` (one value or a sequence) to the Python values `set_<name>` takes.

    Raises ModelAttributeError for the wrong number of values or a value that
    does not convert to its declared type.
    """
    if isinstance(values, (str, bytes, torch.Tensor, np.ndarray)) or not isinstance(values, Sequence):
        values = [values]
    if len(values) != len(types):
        expected = ", ".join(kind.label for kind in types)
        raise ModelAttributeError(
            f"attribute '{name}' takes {len(types)} value(s) ({expected}), got {len(values)}: {_show(values)}"
        )
    return [_coerce(name, index, kind, value) for index, (kind, value) in enumerate(zip(types, values))]


def to_json_value(value: Any) -> Any:
    """A getter's value as something json.dumps accepts (tensors become nested lists)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _coerce(name: str, index: int, kind: AttributeType, value: Any) -> Any:
    converters = {
        AttributeType.BOOL: _to_bool,
        AttributeType.INT: _to_int,
        AttributeType.FLOAT: _to_float,
        AttributeType.STR: _to_str,
        AttributeType.TENSOR: _to_tensor,
        AttributeType.BUFFER: _to_str,
    }
    try:
        return converters[kind](value)
    except (TypeError, ValueError) as error:
        raise ModelAttributeError(
            f"attribute '{name}' value {index}: {_show(value)} is not a valid {kind.label} ({error})"
        ) from error


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise ValueError("use true/false, 1/0, on/off or yes/no")
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    raise ValueError("use true/false or 1/0")


def _to_int(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("give a number, not a bool")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        try:
            return int(value, 0)
        except ValueError:
            value = float(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise ValueError("give a whole number like 3")


def _to_float(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("give a number, not a bool")
    if isinstance(value, (int, float, np.integer, np.floating, str)):
        result = float(value)
        if math.isnan(result):
            raise ValueError("NaN is not a usable value")
        return result
    raise TypeError("give a number like 0.5")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return str(value)
    raise TypeError("give text")


def _to_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    if isinstance(value, str):
        words = [word for word in _TENSOR_SEPARATORS.split(value.strip().strip("[]()")) if word]
        if not words:
            raise ValueError("give numbers like '0.1,0.2,0.3'")
        value = [float(word) for word in words]
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("give numbers, not a bool")
    array = np.asarray(value, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def _show(value: Any) -> str:
    """A short repr for messages (tensors by shape, long values cut)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"<array of shape {list(value.shape)}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
