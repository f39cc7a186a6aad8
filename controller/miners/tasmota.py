"""Tasmota plug over MQTT: a miner with no API, switched on/off, power from the plug's meter.

Source: Tasmota documentation, "MQTT" and "Commands" pages (tasmota.github.io/docs):
- `cmnd/<topic>/POWER` "ON" | "OFF" switches; an empty payload queries. The device answers
  on `stat/<topic>/RESULT` {"POWER": "ON"} and `stat/<topic>/POWER` "ON".
- `cmnd/<topic>/STATUS` "8" -> `stat/<topic>/STATUS8` {"StatusSNS": {"ENERGY": {"Power": W}}}
  on plugs with an energy meter.
- `tele/<topic>/LWT` "Online" / "Offline" (retained).
A plug that does not answer within the timeout is unavailable (the broker alone being up
proves nothing).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from controller.miners.base import DriverError
from controller.miners.relay import RelayDriver

_client_ids = itertools.count(1)


class TasmotaDriver(RelayDriver):
    api = "tasmota"
    document = "Tasmota docs: MQTT, Commands (POWER, STATUS 8)"

    def __init__(self, cfg: Any, *, host: str, port: int, topic: str,
                 username: str | None = None, password: str | None = None,
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.host, self.port, self.topic = host, port, topic
        self._auth = (username, password)
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, list[asyncio.Future[str]]] = {}
        self._connected: asyncio.Future[None] | None = None

    async def _ensure(self) -> mqtt.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        await self.close()
        self._loop = asyncio.get_running_loop()
        loop = self._loop
        connected: asyncio.Future[None] = loop.create_future()
        self._connected = connected
        c = mqtt.Client(CallbackAPIVersion.VERSION2,
                        client_id=f"hearth-{self.name}-{next(_client_ids)}")
        if self._auth[0] is not None:
            c.username_pw_set(self._auth[0], self._auth[1])

        def on_connect(cl: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
            if rc.is_failure:
                loop.call_soon_threadsafe(_fail, connected, f"broker refused: {rc}")
                return
            cl.subscribe([(f"stat/{self.topic}/#", 0), (f"tele/{self.topic}/#", 0)])
            loop.call_soon_threadsafe(_done, connected)

        def on_message(_cl: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._deliver, msg.topic,
                                      msg.payload.decode("utf-8", "replace"))

        c.on_connect = on_connect
        c.on_message = on_message
        self._client = c
        c.connect_async(self.host, self.port, keepalive=30)
        c.loop_start()
        await connected
        return c

    def _deliver(self, topic: str, payload: str) -> None:
        for fut in self._waiters.pop(topic, []):
            if not fut.done():
                fut.set_result(payload)

    async def _ask(self, command: str, payload: str, reply: str) -> str:
        c = await self._ensure()
        assert self._loop is not None
        fut: asyncio.Future[str] = self._loop.create_future()
        self._waiters.setdefault(f"stat/{self.topic}/{reply}", []).append(fut)
        c.publish(f"cmnd/{self.topic}/{command}", payload)
        return await fut

    async def _relay_get(self) -> tuple[bool, float | None, float | None]:
        state = (await self._ask("POWER", "", "POWER")).strip().upper()
        if state not in ("ON", "OFF"):
            raise ValueError(f"POWER reply {state!r} is neither ON nor OFF")
        status = json.loads(await self._ask("STATUS", "8", "STATUS8"))
        energy = (status.get("StatusSNS") or {}).get("ENERGY") or {}
        power = float(energy["Power"]) if "Power" in energy else None
        return state == "ON", power, None

    async def _relay_set(self, on: bool) -> None:
        got = (await self._ask("POWER", "ON" if on else "OFF", "POWER")).strip().upper()
        if got != ("ON" if on else "OFF"):
            raise DriverError(f"plug answered POWER {got!r}")

    async def close(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()
        for futs in self._waiters.values():
            for f in futs:
                f.cancel()
        self._waiters.clear()


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(fut: asyncio.Future[None], why: str) -> None:
    if not fut.done():
        fut.set_exception(DriverError(why))
