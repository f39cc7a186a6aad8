"""The trace reader enforces the `hearth sim` CSV contract and says exactly what is wrong."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from controller.config.load import load_site
from controller.config.models import SiteConfig
from controller.errors import InputError
from controller.trace.reader import MAX_PROBLEMS, parse_trace, read_trace

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "hil" / "traces"


@pytest.fixture(scope="module")
def cfg() -> SiteConfig:
    return load_site(ROOT / "hil" / "sites" / "house-10kwp.toml")


def minutes(n: int, start: str = "2015-04-21T00:00:00Z") -> list[str]:
    base = np.datetime64(start.removesuffix("Z"), "s")
    return [f"{base + np.timedelta64(60 * i, 's')}Z" for i in range(n)]


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def simple(n: int = 5) -> str:
    return csv_text("time,pv_w,load_w", [f"{t},{100 * i},{300}" for i, t in enumerate(minutes(n))])


def problems(err: pytest.ExceptionInfo[InputError]) -> list[tuple[str, str]]:
    return [(p.where, p.reason) for p in err.value.problems]


# ------------------------------------------------------------------ shipped traces


def test_reads_the_shipped_spring_day(cfg: SiteConfig) -> None:
    tr = read_trace(TRACES / "house-spring-day.csv", cfg)
    assert len(tr) == 1440 and tr.step_s == 60.0
    assert tr.times_iso()[0] == "2015-04-21T00:00:00Z"
    assert tr.times_iso()[-1] == "2015-04-21T23:59:00Z"
    assert tr.columns >= {"pv_w", "load_w", "heat_demand_w", "import_price",
                          "hashvalue_sats_per_th_day", "btc_price"}
    assert np.all(tr.pv_w >= 0) and tr.pv_w.max() > 5000  # a sunny day
    assert tr.energy_kwh(tr.heat_demand_w) > 10  # and a day that needs heat
    assert not np.isnan(tr.outdoor_c).any() and not np.isnan(tr.btc_price).any()
    assert not np.isnan(tr.hashvalue_sats_per_th_day).any()
    assert np.isnan(tr.dr_limit_w).all()


def test_reads_the_shipped_year_gz(cfg: SiteConfig) -> None:
    tr = read_trace(TRACES / "house-year.csv.gz", cfg)
    assert len(tr) == 365 * 96 and tr.step_s == 900.0
    assert tr.duration_s == 365 * 86400
    assert 8000 < tr.energy_kwh(tr.pv_w) < 11000  # ~950 kWh/kWp near Cologne
    assert (tr.export_price < 0).any()  # real negative-price hours are in there


# ------------------------------------------------------------------ happy paths


def test_defaults_come_from_the_config(cfg: SiteConfig) -> None:
    tr = parse_trace(simple(), cfg)
    assert tr.columns == frozenset({"time", "pv_w", "load_w"})
    assert np.all(tr.heat_demand_w == 0)
    assert np.all(tr.import_price == float(cfg.tariffs.import_price_per_kwh))
    assert np.all(tr.export_price == float(cfg.tariffs.export_price_per_kwh))
    assert np.isnan(tr.outdoor_c).all() and np.isnan(tr.hashprice).all()
    assert np.isnan(tr.hashvalue_sats_per_th_day).all() and np.isnan(tr.btc_price).all()
    assert np.isnan(tr.dr_limit_w).all()
    assert tr.time_s[1] - tr.time_s[0] == 60.0
    assert tr.time_s[0] == 1429574400.0  # 2015-04-21T00:00:00Z


def test_gz_and_plain_read_the_same(cfg: SiteConfig, tmp_path: Path) -> None:
    plain, packed = tmp_path / "t.csv", tmp_path / "t.csv.gz"
    plain.write_text(simple())
    packed.write_bytes(gzip.compress(simple().encode()))
    a, b = read_trace(plain, cfg), read_trace(packed, cfg)
    assert np.array_equal(a.pv_w, b.pv_w) and np.array_equal(a.time_s, b.time_s)
    assert b.source == str(packed)


def test_unknown_columns_are_ignored_and_order_is_free(cfg: SiteConfig) -> None:
    rows = [f"x{i},{300},{t},{i}" for i, t in enumerate(minutes(3))]
    tr = parse_trace(csv_text("note,load_w,time,pv_w", rows), cfg)
    assert list(tr.pv_w) == [0, 1, 2] and list(tr.load_w) == [300] * 3


def test_empty_dr_limit_means_no_cap(cfg: SiteConfig) -> None:
    rows = [f"{t},0,300,{cap}" for t, cap in zip(minutes(3), ["", "1500", " "], strict=True)]
    tr = parse_trace(csv_text("time,pv_w,load_w,dr_limit_w", rows), cfg)
    assert math.isnan(tr.dr_limit_w[0]) and tr.dr_limit_w[1] == 1500
    assert math.isnan(tr.dr_limit_w[2])


def test_offsets_are_honoured_across_a_dst_change(cfg: SiteConfig) -> None:
    """Local time with offsets is fine if it is regular in UTC (spring forward at 01:00Z)."""
    stamps = ["2015-03-29T01:58:00+01:00", "2015-03-29T01:59:00+01:00", "2015-03-29T03:00:00+02:00"]
    tr = parse_trace(csv_text("time,pv_w,load_w", [f"{s},0,1" for s in stamps]), cfg)
    assert tr.step_s == 60 and tr.times_iso()[2] == "2015-03-29T01:00:00Z"


def test_quoted_fields_blank_lines_and_bom(cfg: SiteConfig) -> None:
    t = minutes(3)
    text = f'\ufefftime,"pv_w",load_w\n"{t[0]}",1,2\n\n{t[1]},"3",4\n{t[2]},5,6\n\n'
    tr = parse_trace(text, cfg)
    assert list(tr.pv_w) == [1, 3, 5]


def test_arrays_are_read_only(cfg: SiteConfig) -> None:
    tr = parse_trace(simple(), cfg)
    with pytest.raises(ValueError):
        tr.pv_w[0] = 5.0


# ------------------------------------------------------------------ errors


def test_missing_required_column_names_the_header(cfg: SiteConfig) -> None:
    text = csv_text("time,pv_w", [f"{t},1" for t in minutes(3)])
    with pytest.raises(InputError) as err:
        parse_trace(text, cfg, "x.csv")
    assert problems(err) == [("header", "required column 'load_w' is missing")]
    assert "x.csv: header: required column 'load_w'" in str(err.value)


def test_naive_time_is_an_error_that_says_so(cfg: SiteConfig) -> None:
    text = csv_text("time,pv_w,load_w", ["2015-04-21T00:00:00,0,1", "2015-04-21T00:01:00,0,1"])
    with pytest.raises(InputError) as err:
        parse_trace(text, cfg)
    where, reason = problems(err)[0]
    assert where == "row 2, column time"
    assert "no UTC offset" in reason
    assert [w for w, _ in problems(err)] == ["row 2, column time", "row 3, column time"]


def test_non_monotonic_time_names_the_row(cfg: SiteConfig) -> None:
    t = minutes(5)
    rows = [f"{s},0,1" for s in [t[0], t[1], t[2], t[1], t[4]]]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    found = problems(err)
    assert found[0][0] == "row 5, column time"
    assert "not after the previous row" in found[0][1]


def test_a_gap_names_the_row_and_counts_missing_steps(cfg: SiteConfig) -> None:
    t = minutes(10)
    rows = [f"{s},0,1" for s in [t[0], t[1], t[2], t[5], t[6]]]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    assert problems(err) == [
        (
            "row 5, column time",
            f"time '{t[5]}' follows the previous row by 180 s: 2 step(s) missing",
        )
    ]


def test_irregular_step(cfg: SiteConfig) -> None:
    rows = [
        "2015-04-21T00:00:00Z,0,1",
        "2015-04-21T00:01:00Z,0,1",
        "2015-04-21T00:02:30Z,0,1",
    ]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    [(where, reason)] = problems(err)
    assert where == "row 4, column time" and "the step is 60 s" in reason


def test_step_below_one_second(cfg: SiteConfig) -> None:
    rows = ["2015-04-21T00:00:00.000Z,0,1", "2015-04-21T00:00:00.500Z,0,1"]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    assert problems(err)[0][0] == "row 3, column time"
    assert "at least 1 s" in problems(err)[0][1] or ">= 1 s" in problems(err)[0][1]


def test_negative_pv_names_row_and_column(cfg: SiteConfig) -> None:
    rows = [f"{t},{pv},100" for t, pv in zip(minutes(3), ["5", "-12.5", "0"], strict=True)]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg, "t.csv")
    assert problems(err) == [("row 3, column pv_w", "must not be negative (is -12.5)")]
    assert str(err.value) == "t.csv: row 3, column pv_w: must not be negative (is -12.5)"


def test_negative_prices_and_temperatures_are_fine(cfg: SiteConfig) -> None:
    rows = [f"{t},0,1,-5,-0.02,-0.1" for t in minutes(3)]
    tr = parse_trace(csv_text("time,pv_w,load_w,outdoor_c,import_price,export_price", rows), cfg)
    assert tr.export_price[0] == -0.1 and tr.outdoor_c[0] == -5


def test_non_numbers_and_non_finite_values(cfg: SiteConfig) -> None:
    t = minutes(4)
    rows = [f"{t[0]},0,1", f"{t[1]},0,abc", f"{t[2]},nan,1", f"{t[3]},0,"]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    assert problems(err) == [
        ("row 3, column load_w", "not a number: 'abc'"),
        ("row 4, column pv_w", "not a finite number: 'nan'"),
        ("row 5, column load_w", "empty cell"),
    ]


def test_wrong_number_of_fields_names_the_row(cfg: SiteConfig) -> None:
    t = minutes(3)
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", [f"{t[0]},0,1", f"{t[1]},0", f"{t[2]},0,1"]), cfg)
    assert problems(err) == [("row 3", "has 2 fields, the header has 3")]


def test_many_problems_are_reported_in_file_order_and_capped(cfg: SiteConfig) -> None:
    rows = [f"{t},-1,x" for t in minutes(30)]
    with pytest.raises(InputError) as err:
        parse_trace(csv_text("time,pv_w,load_w", rows), cfg)
    found = problems(err)
    assert len(found) == MAX_PROBLEMS + 1
    assert found[0] == ("row 2, column pv_w", "must not be negative (is -1)")
    assert found[1] == ("row 2, column load_w", "not a number: 'x'")
    assert found[-1][1].startswith("... and ")


def test_too_short_empty_and_unreadable_files(cfg: SiteConfig, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 2 data rows"):
        parse_trace(simple(1), cfg)
    with pytest.raises(InputError, match="empty"):
        parse_trace("\n\n", cfg)
    with pytest.raises(InputError, match="cannot read"):
        read_trace(tmp_path / "nope.csv", cfg)
    bad = tmp_path / "bad.csv.gz"
    bad.write_text(simple())
    with pytest.raises(InputError, match="not gzip"):
        read_trace(bad, cfg)
