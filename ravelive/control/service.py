"""The control surfaces of a running server, started and stopped together.

`ControlService.start(server, config)` opens the OSC server on the server's
parameter store and, unless disabled, the OSCQuery HTTP endpoint with its
mDNS announcements. `ravelive serve` calls it after the audio starts and
closes it before the audio stops.
"""

import logging
from dataclasses import dataclass
from typing import Protocol

from ravelive.control.morph import PresetMorph
from ravelive.control.osc import ControlledServer, OscConfig, OscServer
from ravelive.control.oscquery import OscQueryService
from ravelive.control.params import ParameterStore

logger = logging.getLogger(__name__)


class ServedServer(ControlledServer, Protocol):
    """A ControlledServer that also holds its parameter store as `controls`."""

    controls: ParameterStore


@dataclass
class ControlService:
    """OSC (and OSCQuery) for one server."""

    osc: OscServer
    discovery: OscQueryService | None

    @classmethod
    def start(cls, server: ServedServer, config: OscConfig, discovery: bool = True,
              morph: PresetMorph | None = None) -> "ControlService":
        """Open and start every surface; ConfigError when a port or an --allow entry cannot be used.

        `morph`: the daemon's preset morph, which `/ravelive/preset/morph A B` then drives."""
        osc = OscServer(server.controls, server, config, morph)
        query = None
        try:
            if discovery:
                query = OscQueryService(osc)
        except BaseException:
            osc.close()
            raise
        osc.start()
        if query is not None:
            query.start()
        return cls(osc, query)

    def describe(self) -> str:
        """One line for the start-up report: where to send OSC and where to discover it."""
        host, port = self.osc.address
        line = f"OSC on udp://{host}:{port} (send /ravelive/namespace for the addresses)"
        if self.discovery is not None:
            line += f"; OSCQuery on http://{host}:{self.discovery.http_port}/"
        return line

    def close(self) -> None:
        """Stop discovery, then OSC."""
        if self.discovery is not None:
            self.discovery.close()
        self.osc.close()
