"""The MQTT side of a rig run: the broker with auth, the satellite, the rig's MQTT clients,
and the faults that act on them.

- `RigBroker` (broker.py) with the shipped ACL; the controller's site file gets an `[mqtt]`
  section with its account, so `hearth run` publishes telemetry and takes commands for real.
- With a scenario `[satellite]` table: the firmware logic (satellite.py) on its own account,
  its tank sensor reading the plant's tank, its contactor feeding the plant's tank miners
  (EmulatedSite.tank_contactor), and the controller's `[satellite]` section.
- An observer (`hil-observer`, read-only `hearth/#`) records every message with the rig's
  time; an `aggregator` account sends DR caps (`cmd/dr_cap`, the documented payload).
- After each broker restart a fresh client probes the retained messages the controller
  (re)published: a broker that lost everything must be refilled by the site.

Faults: `broker_restart` (down for the duration, back on the same port), `controller_freeze`
(SIGSTOP / SIGCONT of `hearth run`: its heartbeats stop), `satellite_link_down` (the
board's Wi-Fi drops: no heartbeat reaches it, control goes on), `tank_sensor_crc` /
`tank_sensor_85` / `tank_sensor_absent` (the satellite's top DS18B20), `dr_cap` (`value` =
cap in W for the duration).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hil.rig.broker import AGGREGATOR_USER, CONTROLLER_USER, HOST, OBSERVER_USER, RigBroker
from hil.rig.satellite import RigSatellite, board_settings
from hil.rig.scenario import Fault, Scenario

log = logging.getLogger(__name__)

SENSOR_FAULTS = {"tank_sensor_crc": "crc", "tank_sensor_85": "power_on",
                 "tank_sensor_absent": "absent"}
MQ_FAULTS = ("broker_restart", "controller_freeze", "satellite_link_down", "dr_cap",
             *SENSOR_FAULTS)
PROBE_AFTER_S = 4.0  # the retained-state probe connects this long after the broker is back

# The controller's [mqtt] in the rig: short intervals so a 40 s scenario sees many messages.
MQTT_SECTION = {"keepalive_s": 5, "telemetry_interval_s": 0.5, "telemetry_refresh_s": 5.0,
                "state_expiry_s": 30, "reconnect_min_s": 1, "reconnect_max_s": 2}


@dataclass
class Message:
    t_s: float
    topic: str
    payload: bytes
    retain: bool


@dataclass
class MqttRecord:
    """What the MQTT side saw, in the rig's time (seconds since the scenario started)."""

    site_id: str
    sat_id: str | None = None
    messages: list[Message] = field(default_factory=list)
    dr_sent: list[tuple[float, float | None]] = field(default_factory=list)  # (t, cap_w)
    probes: list[tuple[float, dict[str, bytes]]] = field(default_factory=list)  # retained
    contactor_changes: list[tuple[float, bool]] = field(default_factory=list)
    satellite_settings: dict[str, Any] = field(default_factory=dict)
    satellite_errors: list[str] = field(default_factory=list)
    satellite_trips: list[str] = field(default_factory=list)
    controller_mqtt: dict[str, Any] = field(default_factory=dict)
    broker_starts: int = 0

    def topic(self, suffix: str) -> str:
        return f"hearth/{self.site_id}/{suffix}"

    def on(self, suffix: str, after_s: float = float("-inf")) -> list[Message]:
        t = self.topic(suffix)
        return [m for m in self.messages if m.topic == t and m.t_s >= after_s]


class _Client:
    """A paho client in its own network thread that reconnects by itself (MQTT v5)."""

    def __init__(self, name: str, user: str, password: str, port: int,
                 on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
                 subscribe: str | None = None) -> None:
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name,
                             protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password)
        self.c.reconnect_delay_set(1, 1)
        self.subscribe_to = subscribe
        self.connected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *a: self.connected.clear()
        if on_message is not None:
            self.c.on_message = lambda c, u, m: on_message(m)
        self.c.connect_async(HOST, port, keepalive=5)
        self.c.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            log.error("HIL MQTT client refused: %s", rc)
            return
        if self.subscribe_to is not None:
            client.subscribe(self.subscribe_to, qos=1)
        self.connected.set()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class MqttRig:
    def __init__(self, s: Scenario, out: Path, site_id: str, clock: Callable[[], float],
                 tank_c: Callable[[], float], tank_max_c: float | None) -> None:
        self.s, self.out, self.clock, self.tank_c = s, out, clock, tank_c
        self.sat_id = str(s.satellite.get("id", "tank1")) if s.satellite is not None else None
        self.tank_max_c = tank_max_c
        self.rec = MqttRecord(site_id, self.sat_id)
        self.broker = RigBroker(out / "mosquitto", site_id, self.sat_id)
        self.satellite: RigSatellite | None = None
        self._observer: _Client | None = None
        self._aggregator: _Client | None = None
        self._lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._frozen: subprocess.Popen[bytes] | None = None

    # -- set-up ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # no broker or satellite left behind
            raise

    async def _start(self) -> None:
        await asyncio.to_thread(self.broker.start)
        pw = self.broker.passwords
        self._observer = _Client("hil-observer", OBSERVER_USER, pw[OBSERVER_USER],
                                 self.broker.port, self._observe,
                                 f"hearth/{self.rec.site_id}/#")
        self._aggregator = _Client("hil-aggregator", AGGREGATOR_USER, pw[AGGREGATOR_USER],
                                   self.broker.port)
        if self.s.satellite is not None and self.sat_id is not None:
            assert self.tank_max_c is not None  # the scenario parser requires a tank
            settings = board_settings(self.s.satellite, self.tank_max_c)
            self.rec.satellite_settings = settings
            user = f"sat-{self.sat_id}"
            self.satellite = RigSatellite(
                self.out / "satellite", site_id=self.rec.site_id, sat_id=self.sat_id,
                host=HOST, port=self.broker.port, user=user, password=pw[user],
                tank_c=self.tank_c, settings=settings, clock=self.clock)
            self.rec.contactor_changes = self.satellite.contactor_changes
            self.satellite.start()
        ok = await asyncio.to_thread(self._observer.connected.wait, 10.0)
        if not ok:
            raise RuntimeError(f"the HIL observer could not connect to the rig broker:\n"
                               f"{self.broker.log_text()[-2000:]}")

    def configure(self, d: dict[str, Any], directory: Path) -> None:
        """Add [mqtt] (and [satellite]) to the controller's site dict."""
        pw_file = self.broker.password_file_for(CONTROLLER_USER, directory)
        d["mqtt"] = {"host": HOST, "port": self.broker.port, "username": CONTROLLER_USER,
                     "password_file": str(pw_file), **MQTT_SECTION}
        self.rec.controller_mqtt = dict(d["mqtt"])
        if self.s.satellite is not None:
            d["satellite"] = {"id": self.sat_id, **{k: v for k, v in self.s.satellite.items()
                                                    if k != "id"}}

    @property
    def contactor(self) -> Callable[[], bool] | None:
        sat = self.satellite
        return (lambda: sat.contactor) if sat is not None else None

    # -- recording ---------------------------------------------------------------------------

    def _observe(self, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.rec.messages.append(Message(self.clock(), m.topic, bytes(m.payload),
                                             bool(m.retain)))

    async def _probe_retained(self, delay_s: float) -> None:
        """A new session after the broker came back: what does it get as retained?"""
        await asyncio.sleep(delay_s)
        got: dict[str, bytes] = {}

        def keep(m: mqtt.MQTTMessage) -> None:
            if m.retain:
                got[m.topic] = bytes(m.payload)

        c = _Client(f"hil-probe-{len(self.rec.probes)}", OBSERVER_USER,
                    self.broker.passwords[OBSERVER_USER], self.broker.port, keep,
                    f"hearth/{self.rec.site_id}/#")
        t = self.clock()
        await asyncio.sleep(1.5)
        await asyncio.to_thread(c.close)
        self.rec.probes.append((t, dict(got)))

    # -- faults ------------------------------------------------------------------------------

    def send_dr_cap(self, cap_w: float | None, duration_s: float | None) -> None:
        assert self._aggregator is not None
        body: dict[str, Any] = {"cap_w": cap_w}
        if cap_w is not None and duration_s:
            body["duration_s"] = duration_s
        self._aggregator.c.publish(f"hearth/{self.rec.site_id}/cmd/dr_cap", json.dumps(body),
                                   qos=1)
        self.rec.dr_sent.append((self.clock(), cap_w))

    async def fault(self, f: Fault, on: bool, proc: subprocess.Popen[bytes] | None) -> None:
        if f.kind == "broker_restart":
            if on:
                await asyncio.to_thread(self.broker.stop)
            else:
                await asyncio.to_thread(self.broker.start)
                self.rec.broker_starts = self.broker.starts
                self._tasks.append(asyncio.create_task(self._probe_retained(PROBE_AFTER_S)))
        elif f.kind == "controller_freeze":
            if proc is None or proc.poll() is not None:
                raise RuntimeError("controller_freeze: hearth run is not running")
            proc.send_signal(signal.SIGSTOP if on else signal.SIGCONT)
            self._frozen = proc if on else None
        elif f.kind == "satellite_link_down":
            if self.satellite is None:
                raise RuntimeError(f"{f.kind} needs a satellite in the scenario")
            self.satellite.net.up = not on
        elif f.kind in SENSOR_FAULTS:
            if self.satellite is None:
                raise RuntimeError(f"{f.kind} needs a satellite in the scenario")
            self.satellite.set_sensor("top", SENSOR_FAULTS[f.kind] if on else "ok")
        elif f.kind == "dr_cap":
            if on:
                self.send_dr_cap(f.value, f.duration_s)
            else:
                self.send_dr_cap(None, None)

    def thaw(self) -> None:
        """SIGCONT a hearth run still frozen (a run cut short inside the fault)."""
        if self._frozen is not None and self._frozen.poll() is None:
            self._frozen.send_signal(signal.SIGCONT)
        self._frozen = None

    async def stop(self) -> None:
        self.thaw()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.satellite is not None:
            await asyncio.to_thread(self.satellite.stop)
            self.rec.satellite_errors = self.satellite.logged("tick raised")
            self.rec.satellite_trips = self.satellite.logged("trip ")
        for c in (self._observer, self._aggregator):
            if c is not None:
                await asyncio.to_thread(c.close)
        await asyncio.to_thread(self.broker.stop)
        with (self.out / "mqtt.jsonl").open("w") as f:
            for m in self.rec.messages:
                f.write(json.dumps({"t_s": round(m.t_s, 3), "topic": m.topic,
                                    "retain": m.retain,
                                    "payload": m.payload.decode(errors="replace")}) + "\n")
