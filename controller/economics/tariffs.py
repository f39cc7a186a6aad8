"""Electricity tariffs: what a kWh costs to import and earns to export, at a given time.

Three kinds, each a small class behind `Tariff.prices_at(t_s)`:

- `FixedTariff`: one import and one export price.
- `TimeOfUseTariff`: prices by local time of day and weekday (DST-correct, windows may
  wrap midnight), a default outside the periods.
- `SeriesTariff`: a dynamic price series (day-ahead spot from a CSV or a feed) turned into
  retail prices: import = (spot + import_adder) x import_factor, export = spot x
  export_factor + export_adder. Negative prices are kept: they are the point.

Feed: the Energy-Charts API of Fraunhofer ISE (`GET /price?bzn=BE&start=..&end=..`,
https://api.energy-charts.info, answer `{"unix_seconds": [...], "price": [...],
"unit": "EUR / MWh", "license_info": ...}`; each time stamp starts a period that lasts
until the next one), as documented on the API's Swagger page and in evcc's tariff docs.

The config models (`TariffConfig`) are the shape proposed for the site file's
`[tariffs]` table; a table without `kind` is the fixed tariff the foundation shipped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import Discriminator, Field, Tag, field_validator

from controller.config.base import Money, Strict
from controller.config.ledger import parse_window
from controller.economics.csvrows import aware_time, records
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PROBLEMS = 20


class PricePair(NamedTuple):
    """Prices per kWh in the site currency; either may be negative."""

    import_per_kwh: Decimal
    export_per_kwh: Decimal


class Tariff(Protocol):
    def prices_at(self, t_s: float) -> PricePair:
        """Prices in force at UTC epoch second `t_s` (LookupError if unknown)."""
        ...


@dataclass(frozen=True)
class FixedTariff:
    import_per_kwh: Decimal
    export_per_kwh: Decimal

    def prices_at(self, t_s: float) -> PricePair:
        return PricePair(self.import_per_kwh, self.export_per_kwh)


@dataclass(frozen=True)
class TouPeriod:
    days: frozenset[int]  # 0 = Monday
    start_min: int
    end_min: int  # may be <= start_min: the window wraps midnight
    import_per_kwh: Decimal
    export_per_kwh: Decimal

    def covers(self, weekday: int, minute: int) -> bool:
        if self.start_min < self.end_min:
            return weekday in self.days and self.start_min <= minute < self.end_min
        # Wrapping window: the part after midnight belongs to the day it started on.
        return (weekday in self.days and minute >= self.start_min) or (
            (weekday - 1) % 7 in self.days and minute < self.end_min
        )


@dataclass(frozen=True)
class TimeOfUseTariff:
    """The first period covering the local time wins; otherwise the default prices."""

    periods: tuple[TouPeriod, ...]
    default: PricePair
    tz: ZoneInfo

    def prices_at(self, t_s: float) -> PricePair:
        local = datetime.fromtimestamp(t_s, self.tz)
        minute = local.hour * 60 + local.minute
        wd = local.weekday()
        for p in self.periods:
            if p.covers(wd, minute):
                return PricePair(p.import_per_kwh, p.export_per_kwh)
        return self.default


@dataclass(frozen=True)
class RetailFormula:
    """Spot (per kWh) to retail: import = (spot + adder) x factor; export = spot x f + a."""

    import_adder_per_kwh: Decimal = Decimal(0)
    import_factor: Decimal = Decimal(1)
    export_adder_per_kwh: Decimal = Decimal(0)
    export_factor: Decimal = Decimal(1)

    def apply(self, spot_per_kwh: Decimal) -> PricePair:
        return PricePair(
            (spot_per_kwh + self.import_adder_per_kwh) * self.import_factor,
            spot_per_kwh * self.export_factor + self.export_adder_per_kwh,
        )


class SeriesTariff:
    """Prices that change with time: each point holds from its start until the next one.

    The last point lasts as long as the one before it. Outside the series the prices are
    unknown (`LookupError`), never guessed.
    """

    def __init__(self, starts_s: Sequence[int], prices: Sequence[PricePair], source: str) -> None:
        if len(starts_s) != len(prices) or not starts_s:
            raise ValueError("a price series needs as many prices as start times, at least 1")
        if any(b <= a for a, b in itertools.pairwise(starts_s)):
            raise ValueError("price series start times must increase")
        self.starts = np.asarray(starts_s, dtype=np.int64)
        self.prices = list(prices)
        last_step = int(self.starts[-1] - self.starts[-2]) if len(self.starts) > 1 else 3600
        self.end_s = int(self.starts[-1]) + last_step
        self.source = source

    def __len__(self) -> int:
        return len(self.prices)

    def prices_at(self, t_s: float) -> PricePair:
        if t_s < self.starts[0] or t_s >= self.end_s:
            raise LookupError(f"{self.source}: no price for {_iso(t_s)} (series covers "
                              f"{_iso(float(self.starts[0]))} to {_iso(float(self.end_s))})")
        i = int(np.searchsorted(self.starts, t_s, side="right")) - 1
        return self.prices[i]


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _gaps(starts: Sequence[int]) -> list[int]:
    """Indexes i where starts[i] follows the previous one by more than both neighbours'
    steps: rows are missing (a silent gap would stretch the previous price)."""
    d = [b - a for a, b in itertools.pairwise(starts)]
    out = []
    for k, step in enumerate(d):
        before = d[k - 1] if k > 0 else step
        after = d[k + 1] if k + 1 < len(d) else step
        if step > max(before, after):
            out.append(k + 1)
    return out


def _refuse(source: str, problems: list[Problem]) -> InputError:
    log.warning("refused price input %s: %s", source, "; ".join(map(str, problems)))
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(Problem("", f"... and {len(problems) - MAX_PROBLEMS} more problems"))
    return InputError(source, shown)


def _parse_price(text: str) -> Decimal | str:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        return f"not a number: {text.strip()!r}"
    if not d.is_finite():
        return f"not a finite number: {text.strip()!r}"
    return d


def read_price_csv(path: str | Path, formula: RetailFormula | None = None) -> SeriesTariff:
    """A price series from CSV: `time` (ISO 8601 with offset) and either `import_price`
    and `export_price` (per kWh, retail) or `spot_price` (per kWh, through `formula`).

    Every bad cell is reported with its line and column; nothing is half-read.
    """
    import csv

    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise _refuse(source, [Problem("", f"cannot read: {err}")]) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise _refuse(source, [Problem("", "file is empty (no header row)")])
    header = [h.strip() for h in rows[0]]
    problems: list[Problem] = []
    if "time" not in header:
        problems.append(Problem("header", "required column 'time' is missing"))
    retail = "import_price" in header and "export_price" in header
    spot = "spot_price" in header
    if not retail and not spot:
        problems.append(Problem("header", "needs 'import_price' and 'export_price', or "
                                          "'spot_price'"))
    if problems:
        raise _refuse(source, problems)
    fml = formula or RetailFormula()
    starts: list[int] = []
    prices: list[PricePair] = []
    for line, cell in records(rows, header, problems):
        t = aware_time(cell["time"])
        if isinstance(t, str):
            problems.append(Problem(f"row {line}, column time", t))
        vals: dict[str, Decimal] = {}
        for name in (("import_price", "export_price") if retail else ("spot_price",)):
            v = _parse_price(cell[name])
            if isinstance(v, str):
                problems.append(Problem(f"row {line}, column {name}", v))
            else:
                vals[name] = v
        if isinstance(t, str) or len(vals) != (2 if retail else 1):
            continue
        ts = int(t.timestamp())
        if starts and ts <= starts[-1]:
            problems.append(Problem(f"row {line}, column time",
                                    f"{cell['time'].strip()} is not after the previous row"))
            continue
        starts.append(ts)
        prices.append(PricePair(vals["import_price"], vals["export_price"]) if retail
                      else fml.apply(vals["spot_price"]))
    if not problems and not starts:
        problems.append(Problem("", "no data rows"))
    if not problems:
        for i in _gaps(starts):
            problems.append(Problem(f"data row {i + 1}, column time",
                                    f"{starts[i] - starts[i - 1]} s after the previous row, "
                                    "longer than the steps around it: rows are missing"))
    if problems:
        raise _refuse(source, problems)
    return SeriesTariff(starts, prices, source)


def parse_energy_charts(payload: Any, formula: RetailFormula | None = None,
                        source: str = "energy-charts") -> SeriesTariff:
    """A price series from an Energy-Charts `/price` answer (EUR/MWh -> per kWh)."""
    problems: list[Problem] = []
    if not isinstance(payload, dict):
        raise _refuse(source, [Problem("", "answer is not a JSON object")])
    times, values, unit = payload.get("unix_seconds"), payload.get("price"), payload.get("unit")
    if not isinstance(times, list):
        problems.append(Problem("unix_seconds", "missing or not a list"))
    if not isinstance(values, list):
        problems.append(Problem("price", "missing or not a list"))
    if not isinstance(unit, str) or unit.replace(" ", "").lower() != "eur/mwh":
        problems.append(Problem("unit", f"expected 'EUR / MWh', got {unit!r}"))
    if problems:
        raise _refuse(source, problems)
    assert isinstance(times, list) and isinstance(values, list)
    if len(times) != len(values):
        raise _refuse(source, [Problem("price", f"has {len(values)} values for "
                                                f"{len(times)} times")])
    if not times:
        raise _refuse(source, [Problem("unix_seconds", "is empty: no prices published")])
    fml = formula or RetailFormula()
    starts: list[int] = []
    prices: list[PricePair] = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if not isinstance(t, int) or isinstance(t, bool):
            problems.append(Problem(f"unix_seconds[{i}]", f"not an integer: {t!r}"))
            continue
        if v is None or isinstance(v, bool) or not isinstance(v, int | float):
            problems.append(Problem(f"price[{i}]", f"not a number: {v!r}"))
            continue
        if starts and t <= starts[-1]:
            problems.append(Problem(f"unix_seconds[{i}]", "not after the previous time"))
            continue
        starts.append(t)
        per_mwh = Decimal(repr(float(v))) if isinstance(v, float) else Decimal(v)
        prices.append(fml.apply(per_mwh / 1000))
    if not problems:
        problems += [Problem(f"unix_seconds[{i}]", "rows are missing before this time")
                     for i in _gaps(starts)]
    if problems:
        raise _refuse(source, problems)
    return SeriesTariff(starts, prices, source)


def fetch_energy_charts(base_url: str, bidding_zone: str, start: str, end: str,
                        formula: RetailFormula | None = None,
                        timeout_s: float = 20.0) -> SeriesTariff:
    """GET {base_url}/price?bzn=..&start=..&end=.. and parse it (HTTP errors refused)."""
    import httpx

    url = base_url.rstrip("/") + "/price"
    params = {"bzn": bidding_zone, "start": start, "end": end}
    try:
        r = httpx.get(url, params=params, timeout=timeout_s)
    except httpx.HTTPError as err:
        raise _refuse(url, [Problem("", f"request failed: {err}")]) from None
    if r.status_code != 200:
        raise _refuse(url, [Problem("", f"HTTP {r.status_code}: {r.text[:200]!r}")])
    try:
        payload = r.json()
    except ValueError:
        raise _refuse(url, [Problem("", "answer is not JSON")]) from None
    return parse_energy_charts(payload, formula, source=f"{url}?bzn={bidding_zone}")


# --- config models: the proposed shape of [tariffs] -------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class FixedTariffConfig(Strict):
    kind: Literal["fixed"] = "fixed"
    import_price_per_kwh: Money = Decimal("0.30")
    export_price_per_kwh: Money = Decimal("0.05")


class TouPeriodConfig(Strict):
    window: str = Field(description="Local time 'HH:MM-HH:MM'; may wrap midnight")
    days: list[Weekday] = Field(default_factory=lambda: list(ALL_DAYS), min_length=1)
    import_price_per_kwh: Money
    export_price_per_kwh: Money | None = Field(
        default=None, description="Default: the tariff's export price"
    )

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_window(v)
        return v


class TouTariffConfig(Strict):
    kind: Literal["tou"]
    import_price_per_kwh: Money = Field(description="Outside every period")
    export_price_per_kwh: Money
    periods: list[TouPeriodConfig] = Field(min_length=1)


class DynamicTariffConfig(Strict):
    kind: Literal["dynamic"]
    csv: str | None = Field(default=None, description="Price CSV (time + prices or spot)")
    feed: Literal["energy-charts"] | None = None
    feed_url: str = "https://api.energy-charts.info"
    bidding_zone: str = "DE-LU"
    import_adder_per_kwh: Money = Decimal(0)
    import_factor: Annotated[Money, Field(gt=0)] = Decimal(1)
    export_adder_per_kwh: Money = Decimal(0)
    export_factor: Annotated[Money, Field(ge=0)] = Decimal(1)

    @field_validator("feed")
    @classmethod
    def _one_source(cls, v: str | None, info: Any) -> str | None:
        if (v is None) == (info.data.get("csv") is None):
            raise ValueError("set exactly one of 'csv' and 'feed'")
        return v

    def formula(self) -> RetailFormula:
        return RetailFormula(self.import_adder_per_kwh, self.import_factor,
                             self.export_adder_per_kwh, self.export_factor)


def _tariff_kind(v: Any) -> str:
    kind = v.get("kind", "fixed") if isinstance(v, dict) else getattr(v, "kind", "fixed")
    return str(kind)


TariffConfig = Annotated[
    Annotated[FixedTariffConfig, Tag("fixed")]
    | Annotated[TouTariffConfig, Tag("tou")]
    | Annotated[DynamicTariffConfig, Tag("dynamic")],
    Discriminator(_tariff_kind),
]
"""`[tariffs]` of a site file: `kind` = fixed (default), tou or dynamic."""


def build_tariff(cfg: FixedTariffConfig | TouTariffConfig | DynamicTariffConfig | Any,
                 timezone: str = "UTC") -> Tariff:
    """A tariff object from its config (the foundation's TariffSection works as fixed).

    A dynamic tariff with a CSV reads it now; one with a feed must be fetched by the
    caller (`fetch_energy_charts`), which owns the network and the schedule.
    """
    kind = getattr(cfg, "kind", "fixed")
    if kind == "fixed" and not isinstance(cfg, DynamicTariffConfig):
        return FixedTariff(cfg.import_price_per_kwh, cfg.export_price_per_kwh)
    if isinstance(cfg, TouTariffConfig):
        periods = []
        for p in cfg.periods:
            start, end = parse_window(p.window)
            periods.append(TouPeriod(
                frozenset(WEEKDAYS.index(d) for d in p.days), start, end % (24 * 60),
                p.import_price_per_kwh,
                p.export_price_per_kwh if p.export_price_per_kwh is not None
                else cfg.export_price_per_kwh,
            ))
        return TimeOfUseTariff(tuple(periods),
                               PricePair(cfg.import_price_per_kwh, cfg.export_price_per_kwh),
                               ZoneInfo(timezone))
    if isinstance(cfg, DynamicTariffConfig):
        if cfg.csv is None:
            raise ValueError("a feed tariff is fetched with fetch_energy_charts()")
        return read_price_csv(cfg.csv, cfg.formula())
    raise ValueError(f"unknown tariff kind {kind!r}")
