"""The MQTT link to the controller, on top of `umqtt.simple`, never blocking for long.

Why not `umqtt.robust`: its reconnect loops until the broker answers, sleeping between
tries, and the safety loop and the watchdog feed would stop with it. Here a failed
connect schedules the next try (1 s doubling to 60 s) and returns; the loop goes on.

Topics, under `hearth/<site_id>/sat/<sat_id>/`:
  availability   retained `online` / `offline` (the Last Will)
  telemetry      JSON every telemetry_period_s
  event          JSON trip / release / notice, re-sent until `cmd/trip_ack` covers its id
  ack            JSON answer to every command
  cmd/<name>     commands from the controller: heartbeat, relays, config, trip_ack
Everything is published at QoS 0 so no call waits for a PUBACK; commands are subscribed at
QoS 1; events are made reliable end-to-end by the controller's acknowledgement.
"""

import json

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from hsat.log import Log

BACKOFF_MIN_MS = 1000
BACKOFF_MAX_MS = 60000
MAX_MSGS_PER_POLL = 10


def base_topic(site_id: str, sat_id: str) -> str:
    return "hearth/{}/sat/{}/".format(site_id, sat_id)


class Link:
    def __init__(
        self,
        base: str,
        make_client: "Callable[..., Any]",
        log: "Log",
        host: str,
        port: int,
        client_id: str,
        user: "str | None" = None,
        password: "str | None" = None,
        keepalive_s: int = 30,
    ) -> None:
        self.base = base
        self.make_client = make_client
        self.log = log
        self.host = host
        self.port = port
        self.client_id = client_id
        self.user = user
        self.password = password
        self.keepalive_s = keepalive_s
        self.client: "Any" = None
        self.connected = False
        self.connects = 0
        self.next_attempt_ms = 0
        self.backoff_ms = BACKOFF_MIN_MS
        self.last_out_ms = 0
        self.inbox: "list[tuple[str, bytes]]" = []

    def topic(self, suffix: str) -> str:
        return self.base + suffix

    def _on_message(self, topic: "bytes | str", msg: "bytes | str") -> None:
        # Called from inside check_msg: only queue, never act here (no re-entry into umqtt).
        t = topic.decode() if isinstance(topic, bytes) else topic
        m = msg if isinstance(msg, bytes) else msg.encode()
        if t.startswith(self.base):
            self.inbox.append((t[len(self.base):], m))

    def ensure(self, now_ms: int, network_up: bool) -> bool:
        """Connect if due. True when a new session has just started."""
        if self.connected or not network_up or now_ms < self.next_attempt_ms:
            return False
        client = None
        try:
            client = self.make_client(self.client_id, self.host, self.port, self.user,
                                      self.password, self.keepalive_s)
            client.set_callback(self._on_message)
            client.set_last_will(self.topic("availability"), b"offline", True, 1)
            client.connect()
            client.subscribe(self.topic("cmd/#"), 1)
            client.publish(self.topic("availability"), b"online", True, 0)
        except Exception as err:
            self._close(client)
            self.next_attempt_ms = now_ms + self.backoff_ms
            self.log.warn("mqtt: connect to {}:{} failed ({}); next try in {} s".format(
                self.host, self.port, _describe(err), self.backoff_ms // 1000))
            self.backoff_ms = min(self.backoff_ms * 2, BACKOFF_MAX_MS)
            return False
        self.client = client
        self.connected = True
        self.connects += 1
        self.backoff_ms = BACKOFF_MIN_MS
        self.last_out_ms = now_ms
        self.log.info("mqtt: connected to {}:{} as {}".format(self.host, self.port,
                                                             self.client_id))
        return True

    def poll(self, now_ms: int) -> "list[tuple[str, bytes]]":
        """Read what arrived (topic suffix, payload); keep the session alive."""
        if self.connected:
            try:
                for _ in range(MAX_MSGS_PER_POLL):
                    if self.client.check_msg() is None:
                        break
                if now_ms - self.last_out_ms >= self.keepalive_s * 500:
                    self.client.ping()
                    self.last_out_ms = now_ms
            except Exception as err:
                self.drop(now_ms, err)
        msgs, self.inbox = self.inbox, []
        return msgs

    def publish(self, now_ms: int, suffix: str, payload: "Any", retain: bool = False) -> bool:
        if not self.connected:
            return False
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.client.publish(self.topic(suffix), data, retain, 0)
        except Exception as err:
            self.drop(now_ms, err)
            return False
        self.last_out_ms = now_ms
        return True

    def drop(self, now_ms: int, err: "Exception | None" = None) -> None:
        """Forget the session without a DISCONNECT, so the broker sends our Last Will."""
        if self.connected:
            self.log.warn("mqtt: link lost ({}); reconnecting".format(
                _describe(err) if err is not None else "closed"))
        self.connected = False
        self._close(self.client)
        self.client = None
        self.next_attempt_ms = now_ms + self.backoff_ms

    def _close(self, client: "Any") -> None:
        sock = getattr(client, "sock", None) if client is not None else None
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass


def _describe(err: "Exception") -> str:
    text = str(err)
    return "{}: {}".format(type(err).__name__, text) if text else type(err).__name__
