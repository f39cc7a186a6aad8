"""The MQTT bridge inside `hearth run`: commands in, state out, never in the tick's way.

- Commands arrive on paho's thread. Demand-response commands (`dr_cap`, `dr_absorb`) go
  straight into the DR schedule (controller/runtime/dr.py), which folds them into
  `Overrides` at the next tick and ends them when their duration has passed; the others go
  into the bridge's `CommandQueue`, drained by a service command hook at the start of each
  tick. Either way the tick loop is woken at once, so a cap reaches the miners without
  waiting for the next regular tick.
- State goes out through `BridgePublisher` (a reference handed over, ~1 µs); the DR events
  (active and scheduled) through `DrStatePublisher` on `state/dr` (retained, on change).
- Today's revenue comes from the ledger, queried by a background thread once a minute;
  the tick only reads the cached value.
- A config pushed by an installer is validated and saved by the bridge; the running
  service does not hot-reload yet, so every changed section is reported as needing a
  restart (the answer says so; `systemctl restart hearth` applies it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.bridge.bridge import Bridge
from controller.bridge.commands import Command, CommandQueue, SetDrAbsorb, SetDrCap
from controller.bridge.connection import publish_properties
from controller.bridge.provisioning import ConfigStore
from controller.bridge.service_glue import BridgePublisher, apply_command
from controller.bridge.telemetry import Today
from controller.config.models import SiteConfig
from controller.control.overrides import Overrides
from controller.runtime.dr import DrEvent, DrHook, DrSchedule, Kind
from controller.runtime.ports import TickRecord

log = logging.getLogger(__name__)

MQTT = "mqtt"
_DEFAULT_IDS: dict[Kind, str] = {"reduce": "mqtt-cap", "absorb": "mqtt-absorb"}


def dr_event_of(cmd: SetDrCap | SetDrAbsorb, received_s: float) -> DrEvent | None:
    """The DR event an MQTT command asks for (None: it ends one)."""
    kind: Kind = "reduce" if isinstance(cmd, SetDrCap) else "absorb"
    w = cmd.cap_w if isinstance(cmd, SetDrCap) else cmd.absorb_w
    if w is None:
        return None
    start = cmd.start_s if cmd.start_s is not None else received_s
    end = None if cmd.duration_s is None else start + cmd.duration_s
    return DrEvent(cmd.event_id or _DEFAULT_IDS[kind], MQTT, kind, w, start, end, received_s)


class MqttCommands:
    """The bridge's command sink and the service's command hook.

    Called on paho's thread for every valid command: DR commands go into the schedule at
    once (received time = now), the others into the queue; then the tick loop is woken.
    Without an event id, a new cap replaces the previous MQTT cap (and `null` ends it),
    as before; with one, each event stands on its own and `null` ends that one.
    """

    def __init__(self, queue: CommandQueue, dr: DrSchedule | None = None,
                 utc: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self.dr = dr if dr is not None else DrSchedule(utc)
        self.utc = utc
        self.wake: Callable[[float], None] | None = None  # set by the service's assembly

    def sink(self, command: Command) -> None:
        cmd = command
        if isinstance(cmd, SetDrCap | SetDrAbsorb):
            ev = dr_event_of(cmd, self.utc())
            if ev is None:
                kind: Kind = "reduce" if isinstance(cmd, SetDrCap) else "absorb"
                self.dr.cancel(MQTT, cmd.event_id, kind)
            else:
                if cmd.event_id is None:  # one anonymous event per kind: replace it
                    self.dr.cancel(MQTT, ev.event_id)
                self.dr.put(ev)
        else:
            self.queue(cmd)  # may raise CommandRefused (queue full): answered as an error
        if self.wake is not None:
            self.wake(0.0)

    def __call__(self, ov: Overrides, now_s: float) -> Overrides:
        for cmd in self.queue.drain():
            ov = apply_command(ov, cmd)
            log.info("command applied: %r", cmd)
        return ov


class DrStatePublisher:
    """`hearth/<site>/state/dr`: the active and scheduled DR events, for Home Assistant and
    the HMI. Retained with the state expiry; published on change and every refresh."""

    def __init__(self, bridge: Bridge, hook: DrHook) -> None:
        self.bridge = bridge
        self.hook = hook
        assert bridge.config.mqtt is not None
        self.refresh_s = float(bridge.config.mqtt.telemetry_refresh_s)
        self.expiry_s = bridge.config.mqtt.state_expiry_s
        self._last: bytes | None = None
        self._last_at = -float("inf")
        self._connects = -1

    def payload(self, now_utc_s: float) -> dict[str, Any]:
        cur = self.hook.current
        return {
            "active": bool(cur.events),
            "cap_w": None if cur.cap_w is None else round(cur.cap_w),
            "absorb_w": None if cur.absorb_w is None else round(cur.absorb_w),
            "events": [e.as_json() for e in cur.events],
            "scheduled": [e.as_json() for e in self.hook.schedule.events()
                          if e.start_s > now_utc_s],
        }

    def publish(self, tick: TickRecord) -> None:
        data = json.dumps(self.payload(tick.at_utc.timestamp()), separators=(",", ":"),
                          sort_keys=True).encode()
        now = tick.monotonic_s
        connects = self.bridge.stats.connects
        if (data == self._last and now - self._last_at < self.refresh_s
                and connects == self._connects):
            return
        if not self.bridge.connected:
            return
        props = publish_properties()
        props.MessageExpiryInterval = self.expiry_s
        # paho's publish only queues the packet for its network thread (thread-safe).
        info = self.bridge._client.publish(self.bridge.topics.state("dr"), data, qos=1,
                                           retain=True, properties=props)
        if info.rc == 0:
            self._last, self._last_at, self._connects = data, now, connects

    async def close(self) -> None:
        return None


class LedgerToday:
    """Today's figures from the ledger, refreshed off the control loop."""

    def __init__(self, cfg: SiteConfig, every_s: float = 60.0) -> None:
        self.cfg = cfg
        self.every_s = every_s
        self.value: Today | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-today", daemon=True)
        self._thread.start()

    def __call__(self) -> Today | None:
        return self.value

    def _run(self) -> None:
        while True:
            try:
                self.value = self._query()
            except Exception as err:  # no ledger yet, database away: just no figures
                log.debug("today's ledger figures unavailable: %s", err)
            if self._stop.wait(self.every_s):
                return

    def _query(self) -> Today | None:
        from controller.ledger.query import Ledger, local_day_bounds

        led = Ledger.open(self.cfg.ledger.url, self.cfg.site.id)
        try:
            now = datetime.now(led.tz)
            d0, d1 = local_day_bounds(now.date(), led.tz)
            t = led.totals(d0, d1)
            return Today(
                day_start=datetime.fromtimestamp(d0, led.tz),
                btc_value=t["btc_value"],
                heat_value=t["heat_value"],
                power_cost=t.power_cost,
                net=t["net"],
                sats=t.sats,
                heat_kwh=float(t["heat_delivered_kwh"]),
                miner_energy_kwh=float(t["miner_kwh"]),
            )
        finally:
            led.close()

    def stop(self) -> None:
        self._stop.set()


def wire_mqtt(cfg: SiteConfig, site_path: str, dr: DrSchedule | None = None, *,
              on_saved: Callable[[], None] | None = None, ledger_today: bool = True,
              store: ConfigStore | None = None,
              ) -> tuple[Bridge, MqttCommands, BridgePublisher]:
    """Build and start the bridge (it connects in the background). DR commands go into
    `dr` (the service's schedule, shared with OpenADR). `on_saved` is called after a
    config was written (safe mode: the service then restarts to apply it). `store`: the
    site file as edited in safe mode (default: the file, loaded here)."""
    store = store or ConfigStore(Path(site_path))
    commands = MqttCommands(CommandQueue(), dr)

    def on_config(new: SiteConfig) -> list[str]:
        if on_saved is not None:
            on_saved()
        return sorted(k for k in SiteConfig.model_fields if getattr(new, k) != getattr(cfg, k))

    bridge = Bridge(store, on_command=commands.sink, on_config=on_config)
    bridge.start()
    today = LedgerToday(cfg) if cfg.ledger.enabled and ledger_today else None
    return bridge, commands, BridgePublisher(bridge, today=today)
