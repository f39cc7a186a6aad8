"""The controller's side of the satellite: its telemetry as time-stamped readings, the
heartbeat that keeps its relays out of the safe state, relay commands, settings, trips.

Threads: paho's network thread runs the message callbacks; `tick(now)` runs on the
control loop. The heartbeat is sent from `tick`, not from a timer thread, on purpose:
if the control loop stalls, the heartbeat stops and the board goes to its safe state.

Readings: each sensor value becomes a `Reading` stamped with the controller's monotonic
time at receipt minus the age the board reported, so a value the board had already held
for a while is not mistaken for a fresh one. The control core judges staleness itself.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from controller.bridge.connection import BrokerSettings, make_client
from controller.config.satellite import SatelliteSection
from controller.control.types import Reading
from controller.satellite.protocol import (
    Ack,
    Event,
    PayloadError,
    Telemetry,
    base_topic,
    parse_ack,
    parse_event,
    parse_telemetry,
)

log = logging.getLogger(__name__)

RELAYS_RESEND_S = 2.0
NO_COMMAND = ("boot", "waiting_for_command", "heartbeat_lost")
HELD = ("overtemp", "sensor_fault")


class SatelliteLink:
    def __init__(
        self,
        site_id: str,
        section: SatelliteSection,
        broker: BrokerSettings,
        *,
        tank_max_c: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        client_factory: Callable[[BrokerSettings], mqtt.Client] = make_client,
    ) -> None:
        self.section = section
        self.sat_id = section.id
        self.base = base_topic(site_id, section.id)
        # Own session next to the bridge's: a distinct client id, or they would kick
        # each other off the broker.
        self.broker = dataclasses.replace(
            broker, client_id=f"{broker.client_id}-sat-{section.id}"[:64])
        self.board_settings = section.board_settings(tank_max_c)
        self.clock = clock
        self._factory = client_factory
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self.connected = False
        self.online: bool | None = None  # the board's availability, None until known
        self.telemetry: Telemetry | None = None
        self.telemetry_at: float | None = None
        self._readings: dict[str, Reading] = {}
        self.events: collections.deque[Event] = collections.deque(maxlen=200)
        self._seen: set[tuple[int, int]] = set()
        self.acks: collections.deque[Ack] = collections.deque(maxlen=100)
        self.refused = 0  # messages from the board that broke the contract
        self.desired: tuple[bool, bool] | None = None
        self._relays_sent_at: float | None = None
        self._cmd_n = 0
        self._hb_seq = 0
        self._hb_next = 0.0
        self.last_heartbeat_ack_at: float | None = None
        self._config_pushed_boot: int | None = None
        self._config_sent_at: float | None = None
        self.on_telemetry: Callable[[Telemetry], None] | None = None
        self.on_event: Callable[[Event], None] | None = None

    # -- session ---------------------------------------------------------------------------

    def start(self) -> None:
        client = self._factory(self.broker)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        self._client = client
        client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Any = None) -> None:
        if reason_code.is_failure:
            log.error("satellite %s: broker %s:%s refused the connection: %s", self.sat_id,
                      self.broker.host, self.broker.port, reason_code)
            return
        client.subscribe([(self.base + t, 1) for t in ("availability", "telemetry", "event",
                                                         "ack")])
        with self._lock:
            self.connected = True
            self._config_pushed_boot = None  # push again: the board may have rebooted
        log.info("satellite %s: connected to %s:%s", self.sat_id, self.broker.host,
                 self.broker.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Any = None) -> None:
        with self._lock:
            self.connected = False
        log.warning("satellite %s: broker connection lost (%s)", self.sat_id, reason_code)

    # -- from the board --------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        suffix = msg.topic[len(self.base):] if msg.topic.startswith(self.base) else msg.topic
        payload = bytes(msg.payload)
        now = self.clock()
        try:
            if suffix == "availability":
                self._availability(payload)
            elif suffix == "telemetry":
                self._telemetry(parse_telemetry(payload), now)
            elif suffix == "event":
                self._event(parse_event(payload))
            elif suffix == "ack":
                self._ack(parse_ack(payload), now)
        except PayloadError as err:
            self.refused += 1
            log.warning("satellite %s: refused %s message: %s", self.sat_id, suffix, err)

    def _availability(self, payload: bytes) -> None:
        text = payload.decode(errors="replace")
        if text not in ("online", "offline"):
            raise PayloadError([])
        online = text == "online"
        with self._lock:
            changed = self.online != online
            self.online = online
            if online:
                self._config_pushed_boot = None
        if changed:
            (log.info if online else log.warning)("satellite %s is %s", self.sat_id, text)

    def _telemetry(self, t: Telemetry, now: float) -> None:
        readings: dict[str, Reading] = {}
        for role, value in t.sensors.items():
            if value.temp_c is not None:
                readings[f"{role}_c"] = Reading(value.temp_c, now - value.age_s)
        if t.heat_power_w is not None:
            readings["heat_power_w"] = Reading(t.heat_power_w, now)
        if t.flow_l_per_min is not None:
            readings["flow_l_per_min"] = Reading(t.flow_l_per_min, now)
        if t.energy_wh is not None:
            readings["heat_energy_kwh"] = Reading(t.energy_wh / 1000.0, now)
        with self._lock:
            self.telemetry = t
            self.telemetry_at = now
            for key in [k for k in self._readings if k.endswith("_c")]:
                if key not in readings:  # a sensor now in fault: its old value stays old
                    readings[key] = self._readings[key]
            self._readings = readings
        if self.on_telemetry is not None:
            self.on_telemetry(t)

    def _event(self, e: Event) -> None:
        key = (e.boot, e.id)
        with self._lock:
            new = key not in self._seen
            if new:
                self._seen.add(key)
                self.events.append(e)
        if new:
            if e.type == "trip":
                log.warning("satellite %s trip %s: %s", self.sat_id, e.code, e.reason)
            else:
                log.info("satellite %s %s %s: %s", self.sat_id, e.type, e.code, e.reason)
            if self.on_event is not None:
                self.on_event(e)
        # Acknowledge even repeats: the board re-sends until it hears this.
        self._publish("cmd/trip_ack", {"upto": e.id})

    def _ack(self, a: Ack, now: float) -> None:
        with self._lock:
            self.acks.append(a)
            if a.cmd == "heartbeat" and a.ok:
                self.last_heartbeat_ack_at = now
        if not a.ok:
            log.error("satellite %s refused cmd/%s (id %s): %s", self.sat_id, a.cmd, a.id,
                      a.error)
        elif a.cmd == "config":
            log.info("satellite %s accepted settings: %s", self.sat_id,
                     json.dumps(a.raw.get("settings"), sort_keys=True))
        elif a.cmd == "relays" and a.raw.get("held_by"):
            log.warning("satellite %s holds the relays (%s): contactor %s", self.sat_id,
                        ", ".join(a.raw["held_by"]), a.raw.get("contactor"))

    # -- to the board ----------------------------------------------------------------------

    def _publish(self, suffix: str, payload: dict[str, Any]) -> bool:
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(self.base + suffix, json.dumps(payload), qos=1)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _next_id(self, prefix: str) -> str:
        self._cmd_n += 1
        return f"{prefix}{self._cmd_n}"

    def set_relays(self, contactor: bool, pump: bool) -> None:
        """What the controller wants; sent now and again while the board does not have it."""
        with self._lock:
            changed = self.desired != (contactor, pump)
            self.desired = (contactor, pump)
        if changed:
            self._send_relays(self.clock())

    def _send_relays(self, now: float) -> None:
        if self.desired is None:
            return
        contactor, pump = self.desired
        if self._publish("cmd/relays", {"id": self._next_id("r"), "contactor": contactor,
                                        "pump": pump}):
            self._relays_sent_at = now

    def tick(self, now: float) -> None:
        """Call once per control tick: heartbeat, relay and settings upkeep."""
        if not self.connected:
            return
        if now >= self._hb_next:
            self._hb_seq += 1
            if self._publish("cmd/heartbeat", {"seq": self._hb_seq}):
                self._hb_next = now + self.section.heartbeat_interval_s
        with self._lock:
            t, t_at = self.telemetry, self.telemetry_at
        if t is None or t_at is None:
            return
        config_due = self.section.push_settings and self._config_pushed_boot != t.boot and (
            self._config_sent_at is None or now - self._config_sent_at >= RELAYS_RESEND_S)
        if config_due and self._publish("cmd/config", {"id": self._next_id("cfg"),
                                                       "settings": self.board_settings}):
            self._config_pushed_boot = t.boot
            self._config_sent_at = now
        if self.desired is not None:
            fresh = self._relays_sent_at is None or t_at > self._relays_sent_at + 0.05
            stale_cmd = any(r in NO_COMMAND for r in t.safe)
            held = any(r in HELD for r in t.safe)
            differs = (t.contactor, t.pump) != self.desired
            due = self._relays_sent_at is None or now - self._relays_sent_at >= RELAYS_RESEND_S
            if fresh and due and (stale_cmd or (differs and not held)):
                self._send_relays(now)

    # -- readings --------------------------------------------------------------------------

    def sensor_readings(self) -> dict[str, Reading]:
        """Everything the board measures: top_c ... return_c, heat_power_w, flow, kWh."""
        with self._lock:
            return dict(self._readings)

    def readings(self) -> dict[str, Reading | None]:
        """`Measurements` fields this source provides (the tank temperature for control)."""
        with self._lock:
            return {"tank_temp_c": self._readings.get(f"{self.section.tank_sensor}_c")}


class SatelliteSource:
    """The link as a runtime `MeasurementSource`. `readings()` is called once per control
    tick; the heartbeat rides on it, so a stalled tick loop stops the heartbeat."""

    def __init__(self, link: SatelliteLink) -> None:
        self.link = link

    async def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        self.link.stop()

    def readings(self) -> dict[str, Reading | None]:
        self.link.tick(self.link.clock())
        return self.link.readings()


if TYPE_CHECKING:  # mypy proves the runtime can take it as one of its sources
    from controller.runtime.ports import MeasurementSource

    def _as_source(s: SatelliteSource) -> MeasurementSource:
        return s
