"""`hearth trace build`: real-data slices in, a valid trace out, energy and hours intact."""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from controller import cli
from controller.config.load import load_site
from controller.config.models import SiteConfig
from controller.errors import InputError
from controller.trace.build import (
    BuildOptions,
    Series,
    align_to_year,
    block_subsidy_btc,
    build_trace,
    interval_mean,
    read_btc,
    read_prices,
    render_csv,
    write_trace_csv,
)
from controller.trace.pvmodel import solar_position
from controller.trace.reader import read_trace

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "trace_sources"
SITE = ROOT / "hil" / "sites" / "house-10kwp.toml"
IRRADIANCE = DATA / "dwd_2015_15min_irradiance_slices.csv"
TEMPERATURE = DATA / "dwd_2015_hourly_temperature_slices.csv"
LOAD = DATA / "vpplib_households_2017_15min_w_slices.csv"
HEAT = DATA / "danish_heat_meter_660_slices.csv"
PRICES = DATA / "belgium_dayahead_slices.csv"
BTC = DATA / "btc_daily_slices.csv"


@pytest.fixture(scope="module")
def cfg() -> SiteConfig:
    return load_site(SITE)


def opts(**changes: object) -> BuildOptions:
    base = BuildOptions(
        start=date(2015, 4, 20),
        days=2,
        step_s=60,
        irradiance=IRRADIANCE,
        load=LOAD,
        load_column="household_3_w",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


FULL = {"temperature": TEMPERATURE, "heat": HEAT, "prices": PRICES, "btc": BTC}


def epoch(text: str) -> int:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_days(cfg: SiteConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "two-days.csv"
    write_trace_csv(out, build_trace(cfg, opts(**FULL)))
    return out


def test_two_day_build_passes_the_reader(cfg: SiteConfig, two_days: Path) -> None:
    tr = read_trace(two_days, cfg)
    assert len(tr) == 2 * 1440 and tr.step_s == 60
    assert tr.times_iso()[0] == "2015-04-20T00:00:00Z"
    assert tr.columns == {
        "time", "pv_w", "load_w", "heat_demand_w", "outdoor_c",
        "import_price", "export_price", "hashvalue_sats_per_th_day", "btc_price",
    }  # fmt: skip
    for col in (tr.outdoor_c, tr.import_price, tr.export_price, tr.hashvalue_sats_per_th_day,
                tr.btc_price):
        assert not np.isnan(col).any()
    header = two_days.read_text().splitlines()[0]
    assert header == ("time,pv_w,load_w,heat_demand_w,outdoor_c,import_price,export_price,"
                      "hashvalue_sats_per_th_day,btc_price")


def test_pv_is_zero_at_night_and_high_at_noon(cfg: SiteConfig, two_days: Path) -> None:
    tr = read_trace(two_days, cfg)
    zenith, _ = solar_position(tr.time_s + 30, cfg.site.latitude_deg, cfg.site.longitude_deg)
    # Night: the sun below civil twilight. In twilight the sky still gives a few W/m²
    # (measured, and smeared by interpolating 15-minute samples), so PV may trickle there.
    night = zenith > 96
    assert np.all(tr.pv_w[night] == 0)
    assert night.sum() > 2 * 500  # a spring night is long
    assert np.all(tr.pv_w[zenith > 90] < 0.01 * cfg.pv.peak_w)
    assert tr.pv_w.max() > 0.6 * cfg.pv.peak_w  # 2015-04-20/21 were clear days
    noon = tr.pv_w[np.argmin(zenith)]
    assert noon > 0.5 * cfg.pv.peak_w


@pytest.mark.parametrize("step_s", [60, 900, 3600])
def test_held_load_keeps_the_source_energy(cfg: SiteConfig, step_s: int) -> None:
    built = build_trace(cfg, opts(step_s=step_s))
    source = [
        float(r["household_3_w"])
        for r in rows(LOAD)
        if "2017-04-20" <= r["time"][:10] <= "2017-04-21"
    ]
    assert len(source) == 192
    source_kwh = sum(source) * 900 / 3.6e6
    built_kwh = float(built.columns["load_w"].sum()) * step_s / 3.6e6
    assert built_kwh == pytest.approx(source_kwh, abs=1e-9)
    # Holding: at a 60 s step every 15-minute value repeats 15 times.
    if step_s == 60:
        assert built.columns["load_w"][:15].tolist() == [source[0]] * 15


def test_heat_meter_hours_end_at_their_stamp(cfg: SiteConfig, two_days: Path) -> None:
    tr = read_trace(two_days, cfg)
    meter = {r["time_utc"]: r["heat_kwh_in_hour"] for r in rows(HEAT)}
    # Output 00:00-01:00 on Apr 20 is the meter hour ending 2020-04-20T01:00Z.
    assert tr.heat_demand_w[0] == pytest.approx(float(meter["2020-04-20T01:00:00Z"]) * 1000)
    window = [
        float(v) for t, v in meter.items() if "2020-04-20T01:00:00Z" <= t <= "2020-04-22T00:00:00Z"
    ]
    assert len(window) == 48
    assert tr.energy_kwh(tr.heat_demand_w) == pytest.approx(sum(window), abs=0.01)


def price_at(local: str, occurrence: int = 0) -> float:
    """EUR/kWh of the n-th row with this local Brussels time in the price slice."""
    matches = [float(r["price_eur_per_mwh"]) for r in rows(PRICES) if r["time"] == local]
    return matches[occurrence] / 1000


def import_at(cfg: SiteConfig, start: date, utc: str) -> float:
    built = build_trace(cfg, opts(start=start, prices=PRICES))
    i = int(np.flatnonzero(built.time_s == epoch(utc))[0])
    block = built.columns["import_price"][i : i + 60]
    assert np.all(block == block[0])  # constant within the hour
    return float(block[0])


@pytest.mark.parametrize(
    ("utc", "local", "occurrence"),
    [
        ("2023-10-28T22:00:00Z", "2023-10-29 00:00", 0),  # CEST
        ("2023-10-28T23:00:00Z", "2023-10-29 01:00", 0),
        ("2023-10-29T00:00:00Z", "2023-10-29 02:00", 0),  # first 02:00, still CEST
        ("2023-10-29T01:00:00Z", "2023-10-29 02:00", 1),  # second 02:00, CET
        ("2023-10-29T02:00:00Z", "2023-10-29 03:00", 0),
    ],
)
def test_prices_around_the_autumn_dst_change(
    cfg: SiteConfig, utc: str, local: str, occurrence: int
) -> None:
    expected = price_at(local, occurrence) + 0.15
    assert import_at(cfg, date(2023, 10, 28), utc) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        ("2023-03-25T23:00:00Z", "2023-03-26 00:00"),  # CET
        ("2023-03-26T00:00:00Z", "2023-03-26 01:00"),
        ("2023-03-26T01:00:00Z", "2023-03-26 03:00"),  # 02:00 does not exist; CEST from here
        ("2023-03-26T02:00:00Z", "2023-03-26 04:00"),
    ],
)
def test_prices_around_the_spring_dst_change(cfg: SiteConfig, utc: str, local: str) -> None:
    expected = price_at(local) + 0.15
    assert import_at(cfg, date(2023, 3, 25), utc) == pytest.approx(expected, abs=1e-12)


def test_price_series_is_continuous_in_utc() -> None:
    spot = read_prices(PRICES, "Europe/Brussels")
    assert spot.step_s == 3600
    t = spot.times_s[~np.isnan(spot.values)]
    in_autumn = (t >= epoch("2023-10-28T00:00:00Z")) & (t < epoch("2023-10-30T00:00:00Z"))
    assert np.all(np.diff(t[in_autumn]) == 3600) and in_autumn.sum() == 48


def test_export_factor_and_markup(cfg: SiteConfig) -> None:
    built = build_trace(
        cfg, opts(prices=PRICES, import_markup_per_kwh=0.2, export_factor=0.5, step_s=3600)
    )
    imp, exp = built.columns["import_price"], built.columns["export_price"]
    assert np.allclose(imp - 0.2, exp / 0.5)
    assert (exp < 0).any()  # April 2024 middays had negative Belgian prices


def test_hashprice_follows_the_halving() -> None:
    assert block_subsidy_btc(date(2024, 4, 19)) == 6.25
    assert block_subsidy_btc(date(2024, 4, 20)) == 3.125
    assert block_subsidy_btc(date(2020, 5, 10)) == 12.5
    hv, price = read_btc(BTC, usd_to_currency=0.92, fees_btc=0.03)
    by_day = dict(zip(hv.times_s.tolist(), hv.values.tolist(), strict=True))
    price_by_day = dict(zip(price.times_s.tolist(), price.values.tolist(), strict=True))
    raw = {r["date"]: r for r in rows(BTC)}
    for day, subsidy in (("2024-04-19", 6.25), ("2024-04-20", 3.125)):
        r = raw[day]
        # Independently: 86400e12 / (D x 2^32) blocks a day, each (subsidy + fees) x 1e8 sats.
        expected = 86_400e12 / (float(r["difficulty"]) * 2**32) * (subsidy + 0.03) * 1e8
        assert by_day[epoch(day)] == pytest.approx(expected, rel=1e-12)
        assert price_by_day[epoch(day)] == pytest.approx(float(r["close_usd"]) * 0.92, rel=1e-12)
    # Sats per TH/s per day: the halving halves the subsidy at equal difficulty.
    assert 0.45 < by_day[epoch("2024-04-20")] / by_day[epoch("2024-04-19")] < 0.56


def test_align_to_year_substitutes_the_year() -> None:
    t = np.array([epoch("2016-02-29T12:00:00Z"), epoch("2016-03-01T00:00:30Z")])
    assert align_to_year(t, 2015).tolist() == [
        epoch("2015-02-28T12:00:00Z"),
        epoch("2015-03-01T00:00:30Z"),
    ]
    assert align_to_year(t, 2020)[0] == epoch("2020-02-29T12:00:00Z")
    assert align_to_year(np.array([epoch("2015-12-31T23:59:00Z")]), 2023)[0] == epoch(
        "2023-12-31T23:59:00Z"
    )


def test_interval_mean_holds_and_averages() -> None:
    s = Series("x", "v", 0, 900, np.array([100.0, 200.0, np.nan, 400.0]), "interval")
    fine, ok = interval_mean(s, np.array([0, 60, 840, 900], dtype=np.int64), 60)
    assert fine.tolist() == [100, 100, 100, 200] and ok.all()
    coarse, ok = interval_mean(s, np.array([0, 450], dtype=np.int64), 900)
    assert coarse.tolist() == [100, 150] and ok.all()  # half of each of two values
    _, ok = interval_mean(s, np.array([900, 1800, 2700, 3600], dtype=np.int64), 900)
    assert ok.tolist() == [True, False, True, False]  # a gap, and beyond the end


def test_heat_from_temperature_without_a_meter(cfg: SiteConfig) -> None:
    built = build_trace(cfg, opts(temperature=TEMPERATURE, building_ua_w_per_k=250, dhw_w=100))
    t_out = built.columns["outdoor_c"]
    expected = 250 * np.maximum(15 - t_out, 0) + 100
    assert np.allclose(built.columns["heat_demand_w"], expected)
    assert built.columns["heat_demand_w"].max() > 1000  # April nights are cold


def test_without_optional_sources_the_columns_are_left_to_the_config(cfg: SiteConfig) -> None:
    built = build_trace(cfg, opts(days=1, step_s=900))
    assert set(built.columns) == {"pv_w", "load_w", "heat_demand_w"}
    assert np.all(built.columns["heat_demand_w"] == 150)
    assert render_csv(built).splitlines()[0] == "time,pv_w,load_w,heat_demand_w"


def test_the_dwd_dni_column_is_recognised_as_horizontal_beam(cfg: SiteConfig) -> None:
    auto = build_trace(cfg, opts(days=1))
    assert any("beam on the horizontal" in n for n in auto.notes)
    as_is = build_trace(cfg, opts(days=1, irradiance_beam="dni"))
    # Read as DNI, horizontal beam would under-count a tilted array's energy.
    assert as_is.columns["pv_w"].sum() < 0.95 * auto.columns["pv_w"].sum()


# ------------------------------------------------------------------ errors


def test_a_window_without_data_names_the_file(cfg: SiteConfig) -> None:
    with pytest.raises(InputError) as err:
        build_trace(cfg, opts(start=date(2015, 6, 1)))
    assert err.value.source == str(IRRADIANCE)
    assert "no ghi data for 2015-06-01T00:00:30Z" in err.value.problems[0].reason


def test_a_price_year_without_the_window_says_which_option(cfg: SiteConfig) -> None:
    with pytest.raises(InputError) as err:
        build_trace(cfg, opts(prices=PRICES, prices_year=2023))
    assert err.value.source == str(PRICES)
    assert "--prices-year" in err.value.problems[0].reason


def test_bad_source_cells_name_file_row_and_column(cfg: SiteConfig, tmp_path: Path) -> None:
    bad = tmp_path / "load.csv"
    lines = LOAD.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",lots"
    lines[5] = lines[5].rsplit(",", 1)[0] + ",-3"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        build_trace(cfg, opts(load=bad))
    assert err.value.source == str(bad)
    assert [(p.where, p.reason) for p in err.value.problems] == [
        ("row 3, column household_3_w", "not a number: 'lots'"),
        ("row 6, column household_3_w", "must not be negative (is -3)"),
    ]


def test_load_column_must_be_chosen_when_ambiguous(cfg: SiteConfig) -> None:
    with pytest.raises(InputError, match="--load-column: household_2_w, household_3_w"):
        build_trace(cfg, opts(load_column=None))


@pytest.mark.parametrize(
    ("stamps", "reason"),
    [
        (["2023-03-26 01:00", "2023-03-26 02:00"], "does not exist in Europe/Brussels"),
        (["2023-05-01 01:00", "2023-05-01 01:00"], "repeats the previous row"),
        (["2023-05-01 01:00", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_bad_price_times(tmp_path: Path, stamps: list[str], reason: str) -> None:
    f = tmp_path / "prices.csv"
    f.write_text("time,price_eur_per_mwh\n" + "".join(f"{s},50\n" for s in stamps))
    with pytest.raises(InputError) as err:
        read_prices(f, "Europe/Brussels")
    assert err.value.problems[0].where == "row 3, column time"
    assert reason in err.value.problems[0].reason


def test_conflicting_and_invalid_options(cfg: SiteConfig) -> None:
    with pytest.raises(InputError) as err:
        build_trace(cfg, opts(heat=HEAT, dhw_w=100.0, load_scale=-1.0))
    assert [p.where for p in err.value.problems] == ["--dhw-w", "--load-scale"]
    with pytest.raises(InputError, match="--step-s"):
        build_trace(cfg, opts(step_s=7))


def test_a_non_eur_site_needs_exchange_rates(cfg: SiteConfig) -> None:
    chf = cfg.model_copy(update={"site": cfg.site.model_copy(update={"currency": "CHF"})})
    with pytest.raises(InputError) as err:
        build_trace(chf, opts(prices=PRICES, btc=BTC))
    assert [p.where for p in err.value.problems] == ["--eur-to-currency", "--usd-to-currency"]


# ------------------------------------------------------------------ output and CLI


def test_gz_output_is_reproducible(cfg: SiteConfig, tmp_path: Path) -> None:
    built = build_trace(cfg, opts(days=1, step_s=900, **FULL))
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    write_trace_csv(a, built)
    write_trace_csv(b, built)
    assert a.read_bytes() == b.read_bytes()
    assert len(read_trace(a, cfg)) == 96


def test_cli_build_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.csv"
    argv = [
        "trace", "build", "--config", str(SITE), "--start", "2015-04-20", "--days", "2",
        "--step-s", "300", "--irradiance", str(IRRADIANCE), "--temperature", str(TEMPERATURE),
        "--load", str(LOAD), "--load-column", "household_3_w", "--heat", str(HEAT),
        "--prices", str(PRICES), "--btc", str(BTC), "--out", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    assert cli.main(["trace", "check", str(out), "--config", str(SITE)]) == 0
    report = capsys.readouterr().out
    assert "576 rows, step 300 s" in report
    assert "2015-04-20T00:00:00Z .. 2015-04-22T00:00:00Z" in report
    assert "kWh" in report


def test_cli_reports_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("time,pv_w\n2015-01-01T00:00:00Z,1\n2015-01-01T00:01:00Z,1\n")
    assert cli.main(["trace", "check", str(bad), "--config", str(SITE)]) == 2
    assert "header: required column 'load_w' is missing" in capsys.readouterr().err


def test_bad_btc_rows_are_named_with_their_column_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "btc.csv"
    bad.write_text("date,close_usd,difficulty,fees_btc\n"
                   "2023-01-01,16600,35364065900457.1,0.02\n"
                   "2023-01-02,0,35364065900457.1,0.02\n"
                   "2023-01-03,16700,abc,0.02\n"
                   "2023-01-04,16700,35364065900457.1,-0.1\n")
    with pytest.raises(InputError) as err:
        read_btc(bad, usd_to_currency=0.92, fees_btc=0.03)
    text = str(err.value)
    assert "row 3, column close_usd" in text and "must be positive" in text
    assert "row 4, column difficulty" in text
    assert "row 5, column fees_btc" in text and "negative" in text


def test_a_fees_column_replaces_the_flat_assumption(tmp_path: Path) -> None:
    f = tmp_path / "btc.csv"
    f.write_text("date,close_usd,difficulty,fees_btc\n"
                 "2023-01-01,16600,35364065900457.1,0.25\n"
                 "2023-01-02,16600,35364065900457.1,0.25\n")
    hv, _ = read_btc(f, usd_to_currency=1.0, fees_btc=0.03)
    expected = 86_400e12 / (35364065900457.1 * 2**32) * (6.25 + 0.25) * 1e8
    assert hv.values[0] == pytest.approx(expected, rel=1e-12)
