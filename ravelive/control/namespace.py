"""Every OSC address the server understands or sends, generated from declarations.

Parameter addresses come from the store's ParameterSpecs (`latent/3/bias` is
`/ravelive/latent/3/bias`); commands and replies are declared once below.
The `/ravelive/namespace` listing, the OSCQuery document and the patch
checks are all built from `endpoints()`.
"""

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ravelive.control.params import ParameterSpec

ROOT = "/ravelive"


class Access(enum.IntEnum):
    """Who sends to an address; the numbers are OSCQuery's ACCESS values."""

    READ = 1  # the server sends it (replies, feedback)
    WRITE = 2  # clients send it (commands)
    READ_WRITE = 3  # parameters: clients set and query, the server replies and pushes


@dataclass(frozen=True)
class Endpoint:
    """One OSC address with what it carries."""

    address: str
    type_tags: str  # OSC type tags of the arguments ("" none; "f" one float ...), "*" for a variable list
    access: Access
    description: str
    spec: ParameterSpec | None = None  # set for parameters


def parameter_address(name: str) -> str:
    """The OSC address of parameter `name`."""
    return f"{ROOT}/{name}"


def parameter_name(address: str) -> str | None:
    """The parameter name an address names, or None when it is not under the root."""
    prefix = ROOT + "/"
    return address[len(prefix):] if address.startswith(prefix) else None


COMMANDS = (
    Endpoint(f"{ROOT}/ping", "*", Access.WRITE, "replies /ravelive/pong with the same arguments"),
    Endpoint(f"{ROOT}/status", "", Access.WRITE, "replies /ravelive/status/<item> <value> for every status item"),
    Endpoint(f"{ROOT}/namespace", "", Access.WRITE,
             "replies /ravelive/namespace/entry for every address, then /ravelive/namespace/end <count>"),
    Endpoint(f"{ROOT}/notify", "ii", Access.WRITE,
             "1 [port]: push every parameter change to this client (to port, if given, on the client's host); 0: stop"),
    Endpoint(f"{ROOT}/latent/notify", "ii", Access.WRITE,
             "1 [port]: send this client /ravelive/latent/out at the latent frame rate; 0: stop"),
    Endpoint(f"{ROOT}/model/load", "s", Access.WRITE,
             "load model NAME from the models directory (asynchronous): /ravelive/done or /ravelive/fail follows"),
    Endpoint(f"{ROOT}/model/reload", "", Access.WRITE, "re-read the current model file (asynchronous)"),
    Endpoint(f"{ROOT}/model/list", "", Access.WRITE, "replies /ravelive/model/list with the loadable model names"),
    Endpoint(f"{ROOT}/latent/play", "s", Access.WRITE,
             "play latent sequence NAME (--latents-dir) into decode as the latent loop, cycling; /ravelive/done follows"),
    Endpoint(f"{ROOT}/latent/stop", "", Access.WRITE, "stop playing the latent loop (latent/loop/play 0)"),
    Endpoint(f"{ROOT}/latent/list", "", Access.WRITE, "replies /ravelive/latent/list with the playable sequence names"),
    Endpoint(f"{ROOT}/preset/save", "s", Access.WRITE, "save every parameter value as preset NAME"),
    Endpoint(f"{ROOT}/preset/load", "s", Access.WRITE, "apply preset NAME (values that fit this model)"),
    Endpoint(f"{ROOT}/preset/list", "", Access.WRITE, "replies /ravelive/preset/list with the preset names"),
    Endpoint(f"{ROOT}/midi/learn", "s", Access.WRITE,
             "bind the next MIDI control moved to parameter NAME (asynchronous): /ravelive/done follows"),
    Endpoint(f"{ROOT}/midi/forget", "s", Access.WRITE, "remove every MIDI binding of parameter NAME"),
    Endpoint(f"{ROOT}/midi/map", "", Access.WRITE,
             "replies /ravelive/midi/map/entry <parameter> <control> per binding, then /ravelive/midi/map/end <count>"),
    Endpoint(f"{ROOT}/midi/reload", "", Access.WRITE, "read the MIDI mapping file again (a bad file keeps the old map)"),
    Endpoint(f"{ROOT}/preset/morph", "ss", Access.WRITE,
             "A B: morph between presets A and B; a number 0..1 to this address moves the morph (parameter "
             "preset/morph), no argument replies with the position"),
    Endpoint(f"{ROOT}/preset/pair", "", Access.WRITE,
             "replies /ravelive/preset/pair A B: the presets the morph runs between (no values: none chosen)"),
)

REPLIES = (
    Endpoint(f"{ROOT}/pong", "*", Access.READ, "answer to /ravelive/ping, with its arguments"),
    Endpoint(f"{ROOT}/error", "ss", Access.READ, "<address> <message>: a message was refused"),
    Endpoint(f"{ROOT}/done", "ss", Access.READ, "<command address> <name>: an asynchronous command finished"),
    Endpoint(f"{ROOT}/fail", "sss", Access.READ, "<command address> <name> <reason>: an asynchronous command failed"),
    Endpoint(f"{ROOT}/latent/out", "*", Access.READ, "one float per latent dimension, at the latent frame rate"),
    Endpoint(f"{ROOT}/namespace/entry", "sssss", Access.READ, "<address> <type tags> <access r|w|rw> <range> <description>"),
    Endpoint(f"{ROOT}/namespace/end", "i", Access.READ, "<count>: the namespace listing is complete"),
    Endpoint(f"{ROOT}/midi/map/entry", "ss", Access.READ, "<parameter> <control>: one MIDI binding"),
    Endpoint(f"{ROOT}/midi/map/end", "i", Access.READ, "<count>: the MIDI binding listing is complete"),
    Endpoint(f"{ROOT}/midi/learned", "ss", Access.READ, "<parameter> <control>: MIDI learn bound a control (to subscribers)"),
    Endpoint(f"{ROOT}/midi/forgot", "si", Access.READ, "<parameter> <count>: MIDI bindings removed (to subscribers)"),
)

_ACCESS_LETTERS = {Access.READ: "r", Access.WRITE: "w", Access.READ_WRITE: "rw"}


def endpoints(specs: Mapping[str, ParameterSpec], status: Mapping[str, object] | None = None) -> list[Endpoint]:
    """Every address once: commands, replies, current status items, then one per parameter.

    A command sharing its address with a parameter (`/ravelive/preset/morph A B` and the `preset/morph`
    position) is listed as the parameter, whose description tells both uses.
    """
    result = [command for command in COMMANDS if parameter_name(command.address) not in specs] + list(REPLIES)
    for key, value in (status or {}).items():
        result.append(Endpoint(f"{ROOT}/status/{key}", osc_type_tag(value), Access.READ, f"status item {key}"))
    for spec in specs.values():
        result.append(Endpoint(parameter_address(spec.name), spec.type.value, Access.READ_WRITE, spec.description, spec))
    return result


def listing_entry(endpoint: Endpoint) -> tuple[str, str, str, str, str]:
    """The arguments of one /ravelive/namespace/entry message."""
    range_text = endpoint.spec.range_text() if endpoint.spec is not None else ""
    return (endpoint.address, endpoint.type_tags, _ACCESS_LETTERS[endpoint.access], range_text, endpoint.description)


def osc_type_tag(value: object) -> str:
    """The OSC type tag a Python value is sent with (bools go out as 'T'/'F', read as 'T')."""
    if isinstance(value, bool):
        return "T"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    return "s"


def addresses(items: Iterable[Endpoint]) -> set[str]:
    """The set of addresses of `items`."""
    return {item.address for item in items}
