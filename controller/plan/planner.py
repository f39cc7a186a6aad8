"""The planner: keeps a day-ahead plan current and turns its slot into overrides.

Pure like the control core: `update(t_s, ...)` takes the UTC time and what was measured,
returns the overrides for this tick; it holds no clock and does no I/O (the forecast
source is handed in). Re-plans when

- there is no plan, or the current slot is past its end;
- new prices were published (the known-price horizon moved beyond the plan's end);
- over the last hour (four 15-min slots) the realised PV surplus or heat demand missed
  the forecast by more than `deviation_kwh` (at most every `min_replan_interval_s`).

A slot becomes `tank_target_c` = the planned tank temperature at the slot's end, and
`plan_min_w` = the planned miner power when the plan buys grid power for the miners in
that slot (else 0: the plan, not the per-tick price rule, decides when to buy; surplus is
still taken by the grid loop). The PID loops handle the error within the slot.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import NamedTuple, Protocol

import numpy as np

from controller.config.models import SiteConfig
from controller.plan.lp import Plan, PlanError, PlanInputs, solve_plan

BUY_FRACTION = 0.015
"""The plan sets a buy floor in a slot where it buys more than this share of the miners'
capacity for them (below it, rounding noise of the LP; the per-tick price rule decides)."""


class PlanSource(Protocol):
    def inputs(self, t_s: float, tank_c: float | None, soc_pct: float | None,
               prices_known: bool = True) -> PlanInputs | None: ...

    def horizon_end_s(self, t_s: float, prices_known: bool = True) -> float: ...


class PlanOutput(NamedTuple):
    tank_target_c: float | None
    plan_min_w: float | None


NO_PLAN = PlanOutput(None, None)


class Planner:
    def __init__(self, cfg: SiteConfig, source: PlanSource, deviation_kwh: float = 1.5,
                 window_slots: int = 4, min_replan_interval_s: float = 3 * 3600.0,
                 buy_margin_per_kwh: float = 0.0) -> None:
        self.cfg = cfg
        self.buy_margin_per_kwh = buy_margin_per_kwh
        self.buy_threshold_w = BUY_FRACTION * cfg.miner_capacity_w
        self.min_replan_interval_s = min_replan_interval_s
        self._last_replan_s = -math.inf
        self.source = source
        self.deviation_kwh = deviation_kwh
        self.plan: Plan | None = None
        self.inputs: PlanInputs | None = None
        self.replans = 0
        self.reasons: dict[str, int] = {}
        self.solve_s: list[float] = []
        self.failures = 0
        self.last_reason: str | None = None
        self._errors: deque[tuple[float, float]] = deque(maxlen=window_slots)
        self._acc_slot: int | None = None
        self._acc = [0.0, 0.0, 0.0]  # surplus J, heat J, seconds in the current slot
        self._last_replan_slot: int | None = None
        self._out_slot: int | None = None
        self._out = NO_PLAN
        self._force: str | None = None

    def invalidate(self, reason: str) -> None:
        """Re-plan at the next update (e.g. new prices arrived)."""
        self._force = reason

    # -- deviation --------------------------------------------------------------------------

    def _observe(self, k: int | None, surplus_w: float | None, heat_w: float | None,
                 dt_s: float) -> None:
        if k != self._acc_slot:
            self._close_slot()
            self._acc_slot = k
            self._acc = [0.0, 0.0, 0.0]
        if k is None or surplus_w is None:
            return
        self._acc[0] += surplus_w * dt_s
        self._acc[1] += (heat_w if heat_w is not None else math.nan) * dt_s
        self._acc[2] += dt_s

    def _close_slot(self) -> None:
        k, inp = self._acc_slot, self.inputs
        if k is None or inp is None or self._acc[2] <= 0 or not 0 <= k < inp.n:
            return
        secs = self._acc[2]
        f_surplus = (inp.pv_w[k] - inp.load_w[k]) * secs
        f_heat = inp.heat_demand_w[k] * secs
        err_s = abs(self._acc[0] - f_surplus) / 3.6e6
        err_h = abs(self._acc[1] - f_heat) / 3.6e6 if math.isfinite(self._acc[1]) else 0.0
        self._errors.append((err_s, err_h))

    def deviation_kwh_last_hour(self) -> tuple[float, float]:
        return (sum(e[0] for e in self._errors), sum(e[1] for e in self._errors))

    # -- planning ---------------------------------------------------------------------------

    def _replan(self, t_s: float, tank_c: float | None, soc_pct: float | None,
                why: str) -> None:
        inp = self.source.inputs(t_s, tank_c, soc_pct)
        if inp is None:
            self.plan = self.inputs = None
            return
        t0 = time.perf_counter()
        try:
            plan = solve_plan(self.cfg, inp, buy_margin_per_kwh=self.buy_margin_per_kwh)
        except PlanError:
            self.failures += 1
            return
        self.solve_s.append(time.perf_counter() - t0)
        self._last_replan_s = t_s
        self.plan, self.inputs = plan, inp
        self.replans += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1
        self.last_reason = why
        self._errors.clear()
        self._acc_slot = None
        self._out_slot = None

    def update(self, t_s: float, tank_c: float | None = None, soc_pct: float | None = None,
               surplus_w: float | None = None, heat_demand_w: float | None = None,
               dt_s: float = 0.0) -> PlanOutput:
        """Overrides for the tick at UTC `t_s`. `surplus_w` (PV − house load) and
        `heat_demand_w` are what was realised over the last `dt_s` (None: not known)."""
        plan = self.plan
        k = plan.slot(t_s) if plan is not None else None
        # What was realised covers [t − dt, t): it belongs to the slot it started in.
        k_seen = plan.slot(t_s - dt_s) if plan is not None and dt_s > 0 else k
        self._observe(k_seen, surplus_w, heat_demand_w, dt_s)
        why, self._force = self._force, None
        if why is not None:
            pass
        elif plan is None or k is None:
            why = "start" if plan is None else "end"
        elif self.source.horizon_end_s(t_s) > plan.start_s + plan.n * plan.step_s + 1.0:
            why = "prices"
        elif (k != self._last_replan_slot
              and t_s - self._last_replan_s >= self.min_replan_interval_s):
            err_s, err_h = self.deviation_kwh_last_hour()
            if max(err_s, err_h) > self.deviation_kwh:
                why = "deviation"
        if why is not None:
            self._replan(t_s, tank_c, soc_pct, why)
            plan = self.plan
            if plan is None:
                return NO_PLAN
            k = plan.slot(t_s)
            self._last_replan_slot = k
            self._acc_slot = k
        if plan is None or k is None:
            return NO_PLAN
        if k != self._out_slot:
            self._out_slot = k
            self._out = self.output(plan, k)
        return self._out

    def output(self, plan: Plan, k: int) -> PlanOutput:
        tank = float(plan.tank_c[k])
        inp = self.inputs
        deficit = max(inp.load_w[k] - inp.pv_w[k], 0.0) if inp is not None else 0.0
        charging = max(float(plan.battery_w[k]), 0.0)
        bought = min(float(plan.miner_w[k]),
                     float(plan.import_w[k]) - deficit - charging)
        min_w = bought if bought > self.buy_threshold_w else None
        if not np.isfinite(tank):
            return PlanOutput(None, min_w)
        # The plan may raise the tank target (store heat ahead of demand or of dear hours)
        # but not lower it below the configured one: a forecast that missed the sun must
        # not make the tank loop turn away free surplus.
        floor = self.cfg.tank.target_c if self.cfg.tank is not None else tank
        return PlanOutput(max(tank, floor), min_w)
