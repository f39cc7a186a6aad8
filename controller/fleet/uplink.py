"""`hearth fleet uplink`: a site's closed ledger rows and fleet info onto its own broker.

A process of its own beside `hearth run` (never inside it: the fleet must not touch the
control path). It reads the site's ledger database — the ledger is the outbox — and
publishes every closed interval and telemetry step of the last `window_h` hours that it
has not published yet (QoS 1), plus `fleet/info` (retained): the numbers the fleet needs
to judge the site's flexibility and to link to its wall page. The site's Mosquitto bridge
takes them to the cluster and queues them while the link is down. A restart publishes the
window again; the fleet's inserts are idempotent, so that costs bandwidth, not accuracy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from controller.bridge.connection import BrokerSettings, make_client
from controller.config.models import SiteConfig
from controller.fleet.rows import encode_row

log = logging.getLogger(__name__)


def fleet_info(cfg: SiteConfig, hmi_url: str | None) -> dict[str, Any]:
    """What the fleet needs to know about the site that telemetry does not say."""
    return {
        "site_id": cfg.site.id,
        "currency": cfg.site.currency,
        "timezone": cfg.site.timezone,
        "import_limit_w": cfg.site.import_limit_w,
        "miner_capacity_w": cfg.miner_capacity_w,
        "miners": {m.name: {"min_power_w": m.min_power_w, "max_power_w": m.max_power_w}
                   for m in cfg.miners},
        "hmi_url": hmi_url,
    }


class Uplink:
    def __init__(self, cfg: SiteConfig, site_path: Path, hmi_url: str | None = None,
                 window_h: float = 48.0, poll_s: float = 30.0) -> None:
        self.cfg = cfg
        self.window_s = int(window_h * 3600)
        self.poll_s = poll_s
        self.hmi_url = hmi_url
        self.sent: set[tuple[str, int, int]] = set()
        self.published = 0
        self._stop = threading.Event()
        bs = BrokerSettings.from_section(cfg.mqtt, site_path.parent, cfg.site.id) \
            if cfg.mqtt is not None else None
        if bs is None:
            raise ValueError("mqtt: the site file has no [mqtt] section")
        bs = BrokerSettings(**{**bs.__dict__, "client_id": f"hearth-uplink-{cfg.site.id}"})
        self.client = make_client(bs)
        self.client.connect_async(bs.host, bs.port, bs.keepalive_s)
        self.prefix = f"hearth/{cfg.site.id}/"

    def publish_info(self) -> None:
        self.client.publish(self.prefix + "fleet/info",
                            json.dumps(fleet_info(self.cfg, self.hmi_url)), qos=1, retain=True)

    def poll_once(self, now_s: float | None = None) -> int:
        """Publish the rows of the window not yet published; returns how many."""
        from controller.ledger.query import Ledger

        now = time.time() if now_s is None else now_s
        lo = int(now) - self.window_s
        try:
            led = Ledger.open(self.cfg.ledger.url, self.cfg.site.id)
        except Exception as exc:  # no ledger yet (first minutes of a site)
            log.warning("ledger not readable yet: %s", exc)
            return 0
        try:
            rows = [("interval", r) for r in led.intervals(lo, None, history=True)]
            rows += [("telemetry", r) for r in led.telemetry(lo, int(now) + 1)]
        finally:
            led.close()
        n = 0
        for kind, r in rows:
            key = (kind, int(r["start_s"]), int(r.get("rev", 0)))
            if key in self.sent:
                continue
            self.client.publish(self.prefix + f"ledger/{kind}", encode_row(r, kind), qos=1)
            self.sent.add(key)
            n += 1
        self.sent = {k for k in self.sent if k[1] >= lo}
        self.published += n
        return n

    def run(self) -> None:
        self.client.loop_start()
        self.publish_info()
        try:
            while not self._stop.is_set():
                self.publish_info()  # the bridge forwards it unretained: say it again
                n = self.poll_once()
                if n:
                    log.info("published %d ledger row(s) for the fleet", n)
                self._stop.wait(self.poll_s)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
