"""The runtime planner's forecast: persistence from the service's own measurements, prices
from the feed (the horizon ends where the known prices end)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import simkit

from controller.control.overrides import Overrides
from controller.plan.planner import NO_PLAN, PlanOutput
from controller.runtime.planner import LiveForecast, RuntimePlanner
from controller.runtime.prices import PriceFeed, parse_prices_csv

DAY0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def test_live_forecast_persists_yesterday_and_plans_to_the_end_of_known_prices() -> None:
    cfg = simkit.site()
    feed = PriceFeed(cfg)
    fc = LiveForecast(cfg, feed)
    # Day 0: one minute samples; PV 2 kW from 10:00 to 12:00 UTC, load 400 W, heat 800 W.
    for minute in range(24 * 60):
        t = DAY0 + minute * 60
        pv = 2000.0 if 600 <= minute < 720 else 0.0
        fc.observe(t, pv, 400.0, 800.0, 60.0)
    # Day 1 at 09:00 UTC, no price series: the horizon is horizon_h of constant prices.
    t = DAY0 + 86_400 + 9 * 3600
    inp = fc.inputs(t, 50.0, 60.0)
    assert inp is not None and inp.n == int(cfg.plan.horizon_h * 4)
    assert inp.pv_w[4] == pytest.approx(2000.0)  # 10:00, as yesterday
    assert inp.pv_w[0] == 0.0 and inp.load_w[0] == pytest.approx(400.0)
    assert inp.heat_demand_w[0] == pytest.approx(800.0)
    assert set(inp.import_price.tolist()) == {float(cfg.tariffs.import_price_per_kwh)}
    # Slots beyond the history (more than a day ahead, never seen): no PV, the mean load.
    assert inp.pv_w[-1] == 0.0 and inp.load_w[-1] == pytest.approx(400.0)
    # A day-ahead series until 18:00 UTC: the horizon ends there, its prices are planned on.
    rows = "\n".join(f"2026-03-02T{h:02d}:00:00Z,{0.1 + h / 100:.2f},0.05" for h in range(18))
    feed.set_series(parse_prices_csv("time,import_price,export_price\n" + rows + "\n", "x"))
    inp = fc.inputs(t, 50.0, 60.0)
    assert inp is not None
    assert inp.start_s + inp.n * inp.step_s == DAY0 + 86_400 + 18 * 3600
    assert inp.import_price[0] == pytest.approx(0.19) and inp.import_price[4] == 0.2


async def test_the_plan_hook_leaves_a_persons_tank_target_alone() -> None:
    """The plan writes its own override fields; the tank target a person set stays, and a
    plan that is gone (prices ran out) clears the plan's fields instead of leaving its
    last slot in force."""
    cfg = simkit.site()
    rp = RuntimePlanner(cfg, PriceFeed(cfg))
    try:
        person = Overrides(tank_target_c=48.0)
        rp.output = PlanOutput(tank_target_c=61.5, plan_min_w=700.0)
        ov = rp(person, 0.0)
        assert (ov.tank_target_c, ov.plan_tank_target_c, ov.plan_min_w) == (48.0, 61.5, 700.0)
        assert ov.effective_tank_target_c(55.0) == 48.0
        rp.output = NO_PLAN
        ov = rp(ov, 1.0)
        assert (ov.tank_target_c, ov.plan_tank_target_c, ov.plan_min_w) == (48.0, None, None)
    finally:
        await rp.close()


def test_the_live_plan_values_mining_at_the_controllers_terms() -> None:
    """The plan prices a terahash as the controller does at that moment (the market feed
    while fresh, else the static [bitcoin]), not at the site file's terms alone."""
    from decimal import Decimal

    from controller.economics.hashprice import Hashvalue, config_terms

    cfg = simkit.site()
    static = LiveForecast(cfg, PriceFeed(cfg)).inputs(DAY0, 50.0, 60.0)
    live_terms = Hashvalue(Decimal(300), Decimal(30000), Decimal(2))
    live = LiveForecast(cfg, PriceFeed(cfg), lambda _t: live_terms).inputs(DAY0, 50.0, 60.0)
    assert static is not None and live is not None
    assert static.value_per_th[0] == pytest.approx(
        float(config_terms(cfg.bitcoin).value_per_th_s()))
    assert live.value_per_th[0] == pytest.approx(300 * 0.98 / 86_400 * 30000 / 1e8)
