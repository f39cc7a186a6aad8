"""Known-answer days, computed by hand (the arithmetic is in the comments).

Common terms: difficulty D = 8e13, block reward 3.25 BTC (3.125 subsidy + 0.125 fees) =
325 000 000 sats, no pool fee, BTC = 60 000 EUR. A 15-min interval at 10 TH/s is
9 000 TH = 9e15 hashes, so

    sats = 9e15 x 3.25e8 / (8e13 x 2^32) = 3.65625e10 / 2^32 = 1142578125 / 2^27
         = 8.512870... sats  -> 8512 msat (floored per interval)
    value = 8.512870... x 60000 / 1e8 = 0.0051077... EUR -> 0.005108 (to 1e-6)

Backup heat: gas boiler, 0.10 EUR/kWh gas at 90 % -> 0.10 / 0.9 per kWh of heat.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import ledgerkit
import pytest
from ledgerkit import SITE, economics, sample

from controller.config.ledger import GridServiceSection
from controller.economics.breakeven import marginal_value_per_kwh
from controller.economics.grid_service import GridServiceTerms
from controller.economics.tariffs import read_price_csv
from controller.ledger.query import Ledger
from controller.ledger.writer import LedgerWriter


@pytest.fixture(params=ledgerkit.BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with ledgerkit.database(request.param, tmp_path) as u:
        yield u


def _day(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


D1 = date(2024, 3, 5)


def test_hand_computed_day_fixed_tariff_one_miner(url: str) -> None:
    """Fixed tariff 0.30 import / 0.08 export; one 1 kW miner at 100 J/TH (10 TH/s).

    - 10:00-14:00 (16 intervals): PV 3000 W, house 500 W, miner 1000 W -> exports 1500 W;
      the miner runs on PV. 10:00-11:00 comes as 60-s samples, the rest as 15-min ones.
    - 20:00-21:00 (4 intervals): no PV, miner on the grid (import 1500 W).
    - otherwise: house 500 W from the grid, miner off.
    - the tank delivers 900 W of heat while the miner runs.
    """
    t0 = _day(D1)
    samples = []
    for q in range(96):
        t = t0 + q * 900
        h = q / 4
        if 10 <= h < 14:
            steps = 15 if h < 11 else 1
            samples += [sample(t + k * 900 / steps, 900 / steps, pv=3000, load=500,
                               miner=1000, heat_out=900) for k in range(steps)]
        elif 20 <= h < 21:
            samples.append(sample(t, 900, pv=0, load=500, miner=1000, heat_out=900))
        else:
            samples.append(sample(t, 900, pv=0, load=500))
    w = LedgerWriter.open(url, SITE, economics(), flush_interval_s=3600, clock=lambda: 1e9)
    w.add_many(samples)
    w.close(finalize=True)

    led = Ledger.open(url)
    try:
        rep = led.day_report(D1)
        rows = {r.label: r.totals for r in rep.rows}
    finally:
        led.close()
    assert rep.total.intervals == rep.expected_intervals == 96

    pv_iv = rows["10:15"]  # miner on PV
    assert pv_iv["miner_kwh"] == Decimal("0.25") == pv_iv["miner_from_pv_kwh"]
    assert pv_iv["expected_msat"] == 8512
    assert pv_iv["btc_value"] == Decimal("0.005108")
    assert pv_iv["heat_delivered_kwh"] == Decimal("0.225")  # 900 W x 0.25 h
    assert pv_iv["heat_value"] == Decimal("0.025")  # 0.225 x 0.10 / 0.9
    assert pv_iv["forgone_export"] == Decimal("0.02")  # 0.25 kWh x 0.08
    assert pv_iv["grid_cost"] == 0
    assert pv_iv["net"] == Decimal("0.010108")  # 0.005108 + 0.025 - 0.02
    assert pv_iv.value_per_kwh == Decimal("0.120432")  # (0.005108 + 0.025) / 0.25
    assert rows["10:00"].sums == pv_iv.sums  # 15 one-minute samples = one 15-min sample

    grid_iv = rows["20:30"]
    assert grid_iv["miner_from_grid_kwh"] == Decimal("0.25")
    assert grid_iv["grid_cost"] == Decimal("0.075")  # 0.25 x 0.30
    assert grid_iv["forgone_export"] == 0
    assert grid_iv["net"] == Decimal("-0.044892")  # 0.005108 + 0.025 - 0.075

    t = rep.total
    assert t["miner_kwh"] == Decimal(5)  # 20 intervals x 0.25
    assert t["miner_from_pv_kwh"] == Decimal(4) and t["miner_from_grid_kwh"] == Decimal(1)
    assert t["import_kwh"] == Decimal("11")  # 76 x 0.125 (house) + 4 x 0.375
    assert t["export_kwh"] == Decimal("6")  # 16 x 0.375
    assert t["import_cost"] == Decimal("3.3")  # 11 x 0.30
    assert t["export_revenue"] == Decimal("0.48")  # 6 x 0.08
    assert t["expected_msat"] == 170_240 and t.sats == 170  # 20 x 8512
    assert t["btc_value"] == Decimal("0.10216")  # 20 x 0.005108
    assert t["heat_value"] == Decimal("0.5")  # 4.5 kWh x 0.10 / 0.9
    assert t["grid_cost"] == Decimal("0.3") and t["forgone_export"] == Decimal("0.32")
    assert t["net"] == Decimal("-0.01784")  # 0.10216 + 0.5 - 0.3 - 0.32

    # Break-even: one kWh at 100 J/TH = 36 000 TH = 4 intervals' worth of hashes:
    # 4 x 0.0051077... = 0.020431 of BTC; 95 % of it as heat worth 0.10 / 0.9 = 0.105556.
    mv = marginal_value_per_kwh(Decimal(100), ledgerkit.TERMS, Decimal("0.1") / Decimal("0.9"),
                                Decimal("0.95"))
    assert (mv.btc_per_kwh, mv.heat_per_kwh) == (Decimal("0.020431"), Decimal("0.105556"))
    assert mv.break_even_import_price == Decimal("0.125987")
    assert marginal_value_per_kwh(100.0, ledgerkit.TERMS, Decimal("0.1"), 0.95,
                                  heat_needed=False).total_per_kwh == Decimal("0.020431")


PRICES = """time,import_price,export_price
2024-06-09T00:00:00Z,0.25,0.05
2024-06-09T11:00:00Z,-0.02,-0.05
2024-06-09T13:00:00Z,0.25,0.05
2024-06-10T00:00:00Z,0.25,0.05
"""


def test_hand_computed_day_negative_prices_and_demand_response(url: str,
                                                               tmp_path: Path) -> None:
    """Dynamic prices from a CSV: negative 11:00-13:00 (import -0.02, export -0.05).
    A 2 kW miner (20 TH/s). Grid service: 2 kW offered 17:00-21:00 at 0.01 per kW and
    hour, activation 0.20 per kWh, baseline = mean power of the 15 min before.

    - 11-12: PV 6000, house 500, miner 2000 -> exports 3500 W at -0.05 (the site pays).
    - 12-13: PV 1000, miner 2000 -> 500 W from PV, 1500 W imported at -0.02 (paid to take).
    - 16-18: miner 2000 W from the grid at 0.25.
    - 18:00-18:30: a "reduce" request; the miner drops to 500 W (5 TH/s). Baseline 2000 W
      -> 1500 W curtailed for 0.5 h = 0.75 kWh -> 0.15 activation.
    - 18:30-19: miner back at 2000 W. Otherwise house 500 W from the grid.
    """
    csv_path = tmp_path / "prices.csv"
    csv_path.write_text(PRICES)
    tariff = read_price_csv(csv_path)
    gs = GridServiceTerms.from_config(
        GridServiceSection(offered_kw=2, availability_rate_per_kw_h=Decimal("0.01"),
                           activation_rate_per_kwh=Decimal("0.20"), windows=["17:00-21:00"]),
        miner_capacity_w=2000, timezone="UTC")
    t0 = _day(date(2024, 6, 9))
    samples = []
    for q in range(96):
        t = t0 + q * 900
        h = q / 4
        p = tariff.prices_at(t)
        kw = {"imp": str(p.import_per_kwh), "exp": str(p.export_per_kwh)}
        if 11 <= h < 12:
            s = sample(t, 900, pv=6000, load=500, miner=2000, **kw)
        elif 12 <= h < 13:
            s = sample(t, 900, pv=1000, load=500, miner=2000, **kw)
        elif 16 <= h < 18 or 18.5 <= h < 19:
            s = sample(t, 900, load=500, miner=2000, **kw)
        elif 18 <= h < 18.5:
            s = sample(t, 900, load=500, miner=500, dr="reduce", **kw)
        else:
            s = sample(t, 900, load=500, **kw)
        samples.append(s)
    w = LedgerWriter.open(url, SITE, economics(grid_service=gs), flush_interval_s=900,
                          clock=lambda: 1e9)
    w.add_many(samples)
    w.close(finalize=True)

    led = Ledger.open(url)
    try:
        rep = led.day_report(date(2024, 6, 9))
    finally:
        led.close()
    rows = {r.label: r.totals for r in rep.rows}

    neg_export = rows["11:30"]
    assert neg_export["export_revenue"] == Decimal("-0.04375")  # 0.875 kWh x -0.05
    assert neg_export["forgone_export"] == Decimal("-0.025")  # 0.5 kWh x -0.05: a gain
    neg_import = rows["12:15"]
    assert neg_import["grid_cost"] == Decimal("-0.0075")  # 0.375 kWh x -0.02: paid
    assert neg_import["miner_from_pv_kwh"] == Decimal("0.125")
    assert neg_import["forgone_export"] == Decimal("-0.00625")  # 0.125 x -0.05
    # 20 TH/s: 2 x 8.5128... = 17.0257 sats -> 17025 msat, 0.010215 EUR.
    assert neg_import["expected_msat"] == 17025 and neg_import["btc_value"] == Decimal("0.010215")

    dr = rows["18:15"]
    assert dr["dr_curtailed_kwh"] == Decimal("0.375")  # (2000 - 500) W x 0.25 h
    assert dr["activation_pay"] == Decimal("0.075")
    assert dr["availability_pay"] == Decimal("0.005")  # 2 kW x 0.25 h x 0.01
    assert dr["expected_msat"] == 4256 and dr["btc_value"] == Decimal("0.002554")
    assert rows["17:45"]["dr_curtailed_kwh"] == 0 and rows["18:30"]["dr_curtailed_kwh"] == 0
    assert rows["16:45"]["availability_pay"] == 0  # before the window

    t = rep.total
    assert t["miner_kwh"] == Decimal("9.25")
    assert t["miner_from_pv_kwh"] == Decimal("2.5") and t["miner_from_grid_kwh"] == Decimal("6.75")
    assert t["import_kwh"] == Decimal("17.75") and t["export_kwh"] == Decimal("3.5")
    assert t["import_cost"] == Decimal("4.0325")  # -0.03 + 1.25 + 0.125 + 0.3125 + 2.375
    assert t["export_revenue"] == Decimal("-0.175")
    assert t["grid_cost"] == Decimal("1.2825")  # -0.03 + 1.0 + 0.0625 + 0.25
    assert t["forgone_export"] == Decimal("-0.125")  # (2 + 0.5) kWh x -0.05
    assert t["dr_curtailed_kwh"] == Decimal("0.75") and t["activation_pay"] == Decimal("0.15")
    assert t["flex_offered_kwh"] == Decimal("8") and t["availability_pay"] == Decimal("0.08")
    assert t["expected_msat"] == 18 * 17025 + 2 * 4256  # 314 962
    assert t["btc_value"] == Decimal("0.188978")  # 18 x 0.010215 + 2 x 0.002554
    # net = 0.188978 + 0.08 + 0.15 - 1.2825 - (-0.125)
    assert t["net"] == Decimal("-0.738522")
