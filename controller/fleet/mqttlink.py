"""One MQTT connection to the fleet cluster for the fleet's own services (ingest, dispatch).

The cluster has several nodes; the connection goes to the first that answers and moves on
to the next one when it drops. MQTT 3.1.1 (what NATS speaks), optional TLS, username and
password (the password from a file or $HEARTH_FLEET_PASSWORD, never the command line).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSettings:
    nodes: tuple[tuple[str, int], ...]
    username: str
    password: str
    ca_file: Path | None = None
    keepalive_s: int = 15

    @staticmethod
    def parse_nodes(text: str) -> tuple[tuple[str, int], ...]:
        """'host:port,host:port' -> ((host, port), ...); a clear error otherwise."""
        out = []
        for part in text.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"--cluster: {part.strip()!r} is not host:port")
            out.append((host, int(port)))
        if not out:
            raise ValueError("--cluster: no node given")
        return tuple(out)

    @classmethod
    def from_args(cls, cluster: str, username: str, password_file: str | None,
                  ca_file: str | None) -> ClusterSettings:
        if password_file:
            lines = Path(password_file).read_text().splitlines()
            password = lines[0] if lines else ""
        else:
            password = os.environ.get("HEARTH_FLEET_PASSWORD", "")
        if not password:
            raise ValueError("--password-file: no password (give a file, or set "
                             "$HEARTH_FLEET_PASSWORD)")
        return cls(cls.parse_nodes(cluster), username, password,
                   Path(ca_file) if ca_file else None)


class ClusterClient:
    """A paho client that fails over between the cluster's nodes."""

    def __init__(self, s: ClusterSettings, client_id: str, *, clean_session: bool,
                 subscriptions: Sequence[tuple[str, int]],
                 on_message: Callable[[mqtt.MQTTMessage, int], None],
                 manual_ack: bool = False) -> None:
        self.s = s
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.generation = 0  # +1 per connection: acks of an older one must not be sent
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the SUBACK of this connection came
        self._node = 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=clean_session, protocol=mqtt.MQTTv311,
                        manual_ack=manual_ack)
        c.username_pw_set(s.username, s.password)
        if s.ca_file is not None:
            c.tls_set(ca_certs=str(s.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.reconnect_delay_set(1, 5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_connect_fail = self._on_connect_fail
        self.client = c

    def start(self) -> None:
        host, port = self.s.nodes[0]
        self.client.connect_async(host, port, self.s.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("fleet cluster refused the connection: %s", rc)
            return
        self.generation += 1
        host, port = self.s.nodes[self._node]
        log.info("connected to the fleet cluster at %s:%d (session present: %s)", host, port,
                 flags.session_present)
        if self.subscriptions:
            c.subscribe(self.subscriptions)
        self.connected.set()

    def _on_subscribe(self, *_a: Any) -> None:
        log.info("subscribed on the fleet cluster: %s",
                 ", ".join(t for t, _q in self.subscriptions))
        self.subscribed.set()

    def _next_node(self, c: mqtt.Client) -> None:
        if len(self.s.nodes) > 1:
            self._node = (self._node + 1) % len(self.s.nodes)
            host, port = self.s.nodes[self._node]
            # Only stores where the next reconnect goes (paho's loop does the reconnect).
            c.connect_async(host, port, self.s.keepalive_s)

    def _on_connect_fail(self, c: mqtt.Client, _u: Any) -> None:
        failed = self.s.nodes[self._node]
        self._next_node(c)
        log.warning("fleet cluster node %s:%d does not answer; next try %s:%d", *failed,
                    *self.s.nodes[self._node])

    def _on_disconnect(self, c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self.generation += 1
        self._next_node(c)
        log.warning("fleet cluster connection lost (%s); next try %s:%d", rc,
                    *self.s.nodes[self._node])

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.on_message(msg, self.generation)
