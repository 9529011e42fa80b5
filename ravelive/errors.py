"""The exceptions users can catch.

Every message is one line that names the value, what was expected and the fix.
Library code raises these; only the CLI turns them into exit codes.
"""


def one_line(error: BaseException) -> str:
    """`error`'s text on one line (libsndfile and PortAudio messages span several)."""
    return " ".join(str(error).split())


class RaveliveError(Exception):
    """Base class of every user-facing ravelive failure."""


class ModelFormatError(RaveliveError):
    """A model file is missing, unreadable or breaks the nn~ contract."""


class ModelRuntimeError(RaveliveError):
    """A model raised, returned the wrong shape, or refused a call."""


class ModelAttributeError(RaveliveError):
    """An attribute is unknown, got values of the wrong type, or its setter refused them."""


class AudioFileError(RaveliveError):
    """An audio file cannot be read or written."""


class AudioDeviceError(RaveliveError):
    """An audio device is missing, busy, or cannot run the requested settings."""


class ConfigError(RaveliveError):
    """A setting (CLI option, config file, mapping) has a value that cannot be used."""


class ParameterError(RaveliveError):
    """A control value has the wrong type or is out of range."""
