"""Open and write TorchScript archives safely.

A `.ts` model file is a zip archive written by `torch.jit.save`. We only ever
read it with `torch.jit.load` (TorchScript's own restricted unpickler), never
with `torch.load`/`pickle`, because a network client may name the file.
Before handing the file to torch we look at it ourselves so that every way it
can be wrong becomes one `ModelFormatError` line naming the file and the fault.

TorchScript is deprecated in torch 2.13 and warns on every call; the helpers
here silence that one warning and nothing else. Everything in ravelive that
scripts, saves or loads a model goes through this module.
"""

import contextlib
import json
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import torch

from ravelive.errors import ModelFormatError

METADATA_FILE = "ravelive.json"
"""Name of the optional metadata file inside archives that ravelive exports."""

_ZIP_MAGIC = b"PK\x03\x04"
_EXPORT_HINT = "export the model with torch.jit.script(model).save(path) (RAVE: `rave export --streaming`)"
_MAX_MESSAGE = 200  # characters of a model's own error message we quote
_INTERPRETER_PREFIX = "The following operation failed in the TorchScript interpreter"

# First bytes of files people mistake for models, to say what the file is.
_KNOWN_SIGNATURES = (
    (b"RIFF", "a RIFF/WAV audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"FORM", "an AIFF audio file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x08", "an ONNX or protobuf file"),
)


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence TorchScript's deprecation warning (and only it) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*TorchScript.*deprecated", category=DeprecationWarning)
        yield


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """`torch.jit.script(module)` without the deprecation warning."""
    with quiet_torchscript():
        return torch.jit.script(module)


def script_and_save(module: torch.nn.Module, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Script `module` (unless it already is a ScriptModule) and save it to `path`.

    `metadata`, when given, is stored as JSON in the archive's extra file
    `ravelive.json`, which `load_metadata` and `NNModel.describe()` read back.
    """
    path = Path(path)
    scripted = module if isinstance(module, torch.jit.ScriptModule) else script(module)
    extra_files = {METADATA_FILE: json.dumps(metadata)} if metadata is not None else {}
    with quiet_torchscript():
        torch.jit.save(scripted, str(path), _extra_files=extra_files)
    return path


def load_scripted(path: str | Path) -> torch.jit.ScriptModule:
    """Load a TorchScript archive on the CPU, in eval mode.

    Raises ModelFormatError, one line naming the file and the fault, for a
    missing file, a directory, a file that is not a zip archive, a
    `torch.save` checkpoint, a truncated archive, or anything else
    `torch.jit.load` refuses.
    """
    module, _ = _load(Path(path), with_metadata=False)
    return module


def load_scripted_with_metadata(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any] | None]:
    """`load_scripted` plus the archive's `ravelive.json` metadata (None when absent)."""
    return _load(Path(path), with_metadata=True)


def _load(path: Path, with_metadata: bool) -> tuple[torch.jit.ScriptModule, dict[str, Any] | None]:
    check_archive(path)
    extra_files = {METADATA_FILE: ""} if with_metadata else {}
    try:
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra_files)
    except (RuntimeError, ValueError, OSError) as error:
        raise ModelFormatError(f"{path}: not a loadable TorchScript archive ({first_line(error)})") from error
    module.eval()
    metadata = _parse_metadata(path, extra_files.get(METADATA_FILE)) if with_metadata else None
    return module, metadata


def check_archive(path: Path) -> None:
    """Raise ModelFormatError unless `path` looks like a complete TorchScript zip archive."""
    if not path.exists():
        raise ModelFormatError(f"{path}: no such file (give the path of an nn~ .ts model)")
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a directory, expected a TorchScript .ts file")
    try:
        with path.open("rb") as file:
            head = file.read(8)
    except OSError as error:
        raise ModelFormatError(f"{path}: cannot read the file ({error.strerror})") from error
    if not head:
        raise ModelFormatError(f"{path}: the file is empty, expected a TorchScript .ts archive")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise ModelFormatError(f"{path}: a legacy torch.save checkpoint (a pickle), not a TorchScript export; {_EXPORT_HINT}")
    if not head.startswith(_ZIP_MAGIC):
        raise ModelFormatError(f"{path}: not a TorchScript archive ({_describe_non_zip(head)})")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()  # torch.jit.load checks no checksums: a flipped byte would load
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise ModelFormatError(
            f"{path}: truncated or corrupt TorchScript archive ({error}); copy or export the model again"
        ) from error
    if damaged is not None:
        raise ModelFormatError(
            f"{path}: corrupt TorchScript archive (checksum mismatch in '{damaged}'); copy or export the model again"
        )
    if not any("/code/" in name for name in names):
        if any(name.endswith("/data.pkl") for name in names):
            raise ModelFormatError(
                f"{path}: a torch.save checkpoint or state_dict, not a TorchScript export; {_EXPORT_HINT}"
            )
        raise ModelFormatError(f"{path}: a zip archive without TorchScript code, not a TorchScript .ts model")


def _describe_non_zip(head: bytes) -> str:
    for signature, kind in _KNOWN_SIGNATURES:
        if head.startswith(signature):
            return f"looks like {kind}"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unknown binary file starting with {head[:4]!r}"
    return "looks like a text file"


def _parse_metadata(path: Path, raw: bytes | str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        metadata = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"{path}: {METADATA_FILE} inside the archive is not valid JSON ({error})") from error
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}: {METADATA_FILE} inside the archive must hold a JSON object")
    return metadata


def first_line(error: BaseException) -> str:
    """The model's own message, first line, from an exception TorchScript raised.

    TorchScript interpreter errors open with two tracebacks; the message the
    model raised is the first unindented line after the last traceback.
    """
    lines = [line.rstrip() for line in str(error).splitlines()]
    if lines and lines[0].startswith(_INTERPRETER_PREFIX):
        after_traceback = 0
        for index, line in enumerate(lines):
            if line.startswith("Traceback"):
                after_traceback = index + 1
        own = [line for line in lines[after_traceback:] if line and not line[0].isspace()]
        lines = own or lines
    for line in lines:
        if line.strip():
            line = line.strip().removeprefix("builtins.")
            return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."
    return type(error).__name__
