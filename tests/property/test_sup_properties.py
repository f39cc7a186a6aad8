"""Hard limits win over every supervisor decision, in every mode.

Random sites (from test_sim_properties), a random mode (grid, heating, island), random
price series (negative, ordinary and spiking, both import and export), random price-rule
settings and a random schedule, on short random traces. In every row:
- energy balances; island rows have no grid flow at all;
- the miners are never commanded past the import limit (grid and heating);
- below the battery reserve the miners are never commanded to draw from the battery;
- a DR cap, the schedule's closed windows and its quiet-hour caps are obeyed;
- the tank never exceeds its maximum;
- minimum on/off times are never cut short, except by a logged hard-limit trip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import simkit
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_sim_properties import sites, traces

from controller.config import SiteConfig, parse_site
from controller.control.schedule import Schedule
from controller.sim.report import import_limit_violations, min_on_off_violations
from controller.sim.runner import simulate
from controller.trace.reader import Trace

HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))


@st.composite
def supervised(draw: st.DrawFn) -> tuple[SiteConfig, Trace]:
    base = draw(sites())
    d: dict[str, Any] = base.model_dump(mode="json", exclude_none=True)
    modes = ["grid", "heating", "island"]
    if d.get("tank") is None:
        modes.remove("heating")
    if d.get("battery") is None:
        modes.remove("island")
    mode = draw(st.sampled_from(modes))
    d["control"].update(
        mode=mode,
        price_hysteresis_per_kwh=draw(st.sampled_from([0.0, 0.01, 0.05])),
        price_decision_min_hold_s=draw(st.sampled_from([0.0, 60.0, 900.0])),
        price_spike_per_kwh=draw(st.one_of(st.none(), st.floats(0.1, 0.6))),
        surplus_policy=draw(st.sampled_from(["value", "always_mine"])),
        heating_price_cap_per_kwh=draw(st.one_of(st.none(), st.floats(-0.05, 0.5))),
        island_probe_w=draw(st.floats(0, 300)),
    )
    if mode == "island":
        b = d["battery"]
        d["control"]["island_full_soc_pct"] = draw(st.floats(
            min(b["reserve_soc_pct"] + d["control"]["battery_soc_hysteresis_pct"] + 1,
                b["max_soc_pct"]), b["max_soc_pct"]))
    if draw(st.booleans()):
        span = st.fixed_dictionaries({"days": st.just(["daily"]), "start": HHMM, "end": HHMM}
                                     ).filter(lambda s: s["start"] != s["end"])
        d["schedule"] = {
            "windows": draw(st.lists(span, max_size=2)),
            "quiet": [{**q, "max_power_w": draw(st.floats(0, 3000))}
                      for q in draw(st.lists(span, max_size=1))],
            "start_delay_max_s": draw(st.sampled_from([0.0, 600.0])),
        }
    cfg = parse_site(d, "generated")
    tr = draw(traces(cfg))
    n = len(tr.time_s)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Hourly-ish price steps around real levels, with negative hours and spikes.
    imp = np.repeat(rng.choice([-0.05, 0.0, 0.03, 0.08, 0.15, 0.3, 0.9], size=n // 20 + 1),
                    20)[:n]
    exp = imp - rng.choice([0.0, 0.1, 0.15], size=n)
    # Start at a random hour of a random day (DST days included) in the site's zone.
    start = dt.datetime(2026, draw(st.sampled_from([3, 6, 10])), draw(st.integers(24, 30)),
                        draw(st.integers(0, 23)), tzinfo=ZoneInfo(cfg.site.timezone))
    tr = simkit.trace(tr.pv_w, tr.load_w, step_s=tr.step_s, heat_demand_w=tr.heat_demand_w,
                      dr_limit_w=tr.dr_limit_w, start_s=start.timestamp())
    return cfg, dataclasses.replace(tr, import_price=imp, export_price=exp)


@pytest.mark.slow
@settings(max_examples=150)
@given(case=supervised())
def test_hard_limits_win_over_every_supervisor_decision(case: tuple[SiteConfig, Trace]
                                                        ) -> None:
    cfg, tr = case
    r = simulate(cfg, tr, "hearth", progress=False)
    c = r.columns
    event(f"mode {cfg.control.mode}, miners ran: {bool(np.any(c['miner_target_w'] > 0))}")
    balance = c["pv_w"] + c["grid_w"] - c["load_w"] - c["miner_w"] - c["battery_w"]
    assert np.max(np.abs(balance)) < 1e-6
    target = c["miner_target_w"]

    if cfg.control.mode == "island":
        assert np.all(c["grid_w"] == 0)
    else:
        assert import_limit_violations(r) == []

    if cfg.battery is not None:
        low = (c["meas_soc_pct"] <= cfg.battery.reserve_soc_pct) & (c["meas_battery_w"] < 0)
        allowed = np.maximum(c["meas_miner_w"] + c["meas_battery_w"], 0.0) + 1.0
        bad = np.flatnonzero(low & (target > allowed))
        assert bad.size == 0, f"miners fed from a battery below reserve at rows {bad[:5]}"

    dr = tr.dr_limit_w
    capped = np.isfinite(dr)
    assert np.all(target[capped] <= dr[capped] + 1e-6)

    if cfg.schedule is not None:
        sched = Schedule(cfg.schedule, cfg.site.timezone, cfg.site.id)
        cap = np.array([sched.evaluate(t).cap_w for t in tr.time_s.tolist()])
        event(f"schedule closed or quiet in some rows: {bool(np.any(cap < np.inf))}")
        bad = np.flatnonzero(target > cap + 1e-6)
        assert bad.size == 0, f"schedule cap broken at rows {bad[:5]}"

    if cfg.tank is not None:
        assert np.nanmax(c["tank_c"]) <= cfg.tank.max_c + 1e-9

    assert min_on_off_violations(r) == []
