"""Files that network clients may pick by name, and only by name.

`/ravelive/model/load NAME` and `/ravelive/preset/load NAME` come from the
network. A client names a file; it never gives a path. `NamedFiles` accepts
a name only if it is a plain file name (no separators, no '..', no hidden
files) and, for reading, only if the directory listing holds exactly that
file with the expected suffix. Nothing outside the directory is reachable.
"""

import re
from pathlib import Path

from ravelive.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+ -]{0,127}")


class NamedFiles:
    """The `*.suffix` files of one directory, addressed by name (with or without the suffix)."""

    def __init__(self, directory: Path | str, suffix: str, kind: str) -> None:
        self.directory = Path(directory)
        self.suffix = suffix
        self.kind = kind  # "model", "preset": used in messages

    def names(self) -> list[str]:
        """Names (without suffix) of the files present, sorted; empty if the directory is missing."""
        try:
            entries = [entry for entry in self.directory.iterdir() if entry.is_file()]
        except OSError:
            return []
        return sorted(entry.name[: -len(self.suffix)] for entry in entries if self._acceptable(entry.name))

    def existing(self, name: object) -> Path:
        """The path of the file called `name`; ConfigError if the name is not safe or no such file exists."""
        file_name = self._file_name(name)
        try:
            present = {entry.name for entry in self.directory.iterdir() if entry.is_file()}
        except OSError as error:
            raise ConfigError(f"{self.kind} directory {self.directory} cannot be read ({error.strerror})") from error
        if file_name not in present:
            available = ", ".join(self.names()) or "none"
            raise ConfigError(f"no {self.kind} '{name}' in {self.directory}; available: {available}")
        return self.directory / file_name

    def new(self, name: object) -> Path:
        """The path a file called `name` is written to (the directory is created if missing)."""
        file_name = self._file_name(name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{self.kind} directory {self.directory} cannot be created ({error.strerror})") from error
        return self.directory / file_name

    def _file_name(self, name: object) -> str:
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} name {name!r} is not text; send a file name like 'voice'")
        file_name = name if name.endswith(self.suffix) else name + self.suffix
        if ".." in name or not self._acceptable(file_name):
            raise ConfigError(
                f"{self.kind} name {name[:60]!r} is not a plain file name; use letters, digits, '_', '-', '.' "
                f"and no path (files come from {self.directory} only)"
            )
        return file_name

    def _acceptable(self, file_name: str) -> bool:
        return file_name.endswith(self.suffix) and _NAME.fullmatch(file_name) is not None
