"""The MQTT bridge inside `hearth run`: commands in, state out, never in the tick's way.

- Commands arrive on paho's thread into the bridge's `CommandQueue`; a service command hook
  drains it at the start of each tick and folds them into `Overrides`. A DR cap with a
  duration is lifted by the hook when the duration has passed.
- State goes out through `BridgePublisher` (a reference handed over, ~1 µs).
- Today's revenue comes from the ledger, queried by a background thread once a minute;
  the tick only reads the cached value.
- A config pushed by an installer is validated and saved by the bridge; the running
  service does not hot-reload yet, so every changed section is reported as needing a
  restart (the answer says so; `systemctl restart hearth` applies it).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from controller.bridge.bridge import Bridge
from controller.bridge.commands import CommandQueue, SetDrCap
from controller.bridge.provisioning import ConfigStore
from controller.bridge.service_glue import BridgePublisher, apply_command
from controller.bridge.telemetry import Today
from controller.config.models import SiteConfig
from controller.control.overrides import Overrides

log = logging.getLogger(__name__)


class MqttCommands:
    """A service command hook over the bridge's queue."""

    def __init__(self, queue: CommandQueue) -> None:
        self.queue = queue
        self.dr_until_s: float | None = None

    def __call__(self, ov: Overrides, now_s: float) -> Overrides:
        for cmd in self.queue.drain():
            ov = apply_command(ov, cmd)
            log.info("command applied: %r", cmd)
            if isinstance(cmd, SetDrCap):
                self.dr_until_s = (now_s + cmd.duration_s
                                   if cmd.cap_w is not None and cmd.duration_s else None)
        if self.dr_until_s is not None and now_s >= self.dr_until_s:
            log.info("DR cap %s W ended (its duration passed)", ov.dr_cap_w)
            ov = ov._replace(dr_cap_w=None)
            self.dr_until_s = None
        return ov


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
                revenue=t["btc_value"] + t["heat_value"],
                sats=t.sats,
                heat_kwh=float(t["heat_delivered_kwh"]),
                heat_value=t["heat_value"],
                miner_energy_kwh=float(t["miner_kwh"]),
            )
        finally:
            led.close()

    def stop(self) -> None:
        self._stop.set()


def wire_mqtt(cfg: SiteConfig, site_path: str) -> tuple[Bridge, MqttCommands, BridgePublisher]:
    """Build and start the bridge (it connects in the background)."""
    store = ConfigStore(Path(site_path))
    queue = CommandQueue()

    def on_config(new: SiteConfig) -> list[str]:
        return sorted(k for k in SiteConfig.model_fields if getattr(new, k) != getattr(cfg, k))

    bridge = Bridge(store, on_command=queue, on_config=on_config)
    bridge.start()
    today = LedgerToday(cfg) if cfg.ledger.enabled else None
    return bridge, MqttCommands(queue), BridgePublisher(bridge, today=today)
