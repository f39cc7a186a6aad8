"""`hearth sim` writes the ledger: every interval recomputed independently from the
simulator's per-row timeline and prices, to the micro-unit (hence the cent) and the
millisat; cross-checked against the sim summary and the timeline CSV."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import ledgerkit
import numpy as np
import pytest
import simkit

from controller.config import SiteConfig, load_site
from controller.ledger.query import Ledger
from controller.ledger.sim import write_sim_ledger
from controller.ledger.tables import INTERVAL_VALUE_COLUMNS
from controller.sim.report import summarize, write_timeline
from controller.sim.runner import SimResult, simulate
from controller.trace.reader import read_trace

DAY = simkit.ROOT / "hil" / "traces" / "house-spring-day.csv"
J_KWH = F(3_600_000)


@pytest.fixture(params=ledgerkit.BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ledgerkit.database(request.param, tmp_path) as u:
        yield u


@pytest.fixture(scope="module")
def spring_day() -> SimResult:
    cfg = load_site(simkit.HOUSE)
    return simulate(cfg, read_trace(DAY, cfg), progress=False)


def r6(x: F) -> Decimal:
    """Round half to even to 1e-6 (the ledger's rule), from an exact rational."""
    return Decimal(round(x * 10**6)).scaleb(-6)


def fr(x: float) -> F:
    """A float as the ledger takes it: its shortest decimal repr."""
    return F(repr(float(x)))


def recompute(r: SimResult) -> dict[int, dict[str, Any]]:
    """The ledger of a simulation, written again from scratch with Fractions."""
    cfg: SiteConfig = r.cfg
    c, tr = r.columns, r.trace
    dt = F(repr(float(tr.step_s)))
    limit = fr(cfg.site.grid_export_limit_w)
    fuel = F(cfg.backup_heat.fuel_price_per_kwh)
    eff = fr(cfg.backup_heat.efficiency)
    fee = 1 - fr(cfg.bitcoin.pool_fee_pct) / 100
    btc = F(cfg.bitcoin.btc_price)
    gs = cfg.ledger.grid_service
    sums: dict[int, dict[str, F]] = defaultdict(lambda: defaultdict(F))
    th_by_row = (c["hashrate_ths"] * float(tr.step_s)).tolist()
    # demand response: baseline = mean miner power over the 15 min before each event
    dr = np.isfinite(tr.dr_limit_w)
    baseline = F(0)
    for i, t in enumerate(tr.time_s.tolist()):
        k = int(t // 900 * 900)
        s = sums[k]
        g = fr(c["grid_w"][i])
        imp, exp = max(g, F(0)), -min(g, F(0))
        p_imp, p_exp = fr(c["import_price"][i]), fr(c["export_price"][i])
        from_pv, from_bat = fr(c["miner_from_pv_w"][i]), fr(c["miner_from_battery_w"][i])
        from_grid, miner = fr(c["miner_from_grid_w"][i]), fr(c["miner_w"][i])
        heat = fr(c["heat_from_tank_w"][i])
        forgone = min(from_pv, max(limit - exp, F(0)))
        for name, w in (("pv", fr(c["pv_w"][i])), ("load", fr(c["load_w"][i])),
                        ("import", imp), ("export", exp), ("miner", miner),
                        ("miner_from_pv", from_pv), ("miner_from_battery", from_bat),
                        ("miner_from_grid", from_grid), ("forgone_export", forgone),
                        ("heat_to_tank", fr(c["heat_to_tank_w"][i])), ("heat_delivered", heat),
                        ("backup_heat", fr(c["backup_heat_w"][i]))):
            s[f"{name}_kwh"] += w * dt / J_KWH
        s["import_cost"] += imp * dt * p_imp / J_KWH
        s["export_revenue"] += exp * dt * p_exp / J_KWH
        s["grid_cost"] += from_grid * dt * p_imp / J_KWH
        s["forgone_export"] += forgone * dt * p_exp / J_KWH
        s["battery_cost"] += from_bat * dt * p_exp / J_KWH
        s["heat_value"] += heat * dt * fuel / (J_KWH * eff)
        th = fr(th_by_row[i])
        hp, hv, bp = tr.hashprice[i], tr.hashvalue_sats_per_th_day[i], tr.btc_price[i]
        price = fr(bp) if math.isfinite(bp) else btc  # the step's BTC price, else the file's
        if math.isfinite(hv):
            sats = th * fr(hv) * fee / 86_400
            value = sats * price / 100_000_000
        elif math.isfinite(hp):
            value = th * fr(hp) * fee / 86_400
            sats = value * 100_000_000 / price
        else:
            b = cfg.bitcoin
            reward = (b.block_subsidy_btc + b.fees_per_block_btc) * 100_000_000
            sats = th * 10**12 * F(reward) * fee / (fr(b.network_difficulty) * 2**32)
            value = sats * price / 100_000_000
        s["sats"] += sats
        s["btc_value"] += value
        if dr[i]:
            if i == 0 or not dr[i - 1]:
                before = [j for j in range(max(0, i - 15), i) if not dr[j]]
                mean = sum((fr(c["miner_w"][j]) for j in before), F(0)) / len(before) \
                    if before else F(0)
                baseline = F(r6(mean))
            s["dr_curtailed_kwh"] += max(baseline - miner, F(0)) * dt / J_KWH
        if gs is not None:
            s["available_s"] += dt
    out: dict[int, dict[str, Any]] = {}
    for k, s in sums.items():
        row = {name: r6(v) for name, v in s.items() if name.endswith("_kwh")}
        for m in ("import_cost", "export_revenue", "grid_cost", "forgone_export",
                  "battery_cost", "heat_value", "btc_value"):
            row[m] = r6(s[m])
        row["expected_msat"] = math.floor(s["sats"] * 1000)
        if gs is not None:
            kw = F(repr(gs.offered_kw)) if gs.offered_kw is not None \
                else fr(cfg.miner_capacity_w) / 1000
            row["availability_pay"] = r6(kw * s["available_s"] / 3600
                                         * F(gs.availability_rate_per_kw_h))
            row["activation_pay"] = r6(s["dr_curtailed_kwh"] * F(gs.activation_rate_per_kwh))
        else:
            row["availability_pay"] = row["activation_pay"] = Decimal(0)
        row["net"] = (row["btc_value"] + row["heat_value"] + row["availability_pay"]
                      + row["activation_pay"] - row["grid_cost"] - row["forgone_export"]
                      - row["battery_cost"])
        out[k] = row
    return out


def _compare(r: SimResult, rows: list[dict[str, Any]]) -> None:
    want = recompute(r)
    assert [row["start_s"] for row in rows] == sorted(want)
    checked = 0
    for row in rows:
        exp = want[row["start_s"]]
        for name, value in exp.items():
            got = row[name]
            assert got == value, f"interval {row['start_s']} {name}: ledger {got}, " \
                                 f"recomputed {value}"
            checked += 1
    assert checked >= len(rows) * 20


def test_every_interval_of_a_simulated_day_recomputes_exactly(url: str,
                                                              spring_day: SimResult) -> None:
    res = write_sim_ledger(spring_day, url, clock=lambda: 1e9)
    assert (res.samples, res.skipped) == (1440, 0)
    led = Ledger.open(url)
    try:
        rows = led.intervals()
        _compare(spring_day, rows)
        assert len(rows) == 96 and all(r["covered_s"] == 900 for r in rows)
        assert sum(r["expected_msat"] for r in rows) > 300_000  # a sunny day: it mined
        # the summary of the same run agrees to the cent (it sums floats over the day)
        s = summarize(spring_day)
        tot = led.totals()
        for key in ("import_cost", "export_revenue", "btc_value", "heat_value"):
            assert abs(tot[key] - Decimal(s[key])) <= Decimal("0.01"), key
        assert abs(tot["miner_kwh"] - Decimal(repr(s["miner_kwh"]))) < Decimal("0.00001")
    finally:
        led.close()
    again = write_sim_ledger(spring_day, url, clock=lambda: 2e9)
    assert (again.skipped, again.flushes) == (1440, 0)  # nothing written twice
    led = Ledger.open(url)
    try:
        assert len(led.intervals(history=True)) == 96
    finally:
        led.close()


def test_timeline_csv_gives_the_same_money_to_the_cent(tmp_path: Path,
                                                       spring_day: SimResult) -> None:
    """From the published timeline CSV (powers rounded to 0.1 W), the money per interval
    comes out within a cent of the ledger's."""
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    write_sim_ledger(spring_day, url)
    tl = tmp_path / "timeline.csv"
    write_timeline(spring_day, tl)
    per: dict[int, dict[str, F]] = defaultdict(lambda: defaultdict(F))
    from datetime import datetime
    with tl.open() as f:
        for row in csv.DictReader(f):
            t = int(datetime.fromisoformat(row["time"]).timestamp())
            g = F(row["grid_w"])
            per[t // 900 * 900]["import_cost"] += max(g, F(0)) * 60 * F(row["import_price"]) \
                / J_KWH
            per[t // 900 * 900]["export_revenue"] += max(-g, F(0)) * 60 \
                * F(row["export_price"]) / J_KWH
    led = Ledger.open(url)
    try:
        for r in led.intervals():
            for key in ("import_cost", "export_revenue"):
                assert abs(F(r[key]) - per[r["start_s"]][key]) <= F(1, 100), (r["start_s"], key)
    finally:
        led.close()


def test_demand_response_and_grid_services_in_a_simulation(tmp_path: Path) -> None:
    """A synthetic sunny hour at 60-s steps with a DR cap in the middle: curtailment is
    measured against the 15-min baseline, and both payments recompute exactly."""
    cfg = simkit.site(battery=None, ledger={"grid_service": {
        "offered_kw": 1.5, "availability_rate_per_kw_h": "0.02",
        "activation_rate_per_kwh": "0.30", "windows": ["00:00-24:00"]}})
    n = 120
    dr = np.full(n, np.nan)
    dr[60:75] = 200.0  # a 15-minute event capping the miners at 200 W
    tr = simkit.trace(np.full(n, 5000.0), 400.0, step_s=60.0, dr_limit_w=dr,
                      start_s=1_700_000_100.0 - 1_700_000_100.0 % 900)
    r = simulate(cfg, tr, progress=False)
    url = f"sqlite:///{tmp_path / 'dr.sqlite3'}"
    write_sim_ledger(r, url)
    led = Ledger.open(url)
    try:
        rows = led.intervals()
        _compare(r, rows)
        tot = led.totals()
    finally:
        led.close()
    assert tot["dr_curtailed_kwh"] > Decimal("0.1")  # the cap bit
    assert tot["activation_pay"] > 0 and tot["availability_pay"] == Decimal("0.06")  # 1.5x2x0.02


def test_value_columns_are_what_the_table_defines() -> None:
    assert {"net", "expected_msat", "btc_value", "heat_value", "miner_from_pv_kwh",
            "covered_s", "start_s"} <= set(INTERVAL_VALUE_COLUMNS)
