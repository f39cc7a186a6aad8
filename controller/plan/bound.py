"""The perfect-foresight optimum: the plan LP solved once on the whole actual trace.

It knows every PV, load, heat and price value in advance, runs miners at any power from
0 W, has no minimum on/off times, may use the battery for the miners and lets the tank
cool below min_c as the plant's can, so no real controller can beat it (up to the LP's
Euler tank loss against the plant's exact one): the regret of a run is this minus its
`net_value`. Solved at the trace's own step, so it is compared like with like.
"""

from __future__ import annotations

from controller.config.models import SiteConfig
from controller.plan.forecast import TraceForecast
from controller.plan.lp import Plan, solve_plan
from controller.trace.reader import Trace


def perfect_foresight(cfg: SiteConfig, trace: Trace) -> Plan:
    fc = TraceForecast(cfg, trace, "perfect", trace.step_s)
    return solve_plan(cfg, fc.whole(), bound=True)
