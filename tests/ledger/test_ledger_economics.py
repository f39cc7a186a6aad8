"""Economics building blocks: hashprice, heat value, tariffs (fixed, time-of-use, CSV,
Energy-Charts feed over real HTTP), grid services, break-even, payouts, money, the
[ledger] config and clock-aligned intervals.

Data slices copied into this file, with their origin:
- Belgian day-ahead prices of 2024-04-21, 10:00-16:00 Brussels time (EUR/MWh), from
  ENTSO-E via ../shared/data/belgium_dayahead_2022_2024_hourly.csv;
- Bitcoin on 2024-04-21: difficulty 86 388 558 925 171.25, close 64 926.64 USD, from
  ../shared/data/btc_daily_2020_2025_price_difficulty_hashrate.csv.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import simkit
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from controller.config.ledger import LedgerSection
from controller.economics.breakeven import marginal_value_per_kwh, site_break_even
from controller.economics.grid_service import DrBaseline, GridServiceTerms
from controller.economics.hashprice import (
    GivenHashprice,
    NetworkTerms,
    expected_sats,
    hashvalue_series,
    network_terms,
)
from controller.economics.heat import HeatValuation
from controller.economics.money import Money, dec, micro
from controller.economics.payouts import read_payouts_csv
from controller.economics.tariffs import (
    DynamicTariffConfig,
    FixedTariff,
    RetailFormula,
    TariffConfig,
    TouTariffConfig,
    build_tariff,
    fetch_energy_charts,
    parse_energy_charts,
    read_price_csv,
)
from controller.errors import InputError
from controller.ledger.accumulate import interval_start

BE_2024_04_21 = [9.28, -35.0, -3.49, -1.86, -1.75, -2.5]  # 10:00..15:00 CEST, EUR/MWh
BE_START_S = 1713686400  # 2024-04-21T08:00:00Z = 10:00 CEST


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# -- hashprice ------------------------------------------------------------------------------


def test_expected_sats_is_the_issue_formula() -> None:
    d = Decimal("86388558925171.25")
    # D x 2^32 hashes find one block on average: the whole reward
    assert expected_sats(int(d * 4) * 2**30, d, 315_000_000) == 315_000_000
    assert expected_sats(10**12, d, 312_500_000 + 3_000_000) == \
        Fraction(10**12 * 315_500_000) / (Fraction(d) * 2**32)


def test_network_terms_agree_with_the_trace_builder() -> None:
    eur = Decimal("64926.64") * Decimal("0.93")
    t = network_terms(Decimal("86388558925171.25"), Decimal("3.125"), Decimal("0.03"), eur)
    ours = t.hashprice_per_th_day()
    hv = float(hashvalue_series(8.638855892517125e13, 3.125 + 0.03)[()])
    assert abs(float(t.hashvalue_sats_per_th_day()) - hv) < 1e-9
    assert abs(float(ours) - hv * float(eur) / 1e8) < 1e-6
    assert Decimal("0.04") < ours < Decimal("0.05")  # the post-halving hashprice, EUR
    with pytest.raises(ValueError, match="whole sats"):
        network_terms(1e14, Decimal("3.125"), Decimal("0.000000001"), eur)


def test_given_hashprice_and_pool_fee() -> None:
    g = GivenHashprice(Decimal("0.0432"), Decimal("60000"), Decimal("2"))
    # 1 TH/s for a day: 0.0432 x 0.98 EUR = 0.042336 EUR = 70.56 sats at 60 000 EUR/BTC
    assert g.value_per_th_s() * 86_400 == Fraction("0.042336")
    assert g.sats_per_th_s() * 86_400 == Fraction("70.56")
    n = NetworkTerms(Decimal("1e14"), 312_500_000, Decimal("60000"), Decimal("2"))
    assert n.value_per_th_s() == n.sats_per_th_s() * 60_000 / 100_000_000
    assert "fee=2" in n.key() and n.key() != g.key()


# -- heat -------------------------------------------------------------------------------------


def test_heat_value_per_backup_kind() -> None:
    gas = HeatValuation("gas_boiler", Decimal("0.9"), Decimal("0.09"))
    assert gas.cost_per_kwh_heat(Decimal("0.40")) == Decimal("0.1")
    hp = HeatValuation("heat_pump", Decimal("3.5"), None)  # at the interval's import price
    assert hp.cost_per_kwh_heat(Decimal("0.35")) == Decimal("0.1")
    assert hp.cost_per_kwh_heat(Decimal("-0.07")) == Decimal("-0.02")
    res = HeatValuation.from_config("resistive", 1.0, Decimal("0.30"))
    assert res.cost_per_kwh_heat(Decimal("0.1")) == Decimal("0.30")
    with pytest.raises(ValueError, match="gas boiler needs a fuel price"):
        HeatValuation("gas_boiler", Decimal("0.9"), None)


# -- tariffs ----------------------------------------------------------------------------------


def test_time_of_use_with_weekdays_wrap_and_dst() -> None:
    cfg = TypeAdapter(TariffConfig).validate_python({
        "kind": "tou", "import_price_per_kwh": "0.30", "export_price_per_kwh": "0.07",
        "periods": [
            {"window": "22:00-06:00", "days": ["mon", "tue", "wed", "thu", "fri"],
             "import_price_per_kwh": "0.18"},
            {"window": "17:00-20:00", "import_price_per_kwh": "0.42",
             "export_price_per_kwh": "0.12"},
        ]})
    assert isinstance(cfg, TouTariffConfig)
    t = build_tariff(cfg, "Europe/Brussels")
    # Friday 23:00 and Saturday 03:00 local belong to Friday's night window ...
    assert t.prices_at(ts("2024-03-29T23:00:00+01:00")).import_per_kwh == Decimal("0.18")
    assert t.prices_at(ts("2024-03-30T03:00:00+01:00")).import_per_kwh == Decimal("0.18")
    # ... Saturday 23:00 and Sunday 03:00 do not (no weekend night rate)
    assert t.prices_at(ts("2024-03-30T23:00:00+01:00")).import_per_kwh == Decimal("0.30")
    # Sunday 2024-03-31 is the DST change: 17:30 local is 15:30 UTC
    p = t.prices_at(ts("2024-03-31T15:30:00+00:00"))
    assert p == (Decimal("0.42"), Decimal("0.12"))
    assert t.prices_at(ts("2024-03-31T16:30:00+00:00")).import_per_kwh == Decimal("0.42")
    assert t.prices_at(ts("2024-03-31T18:30:00+00:00")).import_per_kwh == Decimal("0.30")


def test_tariff_config_is_backwards_compatible_and_validated(tmp_path: Path) -> None:
    ta = TypeAdapter(TariffConfig)
    fixed = ta.validate_python({"import_price_per_kwh": "0.32", "export_price_per_kwh": "-0.01"})
    assert build_tariff(fixed).prices_at(0) == (Decimal("0.32"), Decimal("-0.01"))
    assert build_tariff(simkit.site().tariffs).prices_at(0) == (Decimal("0.32"), Decimal("0.05"))
    with pytest.raises(ValidationError) as err:
        ta.validate_python({"kind": "tou", "import_price_per_kwh": 1, "export_price_per_kwh": 0,
                            "periods": [{"window": "25:00-06:00", "import_price_per_kwh": 1}]})
    assert "periods.0.window" in str(err.value).replace("\n", " ").replace(" ", "")
    with pytest.raises(ValidationError, match="exactly one of 'csv' and 'feed'"):
        ta.validate_python({"kind": "dynamic", "csv": "x.csv", "feed": "energy-charts"})
    csv_path = tmp_path / "spot.csv"
    csv_path.write_text("time,spot_price\n2024-04-21T08:00:00Z,0.00928\n"
                        "2024-04-21T09:00:00Z,-0.035\n")
    dyn = ta.validate_python({"kind": "dynamic", "csv": str(csv_path),
                              "import_adder_per_kwh": "0.15", "import_factor": "1.06"})
    assert isinstance(dyn, DynamicTariffConfig)
    t = build_tariff(dyn)
    # negative spot stays negative at export; import = (spot + 0.15) x 1.06
    assert t.prices_at(BE_START_S + 3600 + 5) == (Decimal("0.12190"), Decimal("-0.035"))


def test_price_csv_errors_name_rows_and_columns(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "p.csv"
    f.write_text("time,import_price,export_price\n"
                 "2024-04-21T08:00:00Z,0.3,0.05\n"
                 "2024-04-21T09:00:00,0.3,0.05\n"
                 "2024-04-21T10:00:00Z,abc,0.05\n"
                 "2024-04-21T07:30:00Z,0.3,0.05\n"
                 "2024-04-21T11:00:00Z,0.3\n")
    with caplog.at_level(logging.WARNING), pytest.raises(InputError) as err:
        read_price_csv(f)
    msg = str(err.value)
    assert "row 3, column time: time '2024-04-21T09:00:00' has no UTC offset" in msg
    assert "row 4, column import_price: not a number: 'abc'" in msg
    assert "row 5, column time: 2024-04-21T07:30:00Z is not after the previous row" in msg
    assert "row 6: has 2 fields, the header has 3" in msg
    assert "refused price input" in caplog.text
    f.write_text("time,import_price,export_price\n" + "".join(
        f"2024-04-21T{h:02d}:00:00Z,0.3,0.05\n" for h in (8, 9, 10, 12, 13)))
    with pytest.raises(InputError, match="rows are missing"):
        read_price_csv(f)
    f.write_text("time,price\n2024-04-21T08:00:00Z,1\n")
    with pytest.raises(InputError, match="needs 'import_price' and 'export_price'"):
        read_price_csv(f)
    f.write_text("time,import_price,export_price\n2024-04-21T08:00:00Z,0.3,0.05\n"
                 "2024-04-21T08:15:00Z,-0.1,-0.2\n")
    t = read_price_csv(f)
    with pytest.raises(LookupError, match="no price for 2024-04-21T08:30:00Z"):
        t.prices_at(BE_START_S + 1800)
    assert t.prices_at(BE_START_S + 1799).export_per_kwh == Decimal("-0.2")


def _energy_charts_payload() -> dict[str, Any]:
    return {"license_info": "CC BY 4.0 (test slice)", "unit": "EUR / MWh", "deprecated": False,
            "unix_seconds": [BE_START_S + 3600 * i for i in range(len(BE_2024_04_21))],
            "price": BE_2024_04_21}


def test_energy_charts_answer_is_parsed_and_checked() -> None:
    t = parse_energy_charts(_energy_charts_payload(), RetailFormula(Decimal("0.12")))
    assert len(t) == 6
    assert t.prices_at(BE_START_S + 3600) == (Decimal("0.085"), Decimal("-0.035"))
    bad = _energy_charts_payload() | {"unit": "EUR / kWh"}
    with pytest.raises(InputError, match="unit: expected 'EUR / MWh'"):
        parse_energy_charts(bad)
    bad = _energy_charts_payload()
    bad["price"] = [*BE_2024_04_21[:2], None, *BE_2024_04_21[3:]]
    with pytest.raises(InputError, match=r"price\[2\]: not a number: None"):
        parse_energy_charts(bad)
    bad = _energy_charts_payload()
    bad["price"] = BE_2024_04_21[:3]
    with pytest.raises(InputError, match="has 3 values for 6 times"):
        parse_energy_charts(bad)


class _FeedHandler(BaseHTTPRequestHandler):
    status = 200
    seen: list[dict[str, list[str]]] = []  # noqa: RUF012

    def do_GET(self) -> None:
        url = urlparse(self.path)
        type(self).seen.append(parse_qs(url.query))
        body = json.dumps(_energy_charts_payload()).encode() if url.path == "/price" else b"{}"
        self.send_response(self.status if url.path == "/price" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
    th = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)  # fast shutdown
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_energy_charts_feed_over_http(feed: str) -> None:
    _FeedHandler.seen.clear()
    t = fetch_energy_charts(feed, "BE", "2024-04-21", "2024-04-22")
    assert _FeedHandler.seen[-1] == {"bzn": ["BE"], "start": ["2024-04-21"],
                                     "end": ["2024-04-22"]}
    assert t.prices_at(BE_START_S + 5 * 3600 + 10).import_per_kwh == Decimal("-0.0025")
    _FeedHandler.status = 503
    try:
        with pytest.raises(InputError, match="HTTP 503"):
            fetch_energy_charts(feed, "BE", "2024-04-21", "2024-04-22")
    finally:
        _FeedHandler.status = 200
    with pytest.raises(InputError, match="HTTP 404"):
        fetch_energy_charts(feed + "/nothing-here", "BE", "2024-04-21", "2024-04-22")


def test_fixed_tariff() -> None:
    assert FixedTariff(Decimal("0.3"), Decimal("-0.01")).prices_at(1e9).export_per_kwh < 0


# -- grid services, break-even ------------------------------------------------------------------


def test_grid_service_windows_and_dr_baseline() -> None:
    from controller.config.ledger import GridServiceSection

    gs = GridServiceTerms.from_config(
        GridServiceSection(windows=["22:00-02:00", "17:00-24:00"]), 3000, "Europe/Brussels")
    assert gs.offered_kw == Decimal(3)
    assert gs.available_at(ts("2024-01-10T23:30:00+01:00"))
    assert gs.available_at(ts("2024-01-11T01:59:00+01:00"))
    assert not gs.available_at(ts("2024-01-11T02:00:00+01:00"))
    assert gs.available_at(ts("2024-01-11T17:00:00+01:00"))
    b = DrBaseline(900)
    t0 = 1_700_000_000 - 1_700_000_000 % 60
    for k in range(20):  # 20 min at 1000 W, then 5 min at 1600 W
        assert b.update(t0 + 60 * k, Decimal(60), Decimal(1000 if k < 15 else 1600), "") == \
            (Decimal(0), Decimal(0))
    # baseline over the 15 min before = (10 x 1000 + 5 x 1600) / 15 = 1200 W
    cut, _ = b.update(t0 + 1200, Decimal(60), Decimal(200), "reduce")
    assert b.baseline_w == Decimal(1200) and cut == Decimal(60_000)
    again = DrBaseline.from_state(900, json.loads(json.dumps(b.state())))
    assert again.update(t0 + 1260, Decimal(60), Decimal(0), "reduce") == (Decimal(72_000), 0)
    for k in range(5):  # after the event: event minutes are not part of later baselines
        again.update(t0 + 1320 + 60 * k, Decimal(60), Decimal(2000), "")
    _, up = again.update(t0 + 1620, Decimal(60), Decimal(3000), "absorb")
    # window [t0+720, t0+1620): 3 min at 1000 + 5 at 1600 + 5 at 2000 (event excluded)
    assert again.baseline_w == micro(Decimal(3 * 1000 + 5 * 1600 + 5 * 2000) / 13)
    assert up == (Decimal(3000) - again.baseline_w) * 60


def test_site_break_even() -> None:
    cfg = simkit.site()
    terms = GivenHashprice(Decimal("0.04388"), Decimal("85000"), Decimal("2"))
    be = site_break_even(cfg, terms)
    s9 = be["s9"]  # best point 78 J/TH; its heat goes to the tank (95 %) at 0.11 / 0.9
    btc = Fraction(3_600_000, 78) * Fraction("0.04388") * Fraction("0.98") / 86_400
    assert s9.btc_per_kwh == micro(btc)
    assert s9.heat_per_kwh == micro(Fraction("0.95") * Fraction("0.11") / Fraction("0.9"))
    assert be["bitaxe-1"].btc_per_kwh > s9.btc_per_kwh  # 15.5 J/TH mines 5x more per kWh
    no_heat = site_break_even(cfg, terms, heat_needed=False)
    assert no_heat["s9"].total_per_kwh == s9.btc_per_kwh
    with pytest.raises(ValueError):
        marginal_value_per_kwh(0, terms)


# -- payouts, money ---------------------------------------------------------------------------


def test_payout_csv(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("time,amount_sats,reference,note\n"
                 "2024-04-22T02:00:00Z,715,a1,hello\n"
                 "2024-04-23T02:00:00+02:00,702,,\n")
    p = read_payouts_csv(f)
    assert [(x.sats, x.reference) for x in p] == [(715, "a1"),
                                                  (702, "2024-04-23T02:00:00+02:00/702")]
    assert p[1].time_s == ts("2024-04-23T00:00:00Z")
    f.write_text("time,amount_btc,amount_sats\n2024-04-22T02:00:00Z,1,1\n")
    with pytest.raises(InputError, match="exactly one of 'amount_sats' and 'amount_btc'"):
        read_payouts_csv(f)
    f.write_text("time,amount_btc,reference,period_start,period_end\n"
                 "2024-04-22T02:00:00Z,0.000000001,x,,\n"
                 "2024-04-22T02:00:00Z,-1,y,,\n"
                 "2024-04-22T02:00:00Z,0.00001,z,2024-04-22T00:00:00Z,2024-04-21T00:00:00Z\n"
                 "2024-04-22T02:00:00Z,0.00001,w,2024-04-21T00:00:00Z,\n"
                 "2024-04-22T02:00:00Z,0.00001,v,,\n"
                 "2024-04-22T02:00:00Z,0.00001,v,,\n")
    with pytest.raises(InputError) as err:
        read_payouts_csv(f)
    msg = str(err.value)
    assert "row 2, column amount_btc: 0.000000001 is not a whole number of sats" in msg
    assert "row 3, column amount_btc: must not be negative" in msg
    assert "row 4, column period_end: must be after period_start" in msg
    assert "row 5, column period_end: give both period_start and period_end" in msg
    assert "row 7, column reference: 'v' already on row 6" in msg


def test_money_is_exact_and_keeps_its_currency() -> None:
    a = Money(Decimal("0.10"), "EUR") + Money(Decimal("0.20"), "EUR")
    assert a == Money(Decimal("0.30"), "EUR") and str(-a) == "-0.30 EUR"
    with pytest.raises(ValueError, match="cannot combine EUR and CHF"):
        _ = a - Money(Decimal(1), "CHF")
    assert dec(0.1) == Decimal("0.1") and dec(1e-7) == Decimal("1E-7")
    with pytest.raises(ValueError):
        dec(float("nan"))
    assert micro(Decimal("0.0000005")) == Decimal("0") and micro(Decimal("0.0000015")) == \
        Decimal("0.000002")
    assert micro(Fraction(1, 3)) == Decimal("0.333333")


@given(st.lists(st.decimals(min_value=-1000, max_value=1000, places=6,
                            allow_nan=False, allow_infinity=False), max_size=50))
def test_micro_rounding_of_sums_is_exact(values: list[Decimal]) -> None:
    assert micro(sum(values, Decimal(0))) == sum(values, Decimal(0))


# -- config, alignment ------------------------------------------------------------------------


def test_ledger_section_validation() -> None:
    sec = LedgerSection()
    assert sec.url == "sqlite:////var/lib/hearth/ledger.sqlite3" and sec.interval_s == 900
    with pytest.raises(ValidationError, match="must divide 60"):
        LedgerSection(interval_min=7)
    with pytest.raises(ValidationError, match=r"telemetry_step_s \(7\) must divide"):
        LedgerSection(telemetry_step_s=7)
    with pytest.raises(ValidationError, match="unsupported database URL scheme 'mysql'"):
        LedgerSection(database_url="mysql://h/db")
    with pytest.raises(ValidationError, match="absolute path"):
        LedgerSection(data_dir="data")
    with pytest.raises(InputError) as err:
        simkit.site(ledger={"interval_min": 45, "grid_service": {"windows": ["8-12"]},
                            "retention": 3})
    msg = str(err.value)
    assert "ledger.interval_min: must divide 60" in msg
    assert "ledger.grid_service.windows: window '8-12' is not 'HH:MM-HH:MM'" in msg
    assert "ledger.retention: unknown key" in msg


def test_intervals_align_to_the_local_clock() -> None:
    utc = ZoneInfo("UTC")
    assert interval_start(ts("2024-05-06T10:14:59Z"), 900, utc) == ts("2024-05-06T10:00:00Z")
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: hours start at :30 UTC
    assert interval_start(ts("2024-05-06T10:14:00Z"), 3600, kolkata) == \
        ts("2024-05-06T09:30:00Z")
    assert interval_start(ts("2024-05-06T10:14:00Z"), 900, kolkata) == ts("2024-05-06T10:00:00Z")
    nepal = ZoneInfo("Asia/Kathmandu")  # UTC+05:45
    assert interval_start(ts("2024-05-06T10:14:00Z"), 600, nepal) == ts("2024-05-06T10:05:00Z")
    bru = ZoneInfo("Europe/Brussels")  # the repeated hour of 2024-10-27 gives two intervals
    first = interval_start(ts("2024-10-27T02:30:00+02:00"), 3600, bru)
    second = interval_start(ts("2024-10-27T02:30:00+01:00"), 3600, bru)
    assert second - first == 3600 and datetime.fromtimestamp(first, UTC).hour == 0
