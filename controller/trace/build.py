"""Build a trace CSV from raw real-data files (`hearth trace build`).

Why: simulations should run on measured weather, load, heat, prices and Bitcoin economics,
not on smooth synthetic curves — real data has the cloud edges, the cold snaps and the
negative-price hours a controller must get right. The public files we have come from
different places and different years, so this module puts them on one calendar and one
step and writes the `hearth sim` trace contract (DESIGN.md).

Inputs (formats as in the project's shared data; all times UTC unless said otherwise):

- irradiance (required): ``time,dhi,ghi,dni`` W/m², 15-min instantaneous samples, naive UTC
  times. The vpplib DWD file's ``dni`` column is in fact beam on the *horizontal*
  (it equals ghi − dhi to 0.01 W/m²); ``beam="auto"`` detects that and converts it with
  DNI = (ghi − dhi)/cos(zenith). PV power comes from `controller.trace.pvmodel`.
- temperature (optional): ``time,temperature`` °C, hourly samples.
- load (required): ``time,<columns>`` W, 15-min means, each labelled with its start.
- heat (optional): Danish heat meter, ``time_utc,…,heat_kwh_in_hour``, each value the heat
  of the hour *ending* at its stamp (it is the difference of the cumulative meter).
  Without it, heat demand = UA·max(0, base − outdoor) + DHW, or DHW alone without a
  temperature file.
- prices (optional): ``time,price_eur_per_mwh`` hourly day-ahead in a local time zone
  (Brussels by default). The spring DST hour is absent and the autumn hour appears twice;
  the first occurrence is read as summer time, the second as winter time, so the UTC
  series is continuous. import = spot + markup; export = factor × spot.
- btc (optional): daily ``date,close_usd,difficulty`` (and ``fees_btc``, BTC of fees per
  block, if the file has it). Two columns: ``hashvalue_sats_per_th_day`` (gross of pool
  fees) = 86400·10¹²/(difficulty·2³²) · (subsidy + fees) · 10⁸, the subsidy following the
  block-reward schedule on the data's own UTC date (`HALVINGS`: the halving's date, not
  its block height) and the fees a flat ``--fees-per-block-btc`` (0.03 BTC, about the
  2023 average) unless the file has a fees column; and ``btc_price`` = the day's close in
  USD × ``--usd-to-currency`` (one fixed rate, 0.92 by default for a EUR site: the data
  has no FX series; a non-EUR, non-USD site must give it).

Calendar alignment: the output covers ``days`` days from ``start`` 00:00 UTC. Every source
is read in UTC and mapped onto the output calendar by month-day and time of day: each
source uses one year of its own (chosen per source, or automatically — the output year if
the file has it, else the most recent year whose data covers the window) and an output
time stands for the same month, day and UTC time in that year. Feb 29 in the output falls
back to Feb 28 of a non-leap source year; a source's Feb 29 is skipped for a non-leap
output year; a window crossing New Year wraps around inside the source year. Aligning in
UTC keeps the sun where it was measured; local-time effects (the load's breakfast peak,
price hours) shift by the difference between the years' DST dates, which we accept.

Resampling onto the output step: irradiance and temperature are linearly interpolated
(gaps of up to three source steps are bridged); load, heat, prices, hashvalue and BTC
price are piecewise constant and averaged exactly over each output step, so energy is
preserved whether the step is finer or coarser than the source. A window that needs data a source
does not have is an error naming the file and the first missing time.
"""

from __future__ import annotations

import calendar
import gzip
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.economics.hashprice import hashvalue_series
from controller.errors import InputError, Problem
from controller.trace import pvmodel
from controller.trace.reader import (
    KNOWN_COLUMNS,
    MAX_PROBLEMS,
    Problems,
    iso_utc,
    read_text_file,
    split_csv,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DAY_S = 86_400
EPOCH = date(1970, 1, 1)
MAX_GAP_STEPS = 3
"""Sampled series (irradiance, temperature) are interpolated across at most this many steps."""
MIN_COS_ZENITH = math.cos(math.radians(85.0))
"""Floor for cos(zenith) when turning horizontal beam into DNI: avoids blow-ups at sunrise."""
MAX_DNI_W_M2 = 1100.0
MAX_GRID_ROWS = 20_000_000
"""A source spanning more rows than this (a stray date, a wrong step) is refused."""

HALVINGS: tuple[tuple[date, Decimal], ...] = (
    (date(2009, 1, 3), Decimal("50")),
    (date(2012, 11, 28), Decimal("25")),
    (date(2016, 7, 9), Decimal("12.5")),
    (date(2020, 5, 11), Decimal("6.25")),
    (date(2024, 4, 20), Decimal("3.125")),
)
"""Block subsidy from each halving date (UTC) on; the next halving is not in our data."""

# Every contract column but the DR cap (there is no real demand-response data to build from).
OUTPUT_COLUMNS = tuple(c for c in KNOWN_COLUMNS if c != "dr_limit_w")
DECIMALS = {
    "pv_w": 1,
    "load_w": 1,
    "heat_demand_w": 1,
    "outdoor_c": 2,
    "import_price": 5,
    "export_price": 5,
    "hashprice": 5,
    "hashvalue_sats_per_th_day": 4,
    "btc_price": 2,
}

Beam = Literal["auto", "dni", "horizontal"]

DEFAULT_UA_W_PER_K = 200.0
"""Heat loss of a mid-size, moderately insulated house: ~3 kW at 0 °C outside."""
DEFAULT_HEATING_BASE_C = 15.0
"""Outdoor temperature above which the building needs no space heating."""
DEFAULT_DHW_W = 150.0
"""Domestic hot water as a constant mean draw: 3.6 kWh a day, a household of two or three."""
DEFAULT_USD_TO_EUR = 0.92


@dataclass(frozen=True)
class BuildOptions:
    """Everything `hearth trace build` takes besides the site config (see module doc)."""

    start: date
    irradiance: Path
    load: Path
    days: int = 1
    step_s: int = 60
    irradiance_beam: Beam = "auto"
    temperature: Path | None = None
    load_column: str | None = None
    load_scale: float = 1.0
    heat: Path | None = None
    heat_scale: float = 1.0
    heat_year: int | None = None
    building_ua_w_per_k: float | None = None
    heating_base_c: float | None = None
    dhw_w: float | None = None
    prices: Path | None = None
    prices_tz: str = "Europe/Brussels"
    prices_year: int | None = None
    import_markup_per_kwh: float = 0.15
    export_factor: float = 1.0
    eur_to_currency: float | None = None
    btc: Path | None = None
    btc_year: int | None = None
    usd_to_currency: float | None = None
    fees_per_block_btc: float = 0.03


@dataclass(frozen=True)
class BuiltTrace:
    """The output grid, its columns (unrounded) and notes on what each source gave."""

    time_s: IntArray
    step_s: int
    columns: dict[str, FloatArray]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Series:
    """One source column on its own regular UTC grid; NaN marks a missing row.

    ``kind="sample"``: value i is an instantaneous reading at ``start_s + i·step_s``.
    ``kind="interval"``: value i is the mean over ``[start_s + i·step_s, +step_s)``.
    """

    source: str
    name: str
    start_s: int
    step_s: int
    values: FloatArray
    kind: Literal["sample", "interval"]

    @property
    def times_s(self) -> IntArray:
        return self.start_s + np.arange(len(self.values), dtype=np.int64) * self.step_s

    def years(self) -> list[int]:
        """Calendar years (UTC) in which this series has any data."""
        valid = self.times_s[~np.isnan(self.values)]
        if len(valid) == 0:
            return []
        first = datetime.fromtimestamp(int(valid[0]), UTC).year
        last = datetime.fromtimestamp(int(valid[-1]), UTC).year
        return list(range(first, last + 1))


# --------------------------------------------------------------------------- reading


@dataclass
class _Table:
    """A source CSV split into columns, with line numbers for error messages."""

    source: str
    header: list[str]
    columns: list[Sequence[str]]
    line_no: Sequence[int]

    def col(self, *names: str) -> tuple[str, Sequence[str]]:
        for name in names:
            if name in self.header:
                return name, self.columns[self.header.index(name)]
        want = " or ".join(repr(n) for n in names)
        raise InputError(
            self.source,
            [Problem("header", f"column {want} is missing (columns: {', '.join(self.header)})")],
        )


def _read_table(path: Path) -> _Table:
    """Any source CSV (or .csv.gz), split like a trace so errors carry line numbers."""
    source = str(path)
    problems = Problems(source)
    header, columns, line_no = split_csv(read_text_file(path), source, problems)
    if not line_no:
        raise InputError(source, [Problem("", "has a header but no data rows")])
    return _Table(source, header, columns, line_no)


def _numbers(table: _Table, name: str, cells: Sequence[str], problems: Problems) -> FloatArray:
    """A numeric source column; empty cells and 'nan' are missing data (NaN), not errors."""
    out = np.empty(len(cells), dtype=np.float64)
    col = table.header.index(name)
    for i, cell in enumerate(cells):
        text = cell.strip()
        if not text:
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            out[i] = np.nan
            problems.cell(table.line_no[i], col, name, f"not a number: {text!r}")
            continue
        if math.isinf(out[i]):
            problems.cell(table.line_no[i], col, name, f"not a finite number: {text!r}")
    return out


def _utc_times(table: _Table, name: str, cells: Sequence[str], problems: Problems) -> IntArray:
    """Epoch seconds; naive stamps are taken as UTC (as the data sources document)."""
    out = np.zeros(len(cells), dtype=np.int64)
    col = table.header.index(name)
    for i, cell in enumerate(cells):
        try:
            stamp = datetime.fromisoformat(cell.strip())
        except ValueError:
            problems.cell(table.line_no[i], col, name, f"not an ISO 8601 time: {cell.strip()!r}")
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        out[i] = math.floor(stamp.timestamp())
    return out


def _local_times(
    table: _Table, name: str, cells: Sequence[str], zone_name: str, problems: Problems
) -> IntArray:
    """Naive local wall-clock stamps to UTC epoch seconds, resolving DST.

    A stamp equal to its predecessor is the repeated autumn hour: the first is read with
    fold=0 (summer time), the second with fold=1 (winter time). A stamp inside the spring
    gap does not exist and is an error; so is a repeat that is not an ambiguous hour.
    """
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            "--prices-tz", [Problem("", f"unknown time zone {zone_name!r} (is tzdata installed?)")]
        ) from None
    out = np.zeros(len(cells), dtype=np.int64)
    col = table.header.index(name)
    previous: datetime | None = None
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            naive = datetime.fromisoformat(text)
        except ValueError:
            problems.cell(table.line_no[i], col, name, f"not an ISO 8601 time: {text!r}")
            previous = None
            continue
        if naive.tzinfo is not None:  # an explicit offset needs no guessing
            out[i] = math.floor(naive.timestamp())
            previous = None
            continue
        fold = 0
        if previous is not None and naive == previous:
            first = naive.replace(tzinfo=zone, fold=0).utcoffset()
            second = naive.replace(tzinfo=zone, fold=1).utcoffset()
            if first == second:
                problems.cell(table.line_no[i], col, name, f"time {text} repeats the previous row")
                continue
            fold = 1
        local = naive.replace(tzinfo=zone, fold=fold)
        back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if back != naive:
            problems.cell(
                table.line_no[i], col, name, f"time {text} does not exist in {zone_name} (DST gap)"
            )
        out[i] = math.floor(local.timestamp())
        previous = naive if fold == 0 else None
    return out


def _grid(
    table: _Table,
    time_name: str,
    times: IntArray,
    values: dict[str, FloatArray],
    kind: Literal["sample", "interval"],
    problems: Problems,
    label: Literal["start", "end"] = "start",
) -> dict[str, Series]:
    """Place rows on a regular grid (step = the most common spacing); gaps become NaN."""
    col = table.header.index(time_name)
    diffs = np.diff(times)
    for k in np.flatnonzero(diffs <= 0)[: MAX_PROBLEMS + 1].tolist():
        problems.cell(
            table.line_no[k + 1], col, time_name, "is not after the previous row (after UTC)"
        )
    problems.raise_if_any()
    steps, counts = np.unique(diffs, return_counts=True)
    step = int(steps[np.argmax(counts)]) if len(steps) else DAY_S
    offset = (times - times[0]) % step
    for i in np.flatnonzero(offset != 0)[: MAX_PROBLEMS + 1].tolist():
        problems.cell(
            table.line_no[i], col, time_name, f"is not on the {step} s grid of the other rows"
        )
    problems.raise_if_any()
    k = (times - times[0]) // step
    if k[-1] > MAX_GRID_ROWS:
        problems.cell(
            table.line_no[-1], col, time_name, f"is too far from the first row for a {step} s step"
        )
        problems.raise_if_any()
    start = int(times[0]) - (step if label == "end" else 0)
    out: dict[str, Series] = {}
    for name, v in values.items():
        grid = np.full(int(k[-1]) + 1, np.nan)
        grid[k] = v
        out[name] = Series(table.source, name, start, step, grid, kind)
    return out


def read_irradiance(path: Path) -> dict[str, Series]:
    """DWD-style ``time,dhi,ghi,dni`` (W/m²) samples."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("time", "time_utc")
    times = _utc_times(t, tname, tcells, problems)
    values = {n: _numbers(t, n, t.col(n)[1], problems) for n in ("ghi", "dhi", "dni")}
    problems.raise_if_any()
    return _grid(t, tname, times, values, "sample", problems)


def read_temperature(path: Path) -> Series:
    """``time,temperature`` (°C) samples."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("time", "time_utc")
    times = _utc_times(t, tname, tcells, problems)
    vname, vcells = t.col("temperature", "temperature_c", "outdoor_c")
    values = {"temperature": _numbers(t, vname, vcells, problems)}
    problems.raise_if_any()
    return _grid(t, tname, times, values, "sample", problems)["temperature"]


def read_load(path: Path, column: str | None, scale: float) -> Series:
    """A W column of a household load file; 15-min means labelled with their start."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("time", "time_utc")
    if column is None:
        others = [h for h in t.header if h != tname]
        if len(others) != 1:
            raise InputError(
                t.source,
                [Problem("header", f"pick one with --load-column: {', '.join(others)}")],
            )
        column = others[0]
    name, cells = t.col(column)
    times = _utc_times(t, tname, tcells, problems)
    values = _numbers(t, name, cells, problems)
    _non_negative(t, name, values, problems)
    problems.raise_if_any()
    return _grid(t, tname, times, {"load": values * scale}, "interval", problems)["load"]


def read_heat(path: Path, scale: float) -> Series:
    """Heat-meter energy per interval (kWh) as mean W; each value ends at its stamp."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("time_utc", "time")
    name, cells = t.col("heat_kwh_in_hour", "heat_kwh")
    times = _utc_times(t, tname, tcells, problems)
    kwh = _numbers(t, name, cells, problems)
    _non_negative(t, name, kwh, problems)
    problems.raise_if_any()
    series = _grid(t, tname, times, {"heat": kwh}, "interval", problems, label="end")["heat"]
    watts = series.values * 3.6e6 / series.step_s * scale
    return Series(series.source, "heat", series.start_s, series.step_s, watts, "interval")


def read_prices(path: Path, zone: str) -> Series:
    """Day-ahead spot price in EUR/kWh on a continuous UTC hour grid."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("time")
    name, cells = t.col("price_eur_per_mwh")
    times = _local_times(t, tname, tcells, zone, problems)
    values = _numbers(t, name, cells, problems) / 1000.0
    problems.raise_if_any()
    return _grid(t, tname, times, {"spot": values}, "interval", problems)["spot"]


def block_subsidy_btc(day: date) -> Decimal:
    """Block subsidy on a date (halvings happen at a block height; we use the UTC date)."""
    subsidy = Decimal(0)
    for since, value in HALVINGS:
        if day >= since:
            subsidy = value
    return subsidy


def read_btc(path: Path, usd_to_currency: float,
             fees_btc: float) -> tuple[Series, Series]:
    """Daily hashvalue (gross sats per TH/s per day) and BTC price (site currency) from a
    daily ``date,close_usd,difficulty`` file. A ``fees_btc`` column (BTC per block), when
    the file has one, is used day by day instead of the flat `fees_btc` assumption."""
    t = _read_table(path)
    problems = Problems(t.source)
    tname, tcells = t.col("date", "time")
    pname, pcells = t.col("close_usd", "price_usd")
    dname, dcells = t.col("difficulty")
    times = _utc_times(t, tname, tcells, problems)
    price = _numbers(t, pname, pcells, problems)
    difficulty = _numbers(t, dname, dcells, problems)
    for name, arr in ((pname, price), (dname, difficulty)):
        col = t.header.index(name)
        for i in np.flatnonzero(arr <= 0)[: MAX_PROBLEMS + 1].tolist():
            problems.cell(t.line_no[i], col, name, f"must be positive (is {arr[i]:g})")
    fees: FloatArray | float = fees_btc
    if "fees_btc" in t.header:
        fname, fcells = t.col("fees_btc")
        fees = _numbers(t, fname, fcells, problems)
        _non_negative(t, fname, fees, problems)
    problems.raise_if_any()
    days = [datetime.fromtimestamp(int(s), UTC).date() for s in times.tolist()]
    subsidy = np.array([float(block_subsidy_btc(d)) for d in days])
    hv = hashvalue_series(difficulty, subsidy + fees)
    grid = _grid(t, tname, times, {"hashvalue_sats_per_th_day": hv,
                                   "btc_price": price * usd_to_currency}, "interval", problems)
    return grid["hashvalue_sats_per_th_day"], grid["btc_price"]


def _non_negative(t: _Table, name: str, values: FloatArray, problems: Problems) -> None:
    col = t.header.index(name)
    for i in np.flatnonzero(values < 0)[: MAX_PROBLEMS + 1].tolist():
        problems.cell(t.line_no[i], col, name, f"must not be negative (is {values[i]:g})")


# ------------------------------------------------------------------ aligning, resampling


def align_to_year(out_s: IntArray, year: int) -> IntArray:
    """Output times mapped to the same month, day and UTC time of day in ``year``.

    Feb 29 falls back to Feb 28 when ``year`` is not a leap year.
    """
    days = out_s // DAY_S
    second_of_day = out_s - days * DAY_S
    unique, inverse = np.unique(days, return_inverse=True)
    mapped = np.empty(len(unique), dtype=np.int64)
    for k, d in enumerate(unique.tolist()):
        day = EPOCH + timedelta(days=d)
        dom = 28 if (day.month, day.day) == (2, 29) and not calendar.isleap(year) else day.day
        mapped[k] = (date(year, day.month, dom) - EPOCH).days
    return np.asarray(mapped[inverse] * DAY_S + second_of_day, dtype=np.int64)


def interpolate(series: Series, at_s: IntArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Linear interpolation of a sampled series; also which points the data covers.

    A point is covered if it lies between the first sample and one step after the last
    (held there) and its neighbouring samples are at most `MAX_GAP_STEPS` steps apart.
    """
    valid = ~np.isnan(series.values)
    t = series.times_s[valid]
    v = series.values[valid]
    if len(t) == 0:
        return np.full(len(at_s), np.nan), np.zeros(len(at_s), dtype=bool)
    values = np.interp(at_s.astype(np.float64), t.astype(np.float64), v)
    right = np.searchsorted(t, at_s, side="right")
    left_t = t[np.clip(right - 1, 0, len(t) - 1)]
    right_t = t[np.clip(right, 0, len(t) - 1)]
    bridged = (right >= len(t)) | (right_t - left_t <= MAX_GAP_STEPS * series.step_s)
    covered = (at_s >= t[0]) & (at_s < t[-1] + series.step_s) & bridged
    return np.asarray(values, dtype=np.float64), covered


def interval_mean(
    series: Series, at_s: IntArray, width_s: int
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Exact mean of a piecewise-constant series over ``[at, at + width)``.

    Uses the running integral, so a finer output step holds each value and a coarser one
    averages — either way energy is preserved. Intervals touching a missing value, or
    reaching outside the series, are not covered.
    """
    missing = np.isnan(series.values)
    n = len(series.values)
    nodes = np.arange(n + 1, dtype=np.float64) * series.step_s
    integral = np.concatenate(([0.0], np.cumsum(np.where(missing, 0.0, series.values))))
    integral *= series.step_s
    gaps = np.concatenate(([0.0], np.cumsum(missing.astype(np.float64))))
    a = (at_s - series.start_s).astype(np.float64)
    b = a + width_s
    mean = (np.interp(b, nodes, integral) - np.interp(a, nodes, integral)) / width_s
    # Inside a single source interval the mean is that value: return it exactly, without
    # the rounding of the integral difference (held prices then compare equal).
    cell = np.floor(a / series.step_s).astype(np.int64)
    single = (np.ceil(b / series.step_s).astype(np.int64) - 1 == cell) & (cell >= 0) & (cell < n)
    mean[single] = series.values[cell[single]]
    touches_gap = np.interp(b, nodes, gaps) - np.interp(a, nodes, gaps) > 1e-9
    covered = (a >= 0) & (b <= nodes[-1]) & ~touches_gap
    return np.asarray(mean, dtype=np.float64), covered


def resample(
    series: Series, out_s: IntArray, step_s: int, year: int | None, option: str
) -> tuple[FloatArray, int]:
    """Values of ``series`` on the output grid, and the source year used.

    With ``year`` None, the output year is tried first, then the source's years from the
    most recent down; the first that covers the whole window wins.
    """
    out_year = datetime.fromtimestamp(int(out_s[0]), UTC).year
    have = series.years()
    if year is not None:
        candidates = [year]
    else:
        candidates = ([out_year] if out_year in have else []) + sorted(
            (y for y in have if y != out_year), reverse=True
        )
    first_failure: tuple[int, str] | None = None
    for candidate in candidates:
        at = align_to_year(out_s, candidate)
        if series.kind == "sample":
            values, covered = interpolate(series, at)
        else:
            values, covered = interval_mean(series, at, step_s)
        if covered.all():
            return values, candidate
        if first_failure is None:
            bad = int(np.argmin(covered))
            first_failure = (
                candidate,
                f"no {series.name} data for {iso_utc(at[bad : bad + 1].astype(np.float64))[0]}"
                f" (output time {iso_utc(out_s[bad : bad + 1].astype(np.float64))[0]},"
                f" year {candidate})",
            )
    span = f"has data in {have[0]}..{have[-1]}" if have else "has no data"
    if first_failure is None:
        reason = f"{span}; no year to use"
    else:
        reason = f"{first_failure[1]}; the file {span}"
        if year is None and len(candidates) > 1:
            reason += f"; no year covers the whole window (tried {candidates})"
        elif option:
            reason += f"; choose another {option}"
    raise InputError(series.source, [Problem("", reason)])


# ---------------------------------------------------------------------- the build


def output_times(start: date, days: int, step_s: int) -> IntArray:
    """Row start times (UTC epoch s) of the output: ``days`` days from ``start`` 00:00Z."""
    problems: list[Problem] = []
    if days < 1:
        problems.append(Problem("--days", f"must be at least 1 (is {days})"))
    if step_s < 1 or DAY_S % step_s != 0:
        problems.append(
            Problem("--step-s", f"must be a whole divisor of 86400 s, >= 1 (is {step_s})")
        )
    if problems:
        raise InputError("options", problems)
    first = (start - EPOCH).days * DAY_S
    return first + np.arange(days * DAY_S // step_s, dtype=np.int64) * step_s


def _dni(
    opts: BuildOptions,
    ghi: FloatArray,
    dhi: FloatArray,
    beam: FloatArray,
    zenith: FloatArray,
    raw: dict[str, Series],
    notes: list[str],
) -> FloatArray:
    """True DNI, converting the file's 'dni' column if it is beam on the horizontal."""
    kind = opts.irradiance_beam
    if kind == "auto":
        g, d, b = (raw[n].values for n in ("ghi", "dhi", "dni"))
        day = np.isfinite(g) & np.isfinite(d) & np.isfinite(b) & (g > 50)
        closure = np.abs(b[day] - (g[day] - d[day])) <= 0.05
        kind = "horizontal" if day.any() and closure.mean() >= 0.99 else "dni"
        if kind == "horizontal":
            notes.append(
                "irradiance: the 'dni' column equals ghi - dhi (beam on the horizontal), "
                "so DNI = (ghi - dhi) / cos(zenith)"
            )
    if kind == "dni":
        return beam
    cos_z = np.maximum(np.cos(np.radians(zenith)), MIN_COS_ZENITH)
    dni = np.where(zenith < 90.0, np.maximum(ghi - dhi, 0.0) / cos_z, 0.0)
    return np.asarray(np.minimum(dni, MAX_DNI_W_M2), dtype=np.float64)


def _currency_rates(cfg: SiteConfig, opts: BuildOptions) -> tuple[float, float]:
    """EUR and USD to the site currency; the defaults only hold for a EUR site."""
    eur, usd = opts.eur_to_currency, opts.usd_to_currency
    if cfg.site.currency == "EUR":
        return (1.0 if eur is None else eur), (DEFAULT_USD_TO_EUR if usd is None else usd)
    problems = []
    if eur is None and opts.prices is not None:
        problems.append(
            Problem("--eur-to-currency", f"needed: the site currency is {cfg.site.currency}")
        )
    if usd is None and opts.btc is not None:
        problems.append(
            Problem("--usd-to-currency", f"needed: the site currency is {cfg.site.currency}")
        )
    if problems:
        raise InputError("options", problems)
    return (1.0 if eur is None else eur), (1.0 if usd is None else usd)


def _check_options(opts: BuildOptions) -> None:
    """Option values that no file can fix, reported together."""
    problems = []
    building = {
        "--building-ua-w-per-k": opts.building_ua_w_per_k,
        "--heating-base-c": opts.heating_base_c,
        "--dhw-w": opts.dhw_w,
    }
    if opts.heat is not None:
        problems += [
            Problem(flag, "only applies without --heat (the meter measures all the heat)")
            for flag, value in building.items()
            if value is not None
        ]
    for flag, value in (
        ("--load-scale", opts.load_scale),
        ("--heat-scale", opts.heat_scale),
        ("--building-ua-w-per-k", opts.building_ua_w_per_k),
        ("--dhw-w", opts.dhw_w),
        ("--fees-per-block-btc", opts.fees_per_block_btc),
    ):
        if value is not None and not value >= 0:
            problems.append(Problem(flag, f"must not be negative (is {value:g})"))
    for flag, value in (
        ("--eur-to-currency", opts.eur_to_currency),
        ("--usd-to-currency", opts.usd_to_currency),
    ):
        if value is not None and not value > 0:
            problems.append(Problem(flag, f"must be positive (is {value:g})"))
    if problems:
        raise InputError("options", problems)


def build_trace(cfg: SiteConfig, opts: BuildOptions) -> BuiltTrace:
    """Read every source, align and resample it, and compute the trace columns."""
    _check_options(opts)
    eur_rate, usd_rate = _currency_rates(cfg, opts)
    out_s = output_times(opts.start, opts.days, opts.step_s)
    step = opts.step_s
    notes: list[str] = []
    cols: dict[str, FloatArray] = {}

    def use(series: Series, year: int | None, option: str) -> FloatArray:
        values, used = resample(series, out_s, step, year, option)
        notes.append(f"{series.name}: {Path(series.source).name}, year {used}")
        return values

    # Irradiance and PV. Sampled values are taken mid-step, so the held PV of a row is
    # its mean over the step (to second order), matching the held load it is compared to.
    mid = out_s + step // 2
    raw = read_irradiance(opts.irradiance)
    irr = {}
    irr_year: int | None = None
    for name in ("ghi", "dhi", "dni"):
        values, irr_year = resample(raw[name], mid, step, irr_year, "")
        irr[name] = values
    notes.append(f"irradiance: {opts.irradiance.name}, year {irr_year}")
    zenith, _ = pvmodel.solar_position(mid, cfg.site.latitude_deg, cfg.site.longitude_deg)
    dni = _dni(opts, irr["ghi"], irr["dhi"], irr["dni"], zenith, raw, notes)

    air: FloatArray | None = None
    if opts.temperature is not None:
        temp = read_temperature(opts.temperature)
        air, used = resample(temp, mid, step, None, "")
        notes.append(f"temperature: {opts.temperature.name}, year {used}")

    cols["pv_w"] = pvmodel.pv_power_w(
        mid,
        irr["ghi"],
        irr["dhi"],
        dni,
        cfg.pv,
        cfg.site.latitude_deg,
        cfg.site.longitude_deg,
        air,
    )
    cols["load_w"] = use(read_load(opts.load, opts.load_column, opts.load_scale), None, "")

    if opts.heat is not None:
        cols["heat_demand_w"] = use(
            read_heat(opts.heat, opts.heat_scale), opts.heat_year, "--heat-year"
        )
    else:
        dhw = DEFAULT_DHW_W if opts.dhw_w is None else opts.dhw_w
        if air is not None:
            ua = (
                DEFAULT_UA_W_PER_K if opts.building_ua_w_per_k is None else opts.building_ua_w_per_k
            )
            base = DEFAULT_HEATING_BASE_C if opts.heating_base_c is None else opts.heating_base_c
            cols["heat_demand_w"] = ua * np.maximum(base - air, 0.0) + dhw
            notes.append(f"heat demand: {ua:g} W/K below {base:g} °C + {dhw:g} W hot water")
        else:
            cols["heat_demand_w"] = np.full(len(out_s), dhw)
            notes.append(f"heat demand: constant {dhw:g} W hot water (no temperature file)")
    if air is not None:
        cols["outdoor_c"] = air

    if opts.prices is not None:
        spot = use(read_prices(opts.prices, opts.prices_tz), opts.prices_year, "--prices-year")
        spot = spot * eur_rate
        cols["import_price"] = spot + opts.import_markup_per_kwh
        cols["export_price"] = spot * opts.export_factor
    if opts.btc is not None:
        hv, price = read_btc(opts.btc, usd_rate, opts.fees_per_block_btc)
        cols["hashvalue_sats_per_th_day"] = use(hv, opts.btc_year, "--btc-year")
        cols["btc_price"] = use(price, opts.btc_year, "--btc-year")
    return BuiltTrace(out_s, step, cols, notes)


def render_csv(built: BuiltTrace) -> str:
    """The trace as CSV text: ISO UTC times with Z, W to 0.1, prices to 5 decimals.

    Columns a build did not produce (no prices, no BTC, no temperature) are left out, so a
    reader takes them from the site config, as the contract says.
    """
    names = [c for c in OUTPUT_COLUMNS[1:] if c in built.columns]
    cells: list[list[str]] = [iso_utc(built.time_s.astype(np.float64))]
    for name in names:
        digits = DECIMALS[name]
        rounded = np.round(built.columns[name], digits) + 0.0  # + 0.0 turns -0.0 into 0.0
        cells.append([f"{v:.{digits}f}" for v in rounded.tolist()])
    lines = [",".join(["time", *names])]
    lines.extend(",".join(row) for row in zip(*cells, strict=True))
    return "\n".join(lines) + "\n"


def write_trace_csv(path: Path, built: BuiltTrace) -> None:
    """Write `.csv`, or `.csv.gz` (reproducible: no name or time in the gzip header)."""
    data = render_csv(built).encode("utf-8")
    try:
        if path.name.endswith(".gz"):
            buf = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
                gz.write(data)
            data = buf.getvalue()
        path.write_bytes(data)
    except OSError as err:
        raise InputError(str(path), [Problem("", f"cannot write: {err.strerror}")]) from None
