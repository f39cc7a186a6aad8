"""The fleet as the dispatcher sees it, live from the cluster: each site's power, miners,
availability, bridge state and fleet info, and from them its flexibility now.

Flexibility is what a site could change within about a second, judged from its telemetry:
- **shed**: its miners' power now (a DR cap pauses miners at once, docs/dr.md), 0 when the
  site is offline, its bridge is down or its power reading is older than `stale_s`;
- **add**: for the miners running now, up to their maximum, within the site's import
  limit (paused miners take minutes to start, so they do not count).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from controller.fleet.rows import SITE_ID


@dataclass
class SiteView:
    site_id: str
    power: dict[str, Any] = field(default_factory=dict)
    power_at_s: float | None = None
    miners: dict[str, dict[str, Any]] = field(default_factory=dict)
    control: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    availability: str | None = None
    bridge: str | None = None

    def reachable(self, now_s: float, stale_s: float) -> bool:
        return (self.availability != "offline" and self.bridge != "0"
                and self.power_at_s is not None and now_s - self.power_at_s <= stale_s)

    def miner_power_w(self) -> float | None:
        v = self.power.get("miner_power_w")
        return float(v) if isinstance(v, (int, float)) else None

    def shed_w(self, now_s: float, stale_s: float) -> float:
        p = self.miner_power_w()
        return max(p, 0.0) if p is not None and self.reachable(now_s, stale_s) else 0.0

    def add_w(self, now_s: float, stale_s: float) -> float:
        if not self.reachable(now_s, stale_s):
            return 0.0
        room = 0.0
        for name, spec in (self.info.get("miners") or {}).items():
            st = self.miners.get(name, {})
            if st.get("state") == "running" and isinstance(st.get("power_w"), (int, float)):
                room += max(float(spec.get("max_power_w", 0)) - float(st["power_w"]), 0.0)
        grid = self.power.get("grid_power_w")
        limit = self.info.get("import_limit_w")
        if isinstance(grid, (int, float)) and isinstance(limit, (int, float)):
            room = min(room, max(float(limit) - float(grid), 0.0))
        return room


class FleetView:
    """Thread-safe: fed from paho's thread, read by the dispatcher and the page."""

    def __init__(self) -> None:
        self.sites: dict[str, SiteView] = {}
        self.lock = threading.Lock()

    def site(self, site_id: str) -> SiteView:
        s = self.sites.get(site_id)
        if s is None:
            s = self.sites[site_id] = SiteView(site_id)
        return s

    def feed(self, topic: str, payload: bytes, retained: bool, now_s: float) -> str | None:
        """Take one message; returns the site id it was about (None: not a site topic)."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "hearth" or not SITE_ID.match(parts[1]):
            return None
        site_id, rest = parts[1], "/".join(parts[2:])
        try:
            with self.lock:
                s = self.site(site_id)
                if rest == "availability":
                    s.availability = payload.decode()
                elif rest == "bridge/state":
                    s.bridge = payload.decode()
                elif rest == "fleet/info":
                    s.info = _obj(payload)
                elif rest == "state/power":
                    s.power = _obj(payload)
                    s.power_at_s = None if retained else now_s
                elif rest == "state/control":
                    s.control = _obj(payload)
                elif rest.startswith("state/miners/"):
                    s.miners[parts[4] if len(parts) > 4 else ""] = _obj(payload)
        except (ValueError, UnicodeDecodeError):
            return None
        return site_id

    def flexibility(self, now_s: float, stale_s: float) -> dict[str, tuple[float, float]]:
        """site -> (shed_w, add_w) now."""
        with self.lock:
            return {k: (s.shed_w(now_s, stale_s), s.add_w(now_s, stale_s))
                    for k, s in self.sites.items()}


def _obj(payload: bytes) -> dict[str, Any]:
    if not payload:
        return {}
    v = json.loads(payload)
    if not isinstance(v, dict):
        raise ValueError("not an object")
    return v
