"""Properties of the controller against the plant, over random sites and random traces.

For every generated site and trace, in every row:
- energy balances: pv + grid = load + miners + battery;
- the miners are never commanded to a power that would take import past the limit;
- below the battery reserve, the miners are never commanded to draw from the battery;
- a demand-response cap is always obeyed by the commands;
- the tank never exceeds its maximum;
- minimum on/off times are never cut short, except by a logged hard-limit trip.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import simkit
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import SiteConfig, parse_site
from controller.sim.report import import_limit_violations, min_on_off_violations
from controller.sim.runner import SimResult, simulate
from controller.trace.reader import Trace

S9 = {
    "name": "s9", "kind": "antminer-s9-braiins", "actuation": "power_target",
    "min_power_w": 600, "max_power_w": 1400, "idle_power_w": 40,
    "efficiency": [{"power_w": 600, "j_per_th": 78}, {"power_w": 1400, "j_per_th": 98}],
    "ramp_w_per_s": 10, "restart_s": 90, "stop_s": 3, "min_on_s": 300, "min_off_s": 300,
}
BITAXE = {
    "name": "bitaxe", "kind": "bitaxe-gamma", "actuation": "power_target",
    "min_power_w": 9, "max_power_w": 22, "idle_power_w": 2,
    "efficiency": [{"power_w": 9, "j_per_th": 15.5}, {"power_w": 22, "j_per_th": 19}],
    "ramp_w_per_s": 5, "restart_s": 15, "stop_s": 1, "min_on_s": 60, "min_off_s": 60,
    "target_resolution_w": 1,
}
S19_RELAY = {
    "name": "s19", "kind": "antminer-s19", "actuation": "relay",
    "min_power_w": 3250, "max_power_w": 3250, "idle_power_w": 120,
    "efficiency": [{"power_w": 3250, "j_per_th": 29.5}],
    "ramp_w_per_s": 200, "restart_s": 240, "stop_s": 0, "min_on_s": 900, "min_off_s": 600,
}
AVALON = {
    "name": "avalon", "kind": "avalon-mini", "actuation": "profiles",
    "min_power_w": 400, "max_power_w": 800, "profiles_w": [400, 600, 800], "idle_power_w": 20,
    "efficiency": [{"power_w": 800, "j_per_th": 40}],
    "ramp_w_per_s": 50, "restart_s": 60, "stop_s": 2, "min_on_s": 120, "min_off_s": 120,
}
TEMPLATES = [S9, BITAXE, S19_RELAY, AVALON]


@st.composite
def sites(draw: st.DrawFn) -> SiteConfig:
    d: dict[str, Any] = simkit.site_dict()
    fuse_a = draw(st.sampled_from([16, 20, 25, 35]))
    phases = draw(st.sampled_from([1, 3]))
    d["site"].update(
        main_fuse_a=fuse_a, phases=phases,
        grid_import_limit_w=draw(st.floats(3000, 30000)),
        grid_export_limit_w=draw(st.floats(0, 12000)),
    )
    d["pv"]["peak_w"] = draw(st.floats(1000, 15000))
    if draw(st.booleans()):
        reserve = draw(st.floats(10, 40))
        b: dict[str, Any] = {
            "capacity_kwh": draw(st.floats(1, 20)),
            "max_charge_w": draw(st.floats(500, 6000)),
            "max_discharge_w": draw(st.floats(500, 6000)),
            "round_trip_efficiency": draw(st.floats(0.8, 0.97)),
            "min_soc_pct": 5, "reserve_soc_pct": reserve,
            "priority_soc_pct": draw(st.floats(reserve, 95)),
            # Often start near the reserve, where the reserve rule has work to do.
            "initial_soc_pct": draw(st.one_of(st.floats(5, 100),
                                              st.floats(reserve - 3, reserve + 3))),
        }
        if draw(st.booleans()):
            b["miners_may_discharge_above_soc_pct"] = draw(st.floats(reserve + 2, 99))
        d["battery"] = b
    else:
        del d["battery"]
    chosen = draw(st.lists(st.sampled_from(range(len(TEMPLATES))), min_size=1, max_size=3))
    has_tank = draw(st.integers(0, 2)) > 0
    miners = []
    for k, idx in enumerate(chosen):
        m = dict(TEMPLATES[idx])
        m["name"] = f"{m['name']}-{k}"
        m["heats_tank"] = has_tank and draw(st.integers(0, 3)) > 0
        miners.append(m)
    d["miners"] = miners
    if has_tank:
        target = draw(st.floats(40, 65))
        max_c = target + draw(st.floats(3, 20))
        min_c = target - draw(st.floats(3, 20))
        d["tank"] = {
            "volume_l": draw(st.floats(80, 2000)), "target_c": target, "min_c": min_c,
            "max_c": max_c, "heat_loss_w_per_k": draw(st.floats(0, 10)), "ambient_c": 18,
            # Often start just under max, where the tank limit has work to do.
            "initial_c": draw(st.one_of(st.floats(min_c - 5, max_c - 1.5),
                                        st.floats(max_c - 4, max_c - 0.01))),
        }
    else:
        del d["tank"]
    d["control"] = {"mode": "grid", "export_margin_w": draw(st.floats(0, 200)),
                    "import_headroom_w": draw(st.floats(0, 800))}
    return parse_site(d, "generated")


@st.composite
def traces(draw: st.DrawFn, cfg: SiteConfig) -> Trace:
    n = draw(st.integers(150, 600))
    # Mostly 10-60 s steps, so traces span the on-delays and boot times of real miners.
    step = draw(st.sampled_from([1.0, 10.0, 10.0, 30.0, 60.0, 60.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    peak = cfg.pv.peak_w
    # PV: a random walk with cloud jumps; load: a base with spikes up to past the limit.
    pv = np.clip(np.cumsum(rng.normal(0, peak * 0.05, n)) + rng.uniform(0.2, 1) * peak, 0, peak)
    pv[rng.random(n) < 0.05] *= rng.uniform(0, 0.3)
    load = rng.uniform(150, 1500, n)
    spikes = rng.random(n) < 0.05
    load[spikes] = rng.uniform(0.5, 1.2, spikes.sum()) * cfg.site.import_limit_w
    heat = rng.uniform(0, 3000, n) * (rng.random() < 0.7)
    dr = np.full(n, np.nan)
    if draw(st.integers(0, 2)) > 0:
        a = draw(st.integers(0, n - 1))
        dr[a: a + draw(st.integers(1, n))] = draw(st.floats(0, 3000))
    return simkit.trace(pv, load, step_s=step, heat_demand_w=heat, dr_limit_w=dr)


def _check(r: SimResult) -> None:
    cfg, c = r.cfg, r.columns
    balance = c["pv_w"] + c["grid_w"] - c["load_w"] - c["miner_w"] - c["battery_w"]
    assert np.max(np.abs(balance)) < 1e-6

    assert import_limit_violations(r) == []

    if cfg.battery is not None:
        low = (c["meas_soc_pct"] <= cfg.battery.reserve_soc_pct) & (c["meas_battery_w"] < 0)
        allowed = np.maximum(c["meas_miner_w"] + c["meas_battery_w"], 0.0) + 1.0
        bad = np.flatnonzero(low & (c["miner_target_w"] > allowed))
        assert bad.size == 0, f"miners fed from a battery below reserve at rows {bad[:5]}"

    dr = r.trace.dr_limit_w
    capped = np.isfinite(dr)
    assert np.all(c["miner_target_w"][capped] <= dr[capped] + 1e-6)

    if cfg.tank is not None:
        assert np.nanmax(c["tank_c"]) <= cfg.tank.max_c + 1e-9
        assert cfg.tank.start_c <= cfg.tank.max_c

    assert min_on_off_violations(r) == []


@pytest.mark.slow
@given(data=st.data())
def test_safety_properties_hold_for_random_sites_and_traces(data: st.DataObject) -> None:
    cfg = data.draw(sites())
    tr = data.draw(traces(cfg))
    _check(simulate(cfg, tr, "hearth", progress=False))


@settings(max_examples=15)
@given(data=st.data())
def test_energy_balances_for_the_baseline_too(data: st.DataObject) -> None:
    cfg = data.draw(sites())
    r = simulate(cfg, data.draw(traces(cfg)), "threshold", progress=False)
    c = r.columns
    balance = c["pv_w"] + c["grid_w"] - c["load_w"] - c["miner_w"] - c["battery_w"]
    assert np.max(np.abs(balance)) < 1e-6
