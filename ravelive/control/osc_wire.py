"""OSC packets in and out: a strict parser and a message builder on python-osc's wire primitives.

python-osc's own OscMessage skips type tags it does not know (so `,x`
would read as a query) and recurses without limit into nested bundles. The
server needs every fault named and counted, so packets are parsed here,
strictly, with python-osc's primitive readers; messages are built with
python-osc's OscMessageBuilder.
"""

from collections.abc import Sequence
from typing import Any

from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.parsing import osc_types

MAX_BUNDLE_DEPTH = 8  # bundles inside bundles; real clients use one level
_BUNDLE_HEADER = b"#bundle\0"
_READERS = {
    "i": osc_types.get_int,
    "h": osc_types.get_int64,
    "f": osc_types.get_float,
    "d": osc_types.get_double,
    "s": osc_types.get_string,
    "S": osc_types.get_string,  # symbol: a string by another name
    "b": osc_types.get_blob,
}
_CONSTANTS = {"T": True, "F": False, "N": None}
INT32_RANGE = range(-(2**31), 2**31)


class PacketError(ValueError):
    """A datagram that is not a well-formed OSC packet we can read."""


Message = tuple[str, list[Any]]


def parse_packet(data: bytes, depth: int = 0) -> list[Message]:
    """Every (address, arguments) in `data`, a message or a (nested) bundle; PacketError if malformed."""
    try:
        if data.startswith(_BUNDLE_HEADER):
            return _parse_bundle(data, depth)
        return [_parse_message(data)]
    except (osc_types.ParseError, UnicodeDecodeError) as error:
        raise PacketError(f"malformed OSC packet ({_first_line(error)})") from error


def _parse_bundle(data: bytes, depth: int) -> list[Message]:
    if depth >= MAX_BUNDLE_DEPTH:
        raise PacketError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if len(data) < 16:
        raise PacketError("bundle shorter than its header and time tag")
    messages: list[Message] = []
    index = 16  # header, then an 8-byte time tag we do not schedule by: everything applies on arrival
    while index < len(data):
        size, index = osc_types.get_int(data, index)
        if size <= 0 or size % 4 or index + size > len(data):
            raise PacketError(f"bundle element of {size} bytes does not fit the {len(data)}-byte bundle")
        messages.extend(parse_packet(data[index : index + size], depth + 1))
        index += size
    return messages


def _parse_message(data: bytes) -> Message:
    if len(data) % 4:
        raise PacketError(f"packet of {len(data)} bytes; OSC packets are a multiple of 4 bytes")
    address, index = osc_types.get_string(data, 0)
    if not address.startswith("/"):
        raise PacketError(f"address {address[:60]!r} does not start with '/'")
    if index == len(data):
        return address, []
    tags, index = osc_types.get_string(data, index)
    if not tags.startswith(","):
        raise PacketError(f"{address[:60]}: type tag string {tags[:20]!r} does not start with ','")
    arguments: list[Any] = []
    for tag in tags[1:]:
        if tag in _CONSTANTS:
            arguments.append(_CONSTANTS[tag])
        elif tag in _READERS:
            value, index = _READERS[tag](data, index)
            arguments.append(value)
        else:
            raise PacketError(f"{address[:60]}: type tag {tag!r} is not supported; send i, h, f, d, s, T or F")
    if index != len(data):
        raise PacketError(f"{address[:60]}: {len(data) - index} bytes after the last argument")
    return address, arguments


def build_message(address: str, arguments: Sequence[Any]) -> bytes:
    """One OSC message. Bools go out as ints 0/1 (Pd vanilla's oscparse rejects T/F); None as 'N'."""
    builder = OscMessageBuilder(address)
    for value in arguments:
        if isinstance(value, bool):
            builder.add_arg(int(value), "i")
        elif isinstance(value, int):
            builder.add_arg(value, "i" if value in INT32_RANGE else "h")
        elif isinstance(value, float):
            builder.add_arg(value, "f")
        elif value is None:
            builder.add_arg(None, "N")
        else:
            builder.add_arg(str(value), "s")
    try:
        return builder.build().dgram
    except BuildError as error:
        raise PacketError(f"{address}: cannot build a message from {list(arguments)[:4]} ({error})") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
