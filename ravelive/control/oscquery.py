"""Discovery: the OSC namespace as OSCQuery JSON over HTTP, advertised over mDNS.

Implements the read side of the Vidvox OSCQuery proposal
(https://github.com/Vidvox/OSCQueryProposal): `GET /` returns the whole tree,
`GET /ravelive/latent/0/bias` one node, `?HOST_INFO` the server's OSC port and
transport, `?VALUE` (or any other attribute) just that attribute. Nodes carry
FULL_PATH, CONTENTS, TYPE, RANGE, VALUE, ACCESS, DESCRIPTION and UNIT, all
generated from the same declarations as the OSC namespace. The service is
announced as `_oscjson._tcp` and `_osc._udp` so ossia score, Chataigne and
other OSCQuery clients find it without configuration. Values are changed over
OSC (UDP), not HTTP; the WebSocket LISTEN extension is not offered.
"""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from ravelive import __version__
from ravelive.control import namespace
from ravelive.control.osc import OscServer
from ravelive.control.params import ParameterType
from ravelive.errors import ConfigError

logger = logging.getLogger(__name__)

ANNOUNCE_TIMEOUT_S = 5.0  # close() waits this long for an mDNS registration in progress (probing takes ~2 s)
_ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "RANGE", "VALUE", "ACCESS", "DESCRIPTION", "UNIT")


def document(osc: OscServer) -> dict[str, Any]:
    """The OSCQuery tree of every address, rooted at '/'."""
    root: dict[str, Any] = {"FULL_PATH": "/", "CONTENTS": {}, "DESCRIPTION": "ravelive"}
    values = osc.store.values()
    for endpoint in namespace.endpoints(osc.store.specs):
        node = root
        parts = endpoint.address.strip("/").split("/")
        for depth, part in enumerate(parts):
            contents = node.setdefault("CONTENTS", {})
            node = contents.setdefault(part, {"FULL_PATH": "/" + "/".join(parts[: depth + 1])})
        node.update(_leaf(endpoint, values))
    return root


def host_info(osc: OscServer, name: str) -> dict[str, Any]:
    """The HOST_INFO object: where to send OSC and which attributes this server fills in."""
    return {
        "NAME": name,
        "OSC_PORT": osc.address[1],
        "OSC_TRANSPORT": "UDP",
        "EXTENSIONS": {attribute: True for attribute in _ATTRIBUTES if attribute != "FULL_PATH"}
        | {"LISTEN": False, "PATH_CHANGED": False},
    }


def _leaf(endpoint: namespace.Endpoint, values: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"ACCESS": int(endpoint.access), "DESCRIPTION": endpoint.description}
    if endpoint.type_tags and endpoint.type_tags != "*":
        node["TYPE"] = endpoint.type_tags
    spec = endpoint.spec
    if spec is None:
        return node
    if spec.name in values:
        node["VALUE"] = [values[spec.name]]
    if spec.choices:
        node["RANGE"] = [{"VALS": list(spec.choices)}]
    elif spec.type is ParameterType.BOOL:
        node["RANGE"] = [{"VALS": [False, True]}]
    elif spec.minimum is not None or spec.maximum is not None:
        node["RANGE"] = [{key: bound for key, bound in (("MIN", spec.minimum), ("MAX", spec.maximum)) if bound is not None}]
    if spec.unit:
        node["UNIT"] = [spec.unit]
    return node


def _find(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = tree
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


class OscQueryService:
    """The HTTP server and mDNS announcements for one OscServer."""

    def __init__(self, osc: OscServer, http_port: int | None = None, name: str = "ravelive", advertise: bool = True) -> None:
        self.osc = osc
        self.name = name
        host = osc.config.host
        port = osc.address[1] if http_port is None else http_port
        handler = type("Handler", (_Handler,), {"service": self})
        try:
            self._http = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            raise ConfigError(f"OSCQuery HTTP port {port} on {host} cannot be opened ({error.strerror}); "
                              "pick another OSC port or disable discovery") from error
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="ravelive-oscquery", daemon=True)
        self._advertise = advertise
        self._lock = threading.Lock()
        self._closed = False
        self._zeroconf: Any = None
        self._announcer = threading.Thread(target=self._announce, name="ravelive-mdns", daemon=True)

    @property
    def http_port(self) -> int:
        """The TCP port serving the OSCQuery JSON."""
        return self._http.server_address[1]

    def start(self) -> "OscQueryService":
        """Serve HTTP and (in the background, mDNS probing takes seconds) announce the services."""
        self._thread.start()
        if self._advertise:
            self._announcer.start()
        logger.info("OSCQuery on http://%s:%d/", self.osc.config.host, self.http_port)
        return self

    def close(self) -> None:
        """Withdraw the announcements and stop serving.

        An announcement still probing is let finish first (bounded): closing
        zeroconf under it would abandon its registration half-way.
        """
        with self._lock:
            self._closed = True
        if self._announcer.is_alive():
            self._announcer.join(ANNOUNCE_TIMEOUT_S)
        with self._lock:
            zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is not None:
            zeroconf.unregister_all_services()
            zeroconf.close()
        self._http.shutdown()
        self._http.server_close()

    def _announce(self) -> None:
        import zeroconf as mdns  # imported here: only a running server announces itself

        host = self.osc.config.host
        try:
            addresses = mdns.get_all_addresses() if host in ("0.0.0.0", "") else [socket.gethostbyname(host)]
            instance = mdns.Zeroconf()
            with self._lock:
                if self._closed:
                    instance.close()
                    return
                self._zeroconf = instance
            for kind, port in (("_oscjson._tcp.local.", self.http_port), ("_osc._udp.local.", self.osc.address[1])):
                if self._closed:
                    return
                info = mdns.ServiceInfo(kind, f"{self.name}.{kind}", port=port, parsed_addresses=addresses,
                                        server=f"{socket.gethostname()}.local.", properties={"version": __version__})
                instance.register_service(info, allow_name_change=True)
                logger.info("announced %s over mDNS", info.name)
        except (OSError, mdns.Error) as error:  # no multicast route, closed meanwhile: discovery is a nicety
            logger.warning("mDNS announcement failed (%s); clients can still connect by address", error)


class _Handler(BaseHTTPRequestHandler):
    service: OscQueryService
    server_version = f"ravelive/{__version__}"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        osc = self.service.osc
        if not osc.allows(self.client_address[0]):
            self.send_error(403, "not in the --allow list")
            return
        parts = urlsplit(self.path)
        query = parts.query.upper()
        if query == "HOST_INFO":
            self._json(host_info(osc, self.service.name))
            return
        node = _find(document(osc), unquote(parts.path))
        if node is None:
            self.send_error(404, "no such OSC address")
            return
        if query:
            if query not in node:
                self.send_error(204 if query in _ATTRIBUTES else 400)
                return
            node = {query: node[query]}
        self._json(node)

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        logger.debug("OSCQuery %s: " + format, self.client_address[0], *args)
