"""`ravelive info`: a model's description as a readable table or as JSON."""

import json
from pathlib import Path
from typing import Any

from ravelive.models.nn_model import NNModel

_MAX_LABELS_SHOWN = 4  # RAVE latents have 8-128 labels; the table shows the first few, JSON shows all
_MAX_VALUE_TEXT = 40  # characters of a tensor attribute's value in the table
_MAX_METADATA_TEXT = 100  # characters of a nested metadata entry in the table


def model_info(path: str | Path, as_json: bool = False) -> str:
    """Load the model at `path` and return its description (ModelFormatError if it cannot be loaded)."""
    description = NNModel.load(path).describe()
    if as_json:
        return json.dumps(description, indent=2)
    return format_description(description)


def format_description(description: dict[str, Any]) -> str:
    """The dict from `NNModel.describe()` as an aligned, human-readable table."""
    sample_rate = description["sample_rate"]
    lines = [
        str(description["path"]),
        f"  sample rate     {f'{sample_rate} Hz' if sample_rate else 'not declared'}",
        f"  minimum block   {description['minimum_block']} samples",
        f"  batch > 1       {'yes' if description['supports_batch'] else 'no'}",
        "",
        *_method_rows(description["methods"]),
    ]
    if description["attributes"]:
        lines += ["", *_attribute_rows(description["attributes"])]
    if description["buffer_attributes"]:
        lines += ["", f"  buffer attributes  {', '.join(description['buffer_attributes'])}"]
    if description["metadata"]:
        lines += ["", "  metadata (ravelive.json)"]
        lines += [f"    {key}: {_value_text(value, _MAX_METADATA_TEXT)}" for key, value in sorted(description["metadata"].items())]
    return "\n".join(lines)


def _method_rows(methods: dict[str, dict[str, Any]]) -> list[str]:
    header = ("method", "in_ch", "in_ratio", "out_ch", "out_ratio")
    cells = [header] + [(name, *map(str, spec["params"])) for name, spec in methods.items()]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    rows = []
    for index, row in enumerate(cells):
        rows.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index:
            spec = methods[row[0]]
            rows.append(f"      inputs:  {_labels(spec['input_labels'])}")
            rows.append(f"      outputs: {_labels(spec['output_labels'])}")
    return rows


def _attribute_rows(attributes: dict[str, dict[str, Any]]) -> list[str]:
    cells = [("attribute", "types", "value")]
    for name, entry in attributes.items():
        value = entry.get("error") or " ".join(_value_text(value) for value in entry["value"] or [])
        cells.append((name, " ".join(entry["types"]), value))
    widths = [max(len(row[column]) for row in cells) for column in range(2)]
    return ["  " + f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip() for row in cells]


def _labels(labels: list[str]) -> str:
    shown = ", ".join(labels[:_MAX_LABELS_SHOWN])
    hidden = len(labels) - _MAX_LABELS_SHOWN
    return f"{shown}, ... ({hidden} more)" if hidden > 0 else shown


def _value_text(value: Any, limit: int = _MAX_VALUE_TEXT) -> str:
    if isinstance(value, (list, dict)):
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(str(value).split())  # nn_tilde's buffer getters return multi-line text
