"""An MQTT v5 test client that keeps the last JSON message per topic, and an async poll.

Shared by the end-to-end tests that drive `hearth run` over a real broker (DR, prices
and plan): import it as ``import mqtt_observer`` (pytest has ``pythonpath = tests``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import brokerkit
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Observer:
    """Connects as `user`, keeps the last (JSON-decoded) payload of every topic it is
    subscribed to (`observer.c.subscribe(...)`); `get(topic)` reads it."""

    def __init__(self, broker: brokerkit.Broker, user: str, pw: str, client_id: str) -> None:
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, pw)
        self.last: dict[str, Any] = {}
        self.lock = threading.Lock()
        connected = threading.Event()
        self.c.on_message = self._on_message
        self.c.on_connect = lambda *a: connected.set()
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        assert connected.wait(15)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.last[msg.topic] = json.loads(msg.payload) if msg.payload else None

    def get(self, topic: str) -> Any:
        with self.lock:
            return self.last.get(topic)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


async def until(cond: Callable[[], bool], timeout_s: float, what: str,
                poll_s: float = 0.1) -> float:
    """Poll `cond` without blocking the event loop; the seconds it took, or an
    AssertionError naming `what`."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(poll_s)
    return time.monotonic() - t0
