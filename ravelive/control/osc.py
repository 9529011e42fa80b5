"""The OSC control server: UDP in, validated writes to the parameter store, replies and feedback out.

One thread receives: it checks the sender against the allow list, parses the
packet strictly, and dispatches each message. Parameter messages are
validated and stored (or queried); commands ask the server for status, load
models asynchronously, save and load presets. Handlers never touch the model
and never wait. Feedback to subscribers (control/feedback.py) runs on a
second thread. Whatever a client sends is answered
or dropped and counted in `faults`; nothing it sends stops either thread.
"""

import collections
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ravelive.control import DEFAULT_OSC_PORT, namespace
from ravelive.control.feedback import Address, Feedback
from ravelive.control.morph import PresetMorph
from ravelive.control.named_files import NamedFiles
from ravelive.control.osc_wire import PacketError, build_message, parse_packet
from ravelive.control.params import ParameterStore
from ravelive.control.latent_clips import LatentClips
from ravelive.control.presets import LOOP_PLAY, PresetLibrary
from ravelive.errors import ConfigError, ParameterError, RaveliveError

logger = logging.getLogger(__name__)

MAX_PACKET_BYTES = 8192  # any real control message fits; larger datagrams are refused unread
_POLL_SECONDS = 0.2  # how often the receive thread checks for shutdown


class ControlledServer(Protocol):
    """What the OSC layer needs from the daemon (ravelive.server implements it)."""

    def status(self) -> dict[str, Any]: ...

    def load_model(self, path: Path, method: str | None = None, done: Callable[[str | None], None] | None = None) -> None: ...

    def reload_model(self, done: Callable[[str | None], None] | None = None) -> None: ...

    def latent_dims(self) -> int: ...

    def play_latents(self, frames: np.ndarray) -> None: ...


class MidiControl(Protocol):
    """What the OSC layer needs from MIDI (ravelive.control.midi.service.MidiService implements it)."""

    def learn(self, name: str, done: Callable[[str | None], None]) -> None: ...

    def forget(self, name: str) -> int: ...

    def bindings(self) -> list[tuple[str, str]]: ...

    def reload(self) -> None: ...


@dataclass(frozen=True)
class OscConfig:
    """Where the OSC server listens and whom it answers."""

    host: str = "127.0.0.1"  # loopback only; a wider address needs `allow`
    port: int = DEFAULT_OSC_PORT  # 0 picks a free port (tests)
    allow: tuple[str, ...] = ()  # client addresses or subnets ("192.168.1.0/24") accepted besides loopback
    models_dir: Path | None = None  # the only place /ravelive/model/load reads from; None disables it
    presets_dir: Path | None = None  # where presets are saved and loaded; None disables them
    latents_dir: Path | None = None  # the only place /ravelive/latent/play reads from; None disables it
    feedback_rate: float = 60.0  # most pushes per second per address to each subscriber
    max_messages_per_second: float = 5000.0  # above this a flood is dropped unread (counted), sparing the audio worker
    max_subscribers: int = 32


class _Refused(Exception):
    """A message the server answers with /ravelive/error; `fault` names the counter."""

    def __init__(self, fault: str, message: str) -> None:
        super().__init__(message)
        self.fault = fault


class AllowList:
    """Loopback plus the configured networks; refuses a wide bind that names no clients."""

    def __init__(self, host: str, allow: Sequence[str]) -> None:
        networks = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"--allow {entry!r} is not an address or subnet; give e.g. 192.168.1.20 or 192.168.1.0/24") from None
        if not allow and not _is_loopback(host):
            raise ConfigError(
                f"--osc-host {host} accepts packets from the network: name the clients with --allow ADDRESS[/BITS] "
                "(e.g. --allow 192.168.1.0/24)"
            )
        self._networks = tuple(networks)
        self._verdicts: dict[str, bool] = {}

    def allows(self, host: str) -> bool:
        """True if packets from `host` are accepted."""
        verdict = self._verdicts.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host.split("%")[0])
            except ValueError:
                return False
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            verdict = any(address in network for network in self._networks)
            if len(self._verdicts) > 4096:
                self._verdicts.clear()  # bounded: a spoofing flood cannot grow it
            self._verdicts[host] = verdict
        return verdict


class OscServer:
    """OSC over UDP for one ParameterStore and one ControlledServer."""

    def __init__(self, store: ParameterStore, server: ControlledServer, config: OscConfig = OscConfig(),
                 morph: PresetMorph | None = None) -> None:
        """`morph`: the daemon's own preset morph (it starts and closes it); None: OSC runs one of its own on
        config.presets_dir."""
        self.store = store
        self.server = server
        self.config = config
        self.faults: collections.Counter[str] = collections.Counter()
        self.handled = 0  # messages accepted and answered
        self._allow = AllowList(config.host, config.allow)
        self._models = NamedFiles(config.models_dir, ".ts", "model") if config.models_dir else None
        self._presets = PresetLibrary(config.presets_dir) if config.presets_dir else None
        self._clips = LatentClips(config.latents_dir) if config.latents_dir else None
        self._owns_morph = morph is None
        self._morph = morph if morph is not None else PresetMorph(self._presets, store) if self._presets else None
        self._socket = _bind(config.host, config.port)
        self.feedback = Feedback(self._send_bytes, self.faults, config.feedback_rate, config.max_subscribers)
        self._tokens = self._capacity = max(1.0, config.max_messages_per_second / 10)  # bursts up to 0.1 s worth
        self._last_refill = time.monotonic()
        self._stopping = threading.Event()
        self._receiver = threading.Thread(target=self._receive_loop, name="ravelive-osc-receive", daemon=True)
        self.midi: MidiControl | None = None  # set by `serve` when MIDI runs
        self._commands: dict[str, Callable[[str, list[Any], Address], None]] = {
            f"{namespace.ROOT}/ping": self._ping,
            f"{namespace.ROOT}/status": self._status,
            f"{namespace.ROOT}/namespace": self._namespace,
            f"{namespace.ROOT}/notify": self._notify,
            f"{namespace.ROOT}/latent/notify": self._notify,
            f"{namespace.ROOT}/model/load": self._model_load,
            f"{namespace.ROOT}/model/reload": self._model_reload,
            f"{namespace.ROOT}/model/list": self._model_list,
            f"{namespace.ROOT}/latent/play": self._latent_play,
            f"{namespace.ROOT}/latent/stop": self._latent_stop,
            f"{namespace.ROOT}/latent/list": self._latent_list,
            f"{namespace.ROOT}/preset/save": self._preset_save,
            f"{namespace.ROOT}/preset/load": self._preset_load,
            f"{namespace.ROOT}/preset/list": self._preset_list,
            f"{namespace.ROOT}/midi/learn": self._midi_learn,
            f"{namespace.ROOT}/midi/forget": self._midi_forget,
            f"{namespace.ROOT}/midi/map": self._midi_map,
            f"{namespace.ROOT}/midi/reload": self._midi_reload,
            f"{namespace.ROOT}/preset/morph": self._preset_morph,
            f"{namespace.ROOT}/preset/pair": self._preset_pair,
        }
        missing = namespace.addresses(namespace.COMMANDS) ^ set(self._commands)
        if missing:
            raise RuntimeError(f"OSC commands declared but not handled, or the reverse: {sorted(missing)}")

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        host, port = self._socket.getsockname()[:2]
        return host, port

    def allows(self, host: str) -> bool:
        """True if `host` may talk to this server (the OSCQuery HTTP side asks too)."""
        return self._allow.allows(host)

    def start(self) -> "OscServer":
        """Start receiving and pushing; returns self."""
        self.store.add_listener(self.feedback.on_change)
        if self._morph is not None and self._owns_morph:
            self._morph.start()
        self._receiver.start()
        self.feedback.start()
        logger.info("OSC on udp://%s:%d", *self.address)
        return self

    def close(self) -> None:
        """Stop both threads and close the socket (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._receiver.is_alive():
            self._receiver.join(timeout=2.0)
        self.feedback.close()
        if self._morph is not None and self._owns_morph:
            self._morph.close()
        try:
            self.store.remove_listener(self.feedback.on_change)
        except ValueError:
            pass  # never started
        self._socket.close()

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def report_error(self, address: str, message: str) -> None:
        """Send `/ravelive/error address message` to every subscribed client; never blocks (any thread)."""
        self.feedback.push_error(address, message)

    def push_latent(self, frames: np.ndarray) -> None:
        """Queue latent frames `[dimensions, n]` for subscribers; never blocks (audio worker)."""
        self.feedback.push_latent(frames)

    # ---- receiving -------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                data, sender = self._socket.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError as error:
                if self._stopping.is_set():
                    break
                self.faults["socket_error"] += 1
                logger.debug("OSC receive failed: %s", error)
                continue
            self._receive(data, sender)

    def _receive(self, data: bytes, sender: Address) -> None:
        if not self._allow.allows(sender[0]):
            self.faults["denied"] += 1
            return
        if not self._take_token():
            self.faults["flood_dropped"] += 1
            return
        if len(data) > MAX_PACKET_BYTES:
            self.faults["oversized"] += 1
            self._reply(sender, "error", "", f"packet of {len(data)} bytes; the limit is {MAX_PACKET_BYTES}")
            return
        try:
            messages = parse_packet(data)
        except PacketError as error:
            self.faults["malformed"] += 1
            self._reply(sender, "error", "", str(error))
            return
        for address, arguments in messages:
            self._dispatch(address, arguments, sender)

    def _dispatch(self, address: str, arguments: list[Any], sender: Address) -> None:
        try:
            handler = self._commands.get(address, self._parameter)
            handler(address, arguments, sender)
            self.handled += 1
        except _Refused as refusal:
            self.faults[refusal.fault] += 1
            self._reply(sender, "error", address[:200], str(refusal))
        except (ParameterError, ConfigError) as error:
            self.faults["refused_value"] += 1
            self._reply(sender, "error", address[:200], str(error))
        except Exception:  # the boundary: no client message may stop the receive thread
            self.faults["internal"] += 1
            logger.exception("OSC message %s %r failed inside the server", address[:200], arguments[:8])
            self._reply(sender, "error", address[:200], "internal error (logged); please report it")

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = self.config.max_messages_per_second
        self._tokens = min(self._capacity, self._tokens + (now - self._last_refill) * rate)
        self._last_refill = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    # ---- parameters --------------------------------------------------------------------------

    def _parameter(self, address: str, arguments: list[Any], sender: Address) -> None:
        name = namespace.parameter_name(address)
        if name is None or name not in self.store.specs:
            raise _Refused("unknown_address", f"{address[:200]}: no such address; send /ravelive/namespace for the list")
        if not arguments:
            self._reply(sender, address, self.store.get(name))
            return
        if len(arguments) > 1:
            raise _Refused("refused_value", f"{name}: got {len(arguments)} values; send exactly one")
        change = self.store.set(name, arguments[0], source=sender)
        if change.adjusted and not self.feedback.hears_parameters(sender):
            self._reply(sender, address, change.value)  # tell the sender what was stored instead

    # ---- commands ----------------------------------------------------------------------------

    def _ping(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._reply(sender, "pong", *arguments)

    def _status(self, address: str, arguments: list[Any], sender: Address) -> None:
        for key, value in self._status_items().items():
            self._reply(sender, f"status/{key}", value)

    def _status_items(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        for key, value in self.server.status().items():
            if isinstance(value, Mapping):
                items.update({f"{key}/{inner}": _status_value(v) for inner, v in value.items()})
            else:
                items[key] = _status_value(value)
        items["osc_faults"] = sum(self.faults.values())
        return items

    def _namespace(self, address: str, arguments: list[Any], sender: Address) -> None:
        endpoints = namespace.endpoints(self.store.specs, self._status_items())
        for endpoint in endpoints:
            self._reply(sender, "namespace/entry", *namespace.listing_entry(endpoint))
        self._reply(sender, "namespace/end", len(endpoints))

    def _notify(self, address: str, arguments: list[Any], sender: Address) -> None:
        latent = address.endswith("/latent/notify")
        on = _flag(address, arguments[0] if arguments else 1)
        port = _port(address, arguments[1]) if len(arguments) > 1 else sender[1]
        if len(arguments) > 2:
            raise _Refused("refused_value", f"{address}: got {len(arguments)} values; send 1 [port] or 0")
        target = self.feedback.subscribe(sender, on, port, latent)
        self._send(target, address, int(on))  # confirmed where the client listens, also when it stops

    def _model_load(self, address: str, arguments: list[Any], sender: Address) -> None:
        if self._models is None:
            raise _Refused("refused_value", f"{address}: no models directory; start the server with --models-dir DIR")
        name = _one_text(address, arguments)
        path = self._models.existing(name)
        self._start(address, name, sender, lambda done: self.server.load_model(path, None, done))

    def _model_reload(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._start(address, "", sender, lambda done: self.server.reload_model(done))

    def _model_list(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._reply(sender, address, *(self._models.names() if self._models else []))

    def _latent_play(self, address: str, arguments: list[Any], sender: Address) -> None:
        if self._clips is None:
            raise _Refused("refused_value", f"{address}: no latent sequences directory; start the server with "
                                            f"--latents-dir DIR")
        name = _one_text(address, arguments)
        self.server.play_latents(self._clips.load(name, self.server.latent_dims()))
        self._reply(sender, "done", address, name)

    def _latent_stop(self, address: str, arguments: list[Any], sender: Address) -> None:
        self.store.update({LOOP_PLAY: False}, source=None)

    def _latent_list(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._reply(sender, address, *(self._clips.names() if self._clips else []))

    def _start(self, address: str, name: str, sender: Address, begin: Callable[[Callable[[str | None], None]], None]) -> None:
        target = self.feedback.target(sender)

        def done(error: object = None) -> None:
            if error is None:
                self._send(target, "done", address, name)
            else:
                self._send(target, "fail", address, name, str(error).splitlines()[0] if str(error) else repr(error))

        try:
            begin(done)
        except RaveliveError as error:
            done(error)

    def _preset_save(self, address: str, arguments: list[Any], sender: Address) -> None:
        name = _one_text(address, arguments)
        model = self.server.status().get("model")
        self._library(address).save(name, self.store, model if isinstance(model, str) else None)
        self._reply(sender, "done", address, name)

    def _preset_load(self, address: str, arguments: list[Any], sender: Address) -> None:
        name = _one_text(address, arguments)
        result = self._library(address).load(name, self.store, source=None)  # everyone hears the new values
        for reason in result.skipped:
            self._reply(sender, "error", address, f"preset {name}: {reason}")
        self._reply(sender, "done", address, name)

    def _preset_list(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._reply(sender, address, *(self._presets.names() if self._presets else []))

    def _midi_learn(self, address: str, arguments: list[Any], sender: Address) -> None:
        name = _one_text(address, arguments)
        self._start(address, name, sender, lambda done: self._midi_service(address).learn(name, done))

    def _midi_forget(self, address: str, arguments: list[Any], sender: Address) -> None:
        name = _one_text(address, arguments)
        self._midi_service(address).forget(name)
        self._reply(sender, "done", address, name)

    def _midi_map(self, address: str, arguments: list[Any], sender: Address) -> None:
        bindings = self._midi_service(address).bindings()
        for target, control in bindings:
            self._reply(sender, "midi/map/entry", target, control)
        self._reply(sender, "midi/map/end", len(bindings))

    def _midi_reload(self, address: str, arguments: list[Any], sender: Address) -> None:
        self._midi_service(address).reload()
        self._reply(sender, "done", address, "")

    def _midi_service(self, address: str) -> MidiControl:
        if self.midi is None:
            raise _Refused("refused_value", f"{address}: no MIDI; start the server with --midi-in, --midi-virtual "
                                            "or --midi-map")
        return self.midi

    def announce(self, address: str, *arguments: Any) -> None:
        """Send one message to every subscribed client (MIDI learn and forget are announced this way)."""
        if not address.startswith("/"):
            address = f"{namespace.ROOT}/{address}"
        self.feedback.announce(build_message(address, arguments))

    def _preset_morph(self, address: str, arguments: list[Any], sender: Address) -> None:
        """Two names choose the pair; anything else is the `preset/morph` parameter (a position, or a query)."""
        if not (len(arguments) == 2 and all(isinstance(argument, str) for argument in arguments)):
            if any(isinstance(argument, str) for argument in arguments):
                raise _Refused("refused_value", f"{address}: got {arguments[:4]!r}; send two preset names (A B) "
                                                "to choose the pair, or one number in [0, 1] to move the morph")
            self._parameter(address, arguments, sender)
            return
        self._library(address)
        a, b = arguments
        for reason in self._morph.choose(a, b):
            self._reply(sender, "error", address, f"preset morph {a} {b}: {reason}")
        self._reply(sender, "done", address, f"{a} {b}")

    def _preset_pair(self, address: str, arguments: list[Any], sender: Address) -> None:
        pair = self._morph.pair if self._morph is not None else None
        self._reply(sender, address, *(pair or ()))

    def _library(self, address: str) -> PresetLibrary:
        if self._presets is None:
            raise _Refused("refused_value", f"{address}: no presets directory; start the server with --presets-dir DIR")
        return self._presets

    # ---- sending -----------------------------------------------------------------------------

    def _reply(self, sender: Address, address: str, *arguments: Any) -> None:
        self._send(self.feedback.target(sender), address, *arguments)

    def _send(self, target: Address, address: str, *arguments: Any) -> None:
        if not address.startswith("/"):
            address = f"{namespace.ROOT}/{address}"
        try:
            self._socket.sendto(build_message(address, arguments), target)
        except (OSError, PacketError) as error:
            self.faults["send_failed"] += 1
            logger.debug("OSC send of %s to %s failed: %s", address, target, error)

    def _send_bytes(self, target: Address, message: bytes) -> None:
        try:
            self._socket.sendto(message, target)
        except OSError as error:
            self.faults["send_failed"] += 1
            logger.debug("OSC push to %s failed: %s", target, error)


def check_port(config: OscConfig) -> None:
    """Refuse, before a model loads and warms up, an OSC port that cannot be opened (ConfigError, one line)."""
    if config.port:
        _bind(config.host, config.port).close()


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as error:
        raise ConfigError(f"--osc-host {host!r} cannot be resolved ({error.strerror}); give an IP address") from error
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # absorb bursts while a handler runs
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ConfigError(f"OSC port {port} on {host} cannot be opened ({error.strerror}); pick another with --osc-port") from error
    sock.settimeout(_POLL_SECONDS)
    return sock


def _is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def _status_value(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _flag(address: str, value: Any) -> bool:
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
        return bool(value)
    raise _Refused("refused_value", f"{address}: {value!r} is not 0 or 1; send 1 [port] to subscribe, 0 to stop")


def _port(address: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in range(1, 65536):
        raise _Refused("refused_value", f"{address}: port {value!r} is not in [1, 65535]; send the port you listen on")
    return int(value)


def _one_text(address: str, arguments: list[Any]) -> str:
    if len(arguments) != 1 or not isinstance(arguments[0], str):
        raise _Refused("refused_value", f"{address}: got {arguments[:4]!r}; send one name (a string)")
    return arguments[0]
