"""What the planner knows about the next 24-48 h: PV, load, heat demand, prices, hashprice.

Two forecasts from a trace (the simulator's; the live service uses the persistence idea
on its own history):

- `perfect`: the trace itself (the upper bound's inputs);
- `persistence`: PV, load and heat demand of the same time of day 24 h earlier (the first
  day, with no yesterday, uses the day itself). Simple, and honest about forecast error.

Prices are never "forecast": a day-ahead market publishes the next day's prices once a
day (EPEX/Nord Pool at about 12:45 CET), so at time t the plan knows prices up to the end
of today (local), or of tomorrow once today's publication time has passed. The horizon
ends there (at most `horizon_h`), so it is 11-35 h for a 13:00 publication.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from controller.config.models import SiteConfig
from controller.plan.lp import FloatArray, PlanInputs
from controller.plan.value import value_per_th
from controller.trace.reader import Trace

KINDS = ("perfect", "persistence")


def prices_known_until(t_s: float, tz: ZoneInfo, publish_hour_local: float) -> float:
    """End (UTC epoch s) of the last day whose day-ahead prices are public at `t_s`."""
    local = datetime.fromtimestamp(t_s, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    published = local.hour + local.minute / 60 >= publish_hour_local
    end_day = midnight.date() + timedelta(days=2 if published else 1)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
    return end.timestamp()


def _resample(a: FloatArray, k: int) -> FloatArray:
    """Means over groups of k rows (the last partial group averaged as it is)."""
    if k == 1:
        return np.asarray(a, dtype=np.float64)
    n = len(a)
    full = n // k * k
    head = a[:full].reshape(-1, k).mean(axis=1)
    if full < n:
        head = np.append(head, a[full:].mean())
    return np.asarray(head, dtype=np.float64)


@dataclass
class TraceForecast:
    """Plan inputs cut from a trace at plan resolution (`step_s`, a multiple of the trace's)."""

    cfg: SiteConfig
    trace: Trace
    kind: str = "persistence"
    step_s: float = 900.0
    horizon_h: float = 36.0
    publish_hour_local: float = 13.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown forecast {self.kind!r}; one of {KINDS}")
        tr = self.trace
        k = max(1, round(self.step_s / tr.step_s))
        if not math.isclose(k * tr.step_s, self.step_s):
            raise ValueError(f"plan step {self.step_s} s is not a multiple of the trace step "
                             f"{tr.step_s} s")
        self._k = k
        self.t0_s = float(tr.time_s[0])
        self.pv = _resample(tr.pv_w, k)
        self.load = _resample(tr.load_w, k)
        self.heat = _resample(tr.heat_demand_w, k)
        self.imp = _resample(tr.import_price, k)
        self.exp = _resample(tr.export_price, k)
        self.vth = _resample(value_per_th(self.cfg, tr), k)
        self.n = len(self.pv)
        self.day = round(86_400 / self.step_s)
        self.tz = ZoneInfo(self.cfg.site.timezone)

    def slot_of(self, t_s: float) -> int:
        return int((t_s - self.t0_s) // self.step_s)

    def horizon_end_s(self, t_s: float, prices_known: bool = True) -> float:
        end = t_s + self.horizon_h * 3600.0
        if prices_known:
            end = min(end, prices_known_until(t_s, self.tz, self.publish_hour_local))
        return min(end, self.t0_s + self.n * self.step_s)

    def inputs(self, t_s: float, tank_c: float | None, soc_pct: float | None,
               prices_known: bool = True) -> PlanInputs | None:
        """Inputs from the slot holding `t_s` to the end of the known prices (None: past
        the end of the trace)."""
        a = self.slot_of(t_s)
        b = min(self.n, math.ceil((self.horizon_end_s(t_s, prices_known) - self.t0_s)
                                  / self.step_s))
        if a >= self.n or b <= a:
            return None
        idx = np.arange(a, b)
        if self.kind == "persistence":
            # The same time of day on the last day already seen (never the future).
            back = idx - self.day * (1 + (idx - a) // self.day)
            src = np.where(back >= 0, back, idx)
        else:
            src = idx
        return PlanInputs(
            start_s=self.t0_s + a * self.step_s, step_s=self.step_s,
            pv_w=self.pv[src], load_w=self.load[src], heat_demand_w=self.heat[src],
            import_price=self.imp[idx], export_price=self.exp[idx], value_per_th=self.vth[idx],
            tank_start_c=tank_c, soc_start_pct=soc_pct,
        )

    def whole(self) -> PlanInputs:
        """The whole trace with perfect foresight (the upper bound's inputs)."""
        return PlanInputs(self.t0_s, self.step_s, self.pv, self.load, self.heat, self.imp,
                          self.exp, self.vth)
