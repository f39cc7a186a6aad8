"""The live regret: a finished day judged against the plan LP on what was measured.

A physically consistent made-up day (PV 2.6 kW surplus 10:00-14:00 UTC, heat drawn 200 W,
the tank integrated from it) is run twice: miners idle all day, and the S9 eating the
surplus. Best-in-hindsight must be at least what either realised, and idling must leave
more on the table than mining the surplus.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import simkit

from controller.config.models import SiteConfig
from controller.economics.hashprice import BtcTerms, Hashvalue, config_terms
from controller.runtime.hindsight import Hindsight
from controller.runtime.planner import LiveForecast, plan_json
from controller.runtime.prices import PriceFeed

DAY0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def _site() -> SiteConfig:
    d = simkit.site_dict()
    del d["battery"]
    d["plan"] = {"enabled": True}
    return simkit.parse_site(d)


def _run_day(cfg: SiteConfig, mine: bool,
             btc_terms: BtcTerms | None = None) -> tuple[Hindsight, dict[str, Any] | None]:
    feed = PriceFeed(cfg)
    fc = LiveForecast(cfg, feed)
    hs = Hindsight(cfg, float(cfg.plan.step_s))
    tank = cfg.tank
    assert tank is not None
    s9 = next(m for m in cfg.miners if m.name == "s9")
    temp_c, dt = 50.0, 60.0
    result = None
    for minute in range(24 * 60 + 2):
        t = DAY0 + minute * dt
        pv = 3000.0 if 600 <= minute % 1440 < 840 else 0.0
        load, heat = 400.0, 200.0
        miner = 1400.0 if mine and pv > 0 else 0.0
        grid = load + miner - pv
        p = feed.prices_at(t)
        fc.observe(t, pv, load, heat, dt)
        hs.observe(t, dt, grid, s9.hashrate_ths_at(miner), p.import_per_kwh,
                   p.export_per_kwh, temp_c, None, btc_terms)
        day = hs.due_day(t)
        if day is not None:
            result = hs.judge(day, fc.observed, feed.prices_at) or result
        # the tank over this minute: miner heat in, the building's draw and losses out
        temp_c += (tank.miner_heat_fraction * miner - heat
                   - tank.heat_loss_w_per_k * (temp_c - tank.ambient_c)) * dt \
            / tank.heat_capacity_j_per_k
    return hs, result


def test_a_finished_day_is_judged_once_against_the_best_in_hindsight() -> None:
    cfg = _site()
    _, idle = _run_day(cfg, mine=False)
    _, mined = _run_day(cfg, mine=True)
    assert idle is not None and mined is not None
    assert idle["start"] == "2026-03-01T00:00:00Z" and idle["end"] == "2026-03-02T00:00:00Z"
    for r in (idle, mined):
        # The LP is an upper bound (a relaxation): no real day beats it.
        assert float(r["best_value"]) >= float(r["realised_value"]) - 0.01
        assert float(r["regret"]) == pytest.approx(
            float(r["best_value"]) - float(r["realised_value"]), abs=0.011)
    # Same weather, same prices: the same best; mining the surplus realised more.
    assert float(idle["best_value"]) == pytest.approx(float(mined["best_value"]), abs=0.01)
    assert float(mined["realised_value"]) > float(idle["realised_value"]) + 0.1
    assert float(idle["regret"]) > float(mined["regret"]) + 0.1


def test_a_day_seen_only_in_part_is_not_judged() -> None:
    cfg = _site()
    feed = PriceFeed(cfg)
    fc = LiveForecast(cfg, feed)
    hs = Hindsight(cfg, float(cfg.plan.step_s))
    judged: list[Any] = []
    for minute in range(12 * 60, 24 * 60 + 2):  # the service started at noon
        t = DAY0 + minute * 60.0
        fc.observe(t, 0.0, 400.0, 200.0, 60.0)
        hs.observe(t, 60.0, 400.0, 0.0, 0.3, 0.05, 50.0, None)
        day = hs.due_day(t)
        if day is not None:
            judged.append(hs.judge(day, fc.observed, feed.prices_at))
    assert judged == [None, None]  # the day before the start, then the half-seen day
    assert hs.last is None


def test_the_plan_document_carries_the_hindsight() -> None:
    cfg = _site()
    hs, result = _run_day(cfg, mine=True)
    from controller.plan.planner import NO_PLAN, Planner

    doc = plan_json(None, NO_PLAN, Planner(cfg, LiveForecast(cfg, PriceFeed(cfg)), 1.0),
                    cfg.site.currency, hs.last)
    assert doc["hindsight"] == result and set(result or {}) >= {"realised_value",
                                                                "best_value", "regret"}


def test_hindsight_prices_a_terahash_at_the_controllers_terms() -> None:
    """Realised and best are both valued at the terms the controller decided on: ten times
    the hashvalue, more BTC value realised and a higher best (not the site file's terms)."""
    cfg = _site()
    static = config_terms(cfg.bitcoin)
    f = static.hashvalue_sats_per_th_day()
    rich = Hashvalue(Decimal(f.numerator) / Decimal(f.denominator) * 10, static.btc_price,
                     static.pool_fee_pct)
    _, base = _run_day(cfg, mine=True)
    _, high = _run_day(cfg, mine=True, btc_terms=rich)
    assert base is not None and high is not None
    assert float(high["realised_value"]) > float(base["realised_value"]) + 1.0
    assert float(high["best_value"]) > float(base["best_value"]) + 1.0
    assert float(high["best_value"]) >= float(high["realised_value"]) - 0.01

