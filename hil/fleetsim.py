"""Light simulated sites for the fleet tests and bench: hundreds in one process.

Each one speaks to the cluster as a site's Mosquitto bridge would (its own account, clean
session off, failover between nodes), at a real site's rate and with its real payloads
(controller.bridge.telemetry.state_payloads of a real site file): every `telemetry_s` its
state topics, and its closed ledger rows (QoS 1) every `ledger_every_s` — a 15-min
interval per few seconds in tests, so a run covers many intervals. It answers DR commands
like a site (docs/dr.md): the cap applies at once (miners pause), the answer carries the
request's id, the new power is published at once.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from controller.bridge.telemetry import MinerStatus, StateSnapshot, state_payloads
from controller.config import load_site
from controller.config.models import SiteConfig
from controller.fleet.mqttlink import ClusterClient, ClusterSettings
from controller.fleet.rows import encode_row
from controller.ledger.tables import LedgerInterval

SITE_FILE = Path(__file__).resolve().parent / "sites" / "house-10kwp.toml"
BASE_START_S = 1767225600  # 2026-01-01T00:00:00Z: the first simulated interval


def interval_row(start_s: int, *, duration_s: int = 900, miner_kwh: str = "0.35",
                 net: str = "0.012345", rev: int = 0) -> dict[str, Any]:
    """A closed ledger interval as a site's ledger holds it (the real SQLModel row)."""
    return LedgerInterval(
        site=1, start_s=start_s, duration_s=duration_s, covered_s=Decimal(duration_s),
        rev=rev, recorded_at_s=start_s + duration_s + 5, miner_kwh=Decimal(miner_kwh),
        miner_from_pv_kwh=Decimal(miner_kwh), btc_value=Decimal("0.021"),
        heat_value=Decimal("0.0104"), grid_cost=Decimal("0.019"), net=Decimal(net),
        expected_msat=6843, terahashes=Decimal("12150.5"), dr_events="mqtt:ev-1",
        import_price_avg=Decimal("0.21"), export_price_avg=Decimal("0.04")).model_dump()


@dataclass
class SimSite:
    site_id: str
    cfg: SiteConfig
    settings: ClusterSettings
    telemetry_s: float = 5.0
    ledger_every_s: float = 3.0
    miner_w: float = 0.0
    cap_w: float | None = None
    intervals_sent: list[int] = field(default_factory=list)
    command_rx_mono: dict[str, float] = field(default_factory=dict)
    messages: int = 0
    bytes_out: int = 0
    alive: bool = True
    refuse: bool = False
    link: ClusterClient | None = None
    _next_tel: float = 0.0
    _next_led: float = 0.0

    def start(self, stagger_s: float) -> None:
        p = f"hearth/{self.site_id}/"
        self.link = ClusterClient(
            self.settings, f"hearth-fleet-{self.site_id}", clean_session=False,
            subscriptions=[(p + "cmd/dr_cap", 0), (p + "cmd/dr_absorb", 0)],
            on_message=lambda m, _g: self._on_cmd(m))
        # What the site's bridge says when its link dies (Mosquitto's notification).
        self.link.client.will_set(p + "bridge/state", "0", qos=1)
        self.link.start()
        now = time.monotonic()
        self._next_tel = now + stagger_s
        self._next_led = now + stagger_s + self.ledger_every_s

    def _pub(self, suffix: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        assert self.link is not None
        self.link.client.publish(f"hearth/{self.site_id}/{suffix}", payload, qos=qos,
                                 retain=retain)
        self.messages += 1
        self.bytes_out += len(payload)

    def power_w(self) -> float:
        return self.miner_w if self.cap_w is None else min(self.miner_w, self.cap_w)

    def publish_state(self) -> None:
        per = self.power_w() / 3
        snap = StateSnapshot(
            grid_power_w=-2500.0 + random.uniform(-50, 50), pv_power_w=5200.0,
            battery_power_w=0.0, soc_pct=64.0, tank_temp_c=51.2,
            miners={m.name: MinerStatus(power_w=per, hashrate_ths=per / 100,
                                        state="running" if per > 0 else "paused",
                                        target_w=per, temp_c=60.0)
                    for m in self.cfg.miners},
            mode="grid", limiter="grid", total_target_w=self.power_w(),
            dr_cap_w=self.cap_w)
        for name, body in state_payloads(snap, self.cfg).items():
            # as the site's bridge forwards it: not retained (bridge_outgoing_retain false)
            self._pub(f"state/{name}", json.dumps(body).encode())

    def tick(self, now: float) -> None:
        if not self.alive:
            return
        if now >= self._next_tel:
            self._next_tel += self.telemetry_s
            self.publish_state()
        if now >= self._next_led:
            self._next_led += self.ledger_every_s
            start = BASE_START_S + 900 * len(self.intervals_sent)
            self._pub("ledger/interval", encode_row(interval_row(start), "interval"), qos=1)
            self.intervals_sent.append(start)

    def _on_cmd(self, m: mqtt.MQTTMessage) -> None:
        rx = time.monotonic()
        if not self.alive:
            return
        name = m.topic.rsplit("/", 1)[1]
        try:
            body = json.loads(m.payload)
        except ValueError:
            return
        rid = body.get("id")
        if isinstance(rid, str):
            self.command_rx_mono[rid] = rx
        if self.refuse:
            ans = {"ok": False, "command": name, "id": rid,
                   "errors": [{"field": "cap_w", "reason": "refused by this test site"}]}
        else:
            if name == "dr_cap":
                self.cap_w = body.get("cap_w")
            ans = {"ok": True, "command": name, "id": rid, "applied": body}
        self._pub(f"cmd/{name}/result", json.dumps(ans).encode())
        self.publish_state()

    def die(self) -> None:
        """The site's link goes away (its bridge says so, then nothing more)."""
        self.alive = False
        self._pub("bridge/state", b"0", qos=1)

    def stop(self) -> None:
        if self.link is not None:
            self.link.stop()


class SimFleet:
    """`n` sites named site-000.. on the cluster, driven by one scheduler thread."""

    def __init__(self, n: int, nodes: tuple[tuple[str, int], ...], passwords: dict[str, str],
                 telemetry_s: float = 5.0, ledger_every_s: float = 3.0,
                 seed: int = 1) -> None:
        rnd = random.Random(seed)
        cfg = load_site(SITE_FILE)
        self.sites = []
        for i in range(n):
            sid = f"site-{i:03d}"
            # Each site connects to its own node first (spread like real bridges).
            order = nodes[i % len(nodes):] + nodes[:i % len(nodes)]
            self.sites.append(SimSite(
                sid, cfg, ClusterSettings(order, sid, passwords[sid]),
                telemetry_s=telemetry_s, ledger_every_s=ledger_every_s,
                miner_w=rnd.choice([0.0, 700.0, 1400.0, 2100.0, 2800.0])))
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleetsim", daemon=True)

    @staticmethod
    def site_ids(n: int) -> list[str]:
        return [f"site-{i:03d}" for i in range(n)]

    def start(self) -> SimFleet:
        n = len(self.sites)
        for i, s in enumerate(self.sites):
            s.start(stagger_s=s.telemetry_s * i / max(n, 1))
        self._thread.start()
        return self

    def connected(self) -> int:
        return sum(1 for s in self.sites if s.link is not None and s.link.subscribed.is_set())

    def pause_ledger(self) -> None:
        """Stop sending new ledger rows (telemetry goes on)."""
        for s in self.sites:
            s.ledger_every_s = 1e9
            s._next_led = float("inf")

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for s in self.sites:
                s.tick(now)
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.sites:
            s.stop()
