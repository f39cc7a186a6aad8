"""Telemetry: the state snapshot the service hands over, its topics, and the rate limit.

The service calls `Bridge.publish_state(snapshot)` once per tick; this module turns the
snapshot into retained JSON payloads under `hearth/<site>/state/...` (pure functions) and
decides per topic when to publish: on change, at most every `telemetry_interval_s`, and
unchanged values again every `telemetry_refresh_s` so their message expiry never lapses
while the site is alive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from controller.config.models import SiteConfig
from controller.control.types import Commands, Measurements

_NO_MINERS: Mapping[str, MinerStatus] = MappingProxyType({})


@dataclass(frozen=True)
class MinerStatus:
    power_w: float | None = None
    hashrate_ths: float | None = None
    state: str = "unknown"  # running | paused | off | unknown
    enabled: bool = True  # false: the installer or the resident switched it off
    target_w: float | None = None
    manual_w: float | None = None  # a manual power set by cmd/miner_power
    temp_c: float | None = None


@dataclass(frozen=True)
class Today:
    """Today's accounting from the ledger (local day of the site), in the four money words
    of docs/ledger.md: net = btc_value + heat_value - power_cost, all in the site currency."""

    day_start: datetime  # aware; HA resets its 'total' sensors when this changes
    btc_value: Decimal  # + the expected sats' value (after pool fee)
    heat_value: Decimal  # + the backup heating the miners' heat displaced
    power_cost: Decimal  # + what their power cost (grid, forgone export, battery) - DR pay
    net: Decimal  # btc_value + heat_value - power_cost
    sats: int
    heat_kwh: float
    miner_energy_kwh: float


@dataclass(frozen=True)
class StateSnapshot:
    """Everything published about a site, as of one tick. None: not known (not 0)."""

    grid_power_w: float | None = None  # import +, export -
    pv_power_w: float | None = None
    battery_power_w: float | None = None  # charge +
    soc_pct: float | None = None
    tank_temp_c: float | None = None
    miners: Mapping[str, MinerStatus] = field(default_factory=lambda: _NO_MINERS)
    mode: str | None = None
    limiter: str | None = None
    total_target_w: float | None = None
    paused: bool = False
    dr_cap_w: float | None = None
    dr_absorb_w: float | None = None  # a DR request: the miners take at least this
    tank_target_c: float | None = None
    trips: tuple[str, ...] = ()
    today: Today | None = None
    safe_mode: str | None = None  # why the service runs in safe mode (miners held off)
    bitcoin: Mapping[str, Any] | None = None  # TermsStatus.as_json(): the terms in force

    @classmethod
    def from_tick(
        cls, m: Measurements, c: Commands, *, today: Today | None = None,
        paused: bool = False, dr_cap_w: float | None = None,
        dr_absorb_w: float | None = None, tank_target_c: float | None = None,
        enabled: Mapping[str, bool] | None = None,
        manual_w: Mapping[str, float] | None = None,
        safe_mode: str | None = None,
        bitcoin: Mapping[str, Any] | None = None,
    ) -> StateSnapshot:
        """Build a snapshot from what the control tick saw and decided."""
        cmds = c.by_name()
        miners: dict[str, MinerStatus] = {}
        for name in sorted(set(m.miners) | set(cmds) | set(enabled or {}) | set(manual_w or {})):
            r = m.miners.get(name)
            cmd = cmds.get(name)
            state = "unknown" if r is None else ("running" if r.running else "paused")
            miners[name] = MinerStatus(
                power_w=None if r is None else r.power_w,
                hashrate_ths=None if r is None else r.hashrate_ths,
                state=state,
                enabled=True if enabled is None else enabled.get(name, True),
                target_w=None if cmd is None else cmd.power_target_w,
                manual_w=None if manual_w is None else manual_w.get(name),
                temp_c=None if r is None else r.temp_c,
            )
        return cls(
            grid_power_w=None if m.grid_power_w is None else m.grid_power_w.value,
            pv_power_w=None if m.pv_power_w is None else m.pv_power_w.value,
            battery_power_w=None if m.battery_power_w is None else m.battery_power_w.value,
            soc_pct=None if m.soc_pct is None else m.soc_pct.value,
            tank_temp_c=None if m.tank_temp_c is None else m.tank_temp_c.value,
            miners=MappingProxyType(miners),
            mode=c.mode,
            limiter=c.limiter,
            total_target_w=c.total_target_w,
            paused=paused,
            dr_cap_w=dr_cap_w if dr_cap_w is not None else m.dr_limit_w,
            dr_absorb_w=dr_absorb_w,
            tank_target_c=tank_target_c,
            trips=tuple(t.code for t in c.trips),
            today=today,
            safe_mode=safe_mode,
            bitcoin=bitcoin,
        )


def _r(x: float | None, digits: int) -> float | None:
    """Rounded for publishing (also what 'changed' is judged on); non-finite is unknown."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def state_payloads(s: StateSnapshot, cfg: SiteConfig) -> dict[str, dict[str, Any]]:
    """Topic suffix under state/ -> JSON object. Only sections the site has."""
    miner_w = None
    if s.miners:
        powers = [ms.power_w for ms in s.miners.values() if ms.power_w is not None]
        miner_w = sum(powers) if powers else None
    house_w = None
    if None not in (s.grid_power_w, s.pv_power_w, miner_w):
        assert s.grid_power_w is not None and s.pv_power_w is not None and miner_w is not None
        house_w = s.pv_power_w + s.grid_power_w - miner_w - (s.battery_power_w or 0.0)
    out: dict[str, dict[str, Any]] = {
        "power": {
            "grid_power_w": _r(s.grid_power_w, 0),
            "pv_power_w": _r(s.pv_power_w, 0),
            "miner_power_w": _r(miner_w, 0),
            "house_power_w": _r(house_w, 0),
            "battery_power_w": _r(s.battery_power_w, 0),
        },
        "control": {
            "mode": s.mode,
            "limiter": s.limiter,
            "total_target_w": _r(s.total_target_w, 0),
            "paused": s.paused,
            "dr_cap_w": _r(s.dr_cap_w, 0),
            "dr_absorb_w": _r(s.dr_absorb_w, 0),
            "tank_target_c": _r(s.tank_target_c, 1),
            "trips": sorted(set(s.trips)),
            "safe_mode": s.safe_mode,
        },
    }
    if cfg.battery is not None:
        out["battery"] = {"soc_pct": _r(s.soc_pct, 1), "battery_power_w":
                          _r(s.battery_power_w, 0)}
    if cfg.tank is not None:
        target = s.tank_target_c if s.tank_target_c is not None else cfg.tank.target_c
        out["tank"] = {"tank_temp_c": _r(s.tank_temp_c, 1), "tank_target_c": _r(target, 1)}
    if s.bitcoin is not None:
        out["bitcoin"] = dict(s.bitcoin)
    if s.today is not None:
        t = s.today
        out["today"] = {
            "day_start": t.day_start.isoformat(),
            "currency": cfg.site.currency,
            **{k: str(getattr(t, k).quantize(Decimal("0.0001")))
               for k in ("btc_value", "heat_value", "power_cost", "net")},
            "sats": int(t.sats),
            "heat_kwh": _r(t.heat_kwh, 3),
            "miner_energy_kwh": _r(t.miner_energy_kwh, 3),
        }
    for mc in cfg.miners:
        ms = s.miners.get(mc.name, MinerStatus())
        out[f"miners/{mc.name}"] = {
            "power_w": _r(ms.power_w, 0),
            "hashrate_ths": _r(ms.hashrate_ths, 3),
            "state": ms.state,
            "enabled": ms.enabled,
            "target_w": _r(ms.target_w, 0),
            "manual_w": _r(ms.manual_w, 0),
            "temp_c": _r(ms.temp_c, 1),
        }
    return out


class RateLimiter:
    """Per topic: publish on change at most every `interval_s`, unchanged every `refresh_s`.

    Pure (time is passed in). `forget()` after a reconnect makes everything due again.
    """

    def __init__(self, interval_s: float, refresh_s: float) -> None:
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        self._last: dict[str, tuple[bytes, float]] = {}

    def due(self, topic: str, payload: bytes, now: float) -> bool:
        last = self._last.get(topic)
        if last is None:
            return True
        body, at = last
        age = now - at
        return (body != payload and age >= self.interval_s) or age >= self.refresh_s

    def sent(self, topic: str, payload: bytes, now: float) -> None:
        self._last[topic] = (payload, now)

    def forget(self, topic: str | None = None) -> None:
        if topic is None:
            self._last.clear()
        else:
            self._last.pop(topic, None)

    def next_due_in(self, now: float) -> float:
        """Seconds until some topic could be due again (for the publisher's sleep)."""
        if not self._last:
            return self.interval_s
        soonest = min(at for _body, at in self._last.values())
        return max(0.0, min(self.interval_s, soonest + self.refresh_s - now))
