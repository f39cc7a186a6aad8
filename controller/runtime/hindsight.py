"""The plan's regret on a live site: each finished UTC day, what the site's decisions were
worth against the best possible in hindsight.

- Realised value, from the service's own ticks, on the plan LP's basis: the BTC value of
  the hashes the miners reported + export revenue − import cost at the prices in force +
  the change of heat stored in the tank (valued at the backup heat it will displace). No
  backup-heat term: a live site meters no building heat, the planner estimates it from
  the tank's energy balance, so by that estimate all of it came from the tank.
- Best in hindsight: the plan LP solved once on the day's measured PV, house load, heat
  drawn and prices, from the tank and battery as they were at the day's start, relaxed
  as the simulator's perfect-foresight bound (`bound=True`), so no real day can beat it.

`regret = best − realised`. It is only computed for a day the service saw almost whole
(every slot ≥ 90 % covered): a gap would make either side meaningless.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from controller.config.models import SiteConfig
from controller.economics.hashprice import BtcTerms
from controller.plan.lp import J_PER_KWH, PlanError, PlanInputs, solve_plan
from controller.plan.value import heat_cost_per_kwh, network_value_per_th

log = logging.getLogger(__name__)

COVERED = 0.9  # share of a slot the service must have seen


@dataclass
class _Slot:
    value: float = 0.0  # BTC + export revenue − import cost so far
    covered_s: float = 0.0
    vth_s: float = 0.0  # Σ value per TH × dt: the slot's mean value per TH for the optimum
    tank_start_c: float | None = None
    soc_start_pct: float | None = None


class Hindsight:
    """Accumulates the realised value per plan slot; judges each finished UTC day."""

    def __init__(self, cfg: SiteConfig, step_s: float) -> None:
        self.cfg = cfg
        self.step_s = step_s
        self.day = round(86_400 / step_s)
        self.value_per_th = network_value_per_th(cfg)  # the static [bitcoin] terms
        self._terms: BtcTerms | None = None  # the last terms given, and their value per TH
        self._terms_vth = self.value_per_th
        t = cfg.tank
        self.k_val = (heat_cost_per_kwh(cfg) * t.heat_capacity_j_per_k / J_PER_KWH
                      if t is not None else 0.0)
        self.slots: dict[int, _Slot] = {}
        self.last: dict[str, Any] | None = None
        self._judged_day: int | None = None

    def observe(self, t_s: float, dt_s: float, grid_w: float | None, hashrate_ths: float,
                import_price: float | None, export_price: float | None,
                tank_c: float | None, soc_pct: float | None,
                btc_terms: BtcTerms | None = None) -> None:
        """One tick; `btc_terms` are the terms the controller decided on (None: the static
        ones), so the realised value and the optimum price a terahash alike."""
        k = int(t_s // self.step_s)
        s = self.slots.get(k)
        if s is None:
            s = self.slots[k] = _Slot(tank_start_c=tank_c, soc_start_pct=soc_pct)
            for old in [j for j in self.slots if j < k - 2 * self.day]:
                del self.slots[old]
        if dt_s <= 0 or grid_w is None or import_price is None or export_price is None:
            return
        kwh = dt_s / J_PER_KWH
        vth = self.value_per_th
        if btc_terms is not None:
            if btc_terms is not self._terms:
                self._terms = btc_terms
                self._terms_vth = float(btc_terms.value_per_th_s())
            vth = self._terms_vth
        s.vth_s += vth * dt_s
        s.value += (hashrate_ths * dt_s * vth
                    + max(-grid_w, 0.0) * kwh * export_price
                    - max(grid_w, 0.0) * kwh * import_price)
        s.covered_s += dt_s

    def due_day(self, t_s: float) -> int | None:
        """The first slot of the UTC day that just ended, once per day."""
        k = int(t_s // self.step_s)
        start = (k // self.day - 1) * self.day
        if self._judged_day == start:
            return None
        return start

    def judge(self, start_k: int, observed: Any, prices_at: Any) -> dict[str, Any] | None:
        """`observed(k) -> (pv_w, load_w, heat_w, covered_s) | None` (the forecast's
        history); `prices_at(t_s) -> Prices`. None if the day was not seen whole."""
        self._judged_day = start_k
        n, step = self.day, self.step_s
        pv, load, heat = np.zeros(n), np.zeros(n), np.zeros(n)
        imp, exp, vth = np.zeros(n), np.zeros(n), np.zeros(n)
        realised = 0.0
        for i in range(n):
            k = start_k + i
            o, s = observed(k), self.slots.get(k)
            if o is None or s is None or min(o[3], s.covered_s) < COVERED * step:
                return None
            pv[i], load[i], heat[i] = o[0], o[1], max(o[2], 0.0)
            p = prices_at(k * step + step / 2)
            imp[i], exp[i] = p.import_per_kwh, p.export_per_kwh
            vth[i] = s.vth_s / s.covered_s
            realised += s.value
        first, after = self.slots[start_k], self.slots.get(start_k + n)
        if self.cfg.tank is not None:
            if first.tank_start_c is None or after is None or after.tank_start_c is None:
                return None
            realised += self.k_val * (after.tank_start_c - first.tank_start_c)
        inp = PlanInputs(start_k * step, step, pv, load, heat, imp, exp,
                         vth, tank_start_c=first.tank_start_c,
                         soc_start_pct=first.soc_start_pct)
        try:
            best = solve_plan(self.cfg, inp, bound=True)
        except PlanError as err:
            log.warning("hindsight of the day from %s: no optimum (%s)", _iso(inp.start_s), err)
            return None
        regret = best.value - realised
        self.last = {
            "start": _iso(inp.start_s), "end": _iso(inp.start_s + n * step),
            "realised_value": f"{realised:.2f}", "best_value": f"{best.value:.2f}",
            "regret": f"{regret:.2f}", "solve_ms": round(best.solve_s * 1e3, 1),
        }
        log.info("hindsight %s..%s: realised %.2f, best possible %.2f, regret %.2f %s",
                 self.last["start"], self.last["end"], realised, best.value, regret,
                 self.cfg.site.currency)
        return self.last


def _iso(t_s: float) -> str:
    if not math.isfinite(t_s):
        return "?"
    return datetime.fromtimestamp(t_s, UTC).isoformat().replace("+00:00", "Z")
