"""Tasmota plug emulator over MQTT (a paho client on the test's Mosquitto).

Answers `cmnd/<topic>/POWER` (ON/OFF/query) on `stat/<topic>/RESULT` and
`stat/<topic>/POWER`, `cmnd/<topic>/STATUS 8` on `stat/<topic>/STATUS8` with the energy
meter's Power, and publishes `tele/<topic>/LWT` Online (retained). `hang = True` makes it
ignore commands (the broker still up, the plug wedged).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hil.miners.core import EmulatedMiner
from hil.miners.servers import Emulator


class TasmotaEmulator(Emulator):
    def __init__(self, miner: EmulatedMiner, broker_port: int, topic: str = "miner-plug",
                 broker_host: str = "127.0.0.1") -> None:
        super().__init__(miner)
        self.broker = (broker_host, broker_port)
        self.topic = topic
        self.port = broker_port
        self._client: mqtt.Client | None = None

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._command, msg.topic,
                                        msg.payload.decode("utf-8", "replace"))

    def _command(self, topic: str, payload: str) -> None:
        if self.miner.hang or self._client is None:
            return
        cmd = topic.rsplit("/", 1)[-1].upper()
        m, c, t = self.miner, self._client, self.topic
        if cmd == "POWER":
            p = payload.strip().upper()
            if p in ("ON", "1") and m.paused:
                m.target_w = m.cfg.max_power_w
                m.resume()
            elif p in ("OFF", "0") and not m.paused:
                m.pause()
            state = "OFF" if m.paused else "ON"
            c.publish(f"stat/{t}/RESULT", json.dumps({"POWER": state}))
            c.publish(f"stat/{t}/POWER", state)
        elif cmd == "STATUS" and payload.strip() == "8":
            c.publish(f"stat/{t}/STATUS8", json.dumps({"StatusSNS": {
                "Time": "2025-01-01T00:00:00", "ENERGY": {"Power": round(m.power_w),
                                                          "Voltage": 230, "Current": 0}}}))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> TasmotaEmulator:
        self._loop = asyncio.get_running_loop()
        loop = self._loop
        ready: asyncio.Future[None] = loop.create_future()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tasmota-{self.topic}")
        c.will_set(f"tele/{self.topic}/LWT", "Offline", retain=True)

        def on_connect(cl: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
            cl.subscribe(f"cmnd/{self.topic}/#")
            cl.publish(f"tele/{self.topic}/LWT", "Online", retain=True)

        def settle() -> None:
            if not ready.done():
                ready.set_result(None)

        def on_subscribe(*_a: Any) -> None:
            loop.call_soon_threadsafe(settle)

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, self._on_message
        c.connect(*self.broker)
        c.loop_start()
        self._client = c
        await asyncio.wait_for(ready, 10)
        return self

    async def stop(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()
