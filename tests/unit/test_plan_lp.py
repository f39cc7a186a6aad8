"""The day-ahead plan: LP cases small enough to check by hand, the forecast's knowledge of
prices (day-ahead publication) and the planner's re-planning and overrides."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import simkit

from controller.config import SiteConfig
from controller.plan.forecast import TraceForecast, prices_known_until
from controller.plan.lp import PlanInputs, miner_segments, solve_plan
from controller.plan.planner import Planner

SLOT_S = 900.0


def _one_miner_site(tank: bool = False, **control: Any) -> SiteConfig:
    """No battery; one 1000 W miner at a flat 100 J/TH: 36 000 TH per kWh."""
    d = simkit.site_dict()
    d.pop("battery")
    if not tank:
        d.pop("tank")
    d["miners"] = [{
        "name": "m", "kind": "test", "actuation": "power_target", "min_power_w": 100,
        "max_power_w": 1000, "efficiency": [{"power_w": 1000, "j_per_th": 100}],
        "heats_tank": tank,
    }]
    d["backup_heat"] = {"kind": "gas_boiler", "efficiency": 1.0, "fuel_price_per_kwh": "0.10"}
    d["control"].update(control)
    return simkit.parse_site(d)


def _inputs(n: int, imp: list[float], exp: float = 0.0, pv: float = 0.0, load: float = 0.0,
            heat: float = 0.0, vth: float = 1e-6, tank_c: float | None = None) -> PlanInputs:
    def col(x: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    return PlanInputs(0.0, SLOT_S, col(pv), col(load), col(heat), col(imp), col(exp), col(vth),
                      tank_start_c=tank_c)


def test_segments_follow_the_efficiency_curve_best_first() -> None:
    segs = miner_segments(simkit.site())
    s9 = [s for s in segs if s.miner == "s9"]
    assert [s.width_w for s in s9] == [600, 400, 400]
    assert s9[0].th_per_kwh == pytest.approx(600 / 78 / 600 * 3.6e6)
    rates = [s.th_per_kwh for s in segs]
    assert rates == sorted(rates, reverse=True)
    assert sum(s.width_w for s in segs) == simkit.site().miner_capacity_w


def test_four_slots_buy_only_below_the_btc_value() -> None:
    # 36 000 TH/kWh x 1e-6 per TH = 0.036 per kWh: worth buying at 0.01 and 0.02 only.
    cfg = _one_miner_site()
    plan = solve_plan(cfg, _inputs(4, [0.01, 0.10, 0.02, 0.50]))
    assert plan.miner_w == pytest.approx([1000, 0, 1000, 0], abs=1e-6)
    assert plan.import_w == pytest.approx([1000, 0, 1000, 0], abs=1e-6)
    # (0.036 − 0.01) x 0.25 kWh + (0.036 − 0.02) x 0.25 kWh
    assert plan.value == pytest.approx(0.0105, abs=1e-9)


def test_surplus_goes_to_the_miner_when_export_pays_less() -> None:
    cfg = _one_miner_site()
    # 1500 W of surplus; export 0.02 < 0.036 (miner first), then export 0.05 > 0.036.
    plan = solve_plan(cfg, PlanInputs(0.0, SLOT_S, np.array([1500.0, 1500.0]), np.zeros(2),
                                      np.zeros(2), np.array([0.3, 0.3]),
                                      np.array([0.02, 0.05]), np.full(2, 1e-6)))
    assert plan.miner_w == pytest.approx([1000, 0], abs=1e-6)
    assert plan.export_w == pytest.approx([500, 1500], abs=1e-6)
    assert plan.value == pytest.approx(0.25 * (0.036 + 0.5 * 0.02) + 0.25 * 1.5 * 0.05)


def test_the_tank_stores_cheap_heat_for_later_demand_and_stays_under_its_ceiling() -> None:
    cfg = _one_miner_site(tank=True, tank_max_margin_c=1.0)
    assert cfg.tank is not None
    # Power is free in slots 0-3, dear afterwards; heat is wanted only in slots 4-7.
    imp = [0.0] * 4 + [1.0] * 4
    heat = np.array([0.0] * 4 + [800.0] * 4)
    inp = PlanInputs(0.0, SLOT_S, np.zeros(8), np.zeros(8), heat, np.array(imp), np.zeros(8),
                     np.full(8, 1e-6), tank_start_c=50.0)
    plan = solve_plan(cfg, inp)
    assert plan.miner_w[:4] == pytest.approx([1000] * 4, abs=1e-6)
    assert plan.miner_w[4:] == pytest.approx([0] * 4, abs=1e-6)
    assert plan.tank_c[3] > 50.0 and plan.tank_c.max() <= cfg.tank.max_c - 1.0 + 1e-9
    # The stored heat covers the later demand: the backup heater runs less than demand.
    assert plan.backup_heat_w[4:].sum() < heat[4:].sum() - 1.0
    # Energy balance in every slot.
    bal = -plan.curtail_w + plan.import_w - plan.export_w - plan.miner_w
    assert bal == pytest.approx(np.zeros(8), abs=1e-6)


def test_a_cold_start_stays_feasible() -> None:
    cfg = _one_miner_site(tank=True)
    # Starts below min_c, power dear and the miner small against the demand.
    plan = solve_plan(cfg, _inputs(8, [5.0] * 8, heat=5000.0, tank_c=20.0))
    assert plan.status == "Optimal"
    assert plan.backup_heat_w == pytest.approx(np.full(8, 5000.0), abs=1e-6)


def test_prices_are_known_until_the_end_of_tomorrow_only_after_publication() -> None:
    tz = ZoneInfo("Europe/Brussels")
    noon = datetime(2023, 3, 25, 12, 0, tzinfo=tz).timestamp()
    after = datetime(2023, 3, 25, 13, 30, tzinfo=tz).timestamp()
    assert prices_known_until(noon, tz, 13.0) == datetime(2023, 3, 26, tzinfo=tz).timestamp()
    # Tomorrow is the DST day (23 h): the end is its local midnight, not +24 h.
    end = prices_known_until(after, tz, 13.0)
    assert end == datetime(2023, 3, 27, tzinfo=tz).timestamp()
    assert end - datetime(2023, 3, 26, tzinfo=tz).timestamp() == 23 * 3600


def _days_trace(days: int = 3) -> Any:
    n = days * 96
    k = np.arange(n)
    pv = np.maximum(0.0, np.sin((k % 96 - 24) / 48 * np.pi)) * 5000.0 * (1 + (k // 96))
    return simkit.trace(pv, 400.0, step_s=SLOT_S, heat_demand_w=1000.0,
                        start_s=datetime(2023, 3, 1, tzinfo=ZoneInfo("UTC")).timestamp())


def test_persistence_forecast_never_looks_at_the_future() -> None:
    cfg = simkit.site()
    tr = _days_trace()
    fc = TraceForecast(cfg, tr, "persistence")
    t = float(tr.time_s[0]) + 96 * SLOT_S + 10 * 3600  # day 2, 10:00 UTC (11:00 local)
    inp = fc.inputs(t, 50.0, 50.0)
    assert inp is not None
    a = fc.slot_of(t)
    assert inp.pv_w[0] == pytest.approx(fc.pv[a - 96])  # yesterday, same time
    # Before the 13:00 publication the horizon ends at local midnight of day 2.
    assert inp.start_s + inp.n * SLOT_S <= fc.horizon_end_s(t)
    perfect = TraceForecast(cfg, tr, "perfect").inputs(t, 50.0, 50.0)
    assert perfect is not None and perfect.pv_w[0] == pytest.approx(fc.pv[a])


def test_planner_replans_on_new_prices_and_on_large_forecast_error() -> None:
    cfg = simkit.site()
    tr = _days_trace()
    fc = TraceForecast(cfg, tr, "persistence")
    planner = Planner(cfg, fc, deviation_kwh=1.0, min_replan_interval_s=0.0)
    t0 = float(tr.time_s[0])
    out = planner.update(t0, 50.0, 50.0)
    assert planner.replans == 1 and planner.reasons == {"start": 1}
    assert cfg.tank is not None
    assert out.tank_target_c is not None and out.tank_target_c >= cfg.tank.target_c
    assert out.plan_min_w is None  # dear power (0.3): the plan buys nothing
    # Through the morning the realised surplus matches the forecast: no re-plan...
    t = t0
    for _ in range(4 * 8):
        t += SLOT_S
        k = fc.slot_of(t - SLOT_S)
        planner.update(t, 50.0, 50.0, fc.pv[k] - fc.load[k], fc.heat[k], SLOT_S)
    assert planner.reasons.get("deviation", 0) == 0
    # ...at 13:00 Brussels (12:00 UTC) the next day's prices arrive: re-plan.
    while t < t0 + 12 * 3600 + SLOT_S:
        t += SLOT_S
        k = fc.slot_of(t - SLOT_S)
        planner.update(t, 50.0, 50.0, fc.pv[k] - fc.load[k], fc.heat[k], SLOT_S)
    assert planner.reasons.get("prices") == 1
    # A cloud the forecast did not see: 2 kW less surplus for an hour.
    for _ in range(5):
        t += SLOT_S
        k = fc.slot_of(t - SLOT_S)
        planner.update(t, 50.0, 50.0, fc.pv[k] - fc.load[k] - 2000.0, fc.heat[k], SLOT_S)
    assert planner.reasons.get("deviation", 0) >= 1


def test_planner_sets_a_buy_floor_where_the_plan_buys() -> None:
    cfg = simkit.site()
    n = 2 * 96
    k = np.arange(n)
    # Power is paid for (negative import price) from 01:00 to 03:00 UTC only.
    imp = np.where((k % 96 >= 4) & (k % 96 < 12), -0.10, 0.40)
    tr = simkit.trace(np.zeros(n), 300.0, step_s=SLOT_S, heat_demand_w=500.0,
                      start_s=datetime(2023, 3, 1, tzinfo=ZoneInfo("UTC")).timestamp())
    tr = tr.__class__(**{**{f: getattr(tr, f) for f in tr.__dataclass_fields__},
                         "import_price": imp.astype(np.float64)})
    fc = TraceForecast(cfg, tr, "perfect")
    planner = Planner(cfg, fc)
    t0 = float(tr.time_s[0])
    floors = [planner.update(t0 + j * SLOT_S, 50.0, 50.0).plan_min_w for j in range(16)]
    assert all(f is None for f in floors[:4] + floors[12:])
    paid = [f for f in floors[4:12]]
    assert all(f is not None and f >= cfg.miner_capacity_w - 1.0 for f in paid), paid
