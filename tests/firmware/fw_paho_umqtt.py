"""`umqtt.simple.MQTTClient`'s interface on CPython, over paho-mqtt and a real socket.

The firmware's Link drives its client the umqtt way: blocking connect, then polling with
check_msg() from the main loop. This adapter does the same with paho's manual `loop()`
(no background thread), so the firmware logic can run as the satellite against a real
Mosquitto in the integration tests. MQTT 3.1.1, like umqtt.simple.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

CONNECT_TIMEOUT_S = 5.0


class _Sock:
    def __init__(self, owner: PahoUmqtt) -> None:
        self.owner = owner

    def close(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the will."""
        sock = self.owner.c.socket()
        if sock is not None:
            sock.close()
        self.owner.alive = False


class PahoUmqtt:
    def __init__(self, client_id: str, server: str, port: int = 0, user: str | None = None,
                 password: str | None = None, keepalive: int = 0) -> None:
        self.server, self.port = server, port or 1883
        self.keepalive = keepalive or 60
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=client_id, protocol=mqtt.MQTTv311)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.cb: Callable[[bytes, bytes], None] | None = None
        self.queue: list[tuple[bytes, bytes]] = []
        self.connack: Any = None
        self.suback = False
        self.alive = False
        self.sock: _Sock | None = None
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.queue.append((m.topic.encode(), m.payload))
        self.c.on_subscribe = lambda *a: setattr(self, "suback", True)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc

    def _pump(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise OSError(110, f"timed out waiting for {what}")
            if self.c.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError(-1, f"connection lost waiting for {what}")

    def set_callback(self, f: Callable[[bytes, bytes], None]) -> None:
        self.cb = f

    def set_last_will(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        self.c.will_set(topic, msg, qos=qos, retain=retain)

    def connect(self, clean_session: bool = True, timeout: float | None = None) -> int:
        try:
            self.c.connect(self.server, self.port, self.keepalive)
        except OSError:
            raise
        except Exception as err:  # paho raises its own errors for some failures
            raise OSError(str(err)) from err
        self._pump(lambda: self.connack is not None, "CONNACK")
        if self.connack.is_failure:
            raise OSError(f"broker refused: {self.connack}")
        self.alive = True
        self.sock = _Sock(self)
        return 0

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.suback = False
        self.c.subscribe(topic, qos)
        self._pump(lambda: self.suback, "SUBACK")

    def publish(self, topic: str, msg: bytes, retain: bool = False, qos: int = 0) -> None:
        if not self.alive:
            raise OSError(-1)
        info = self.c.publish(topic, msg, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise OSError(-1, f"publish failed: {info.rc}")
        if self.c.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            raise OSError(-1, "write failed")

    def check_msg(self) -> int | None:
        if not self.alive:
            raise OSError(-1)
        if not self.queue and self.c.loop(timeout=0.0) != mqtt.MQTT_ERR_SUCCESS:
            self.alive = False
            raise OSError(-1)
        if not self.queue:
            return None
        topic, payload = self.queue.pop(0)
        assert self.cb is not None
        self.cb(topic, payload)
        return 0x30

    def ping(self) -> None:
        if not self.alive:
            raise OSError(-1)
        # paho sends PINGREQ itself from loop() when the keepalive is due.

    def disconnect(self) -> None:
        self.c.disconnect()


def factory(client_id: str, host: str, port: int, user: str | None, password: str | None,
            keepalive_s: int) -> PahoUmqtt:
    return PahoUmqtt(client_id, host, port, user, password, keepalive_s)
