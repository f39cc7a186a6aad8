"""The running service's prices: a dynamic series from a CSV file or MQTT, else `[tariffs]`.

`hearth run` used constant `[tariffs]` prices; with a day-ahead market the price changes
every 15 min or hour, and the controller's buy rule and the planner need the real one.

Sources, latest wins:

- `[tariffs] prices_file`: CSV with header `time,import_price,export_price`, one row per
  period (each time starts a period lasting until the next row; the last row lasts as
  long as the one before it). Times are ISO 8601 with a UTC offset. The file is re-read
  when its modification time or size changes (a poll task, off the tick); a file with a
  bad row is refused whole with an error naming the line and the field, and the last good
  series stays in force.
- MQTT `cmd/prices` (`set_series`): a JSON series with the same fields.

A time outside the series falls back to `[tariffs]` (logged once per gap). Prices are
floats in the site currency per kWh: they feed the control core, not the ledger.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from controller.config.models import SiteConfig
from controller.economics.csvrows import aware_time, records
from controller.errors import InputError, Problem
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)

COLUMNS = ("time", "import_price", "export_price")
MAX_PROBLEMS = 20
MAX_ROWS = 200_000  # a year at 5 min; more is a mistake, not a price series
MAX_PRICE_PER_KWH = 100.0  # beyond any market cap (EPEX: 4 EUR/kWh); a unit slip (per MWh)


class Prices(NamedTuple):
    import_per_kwh: float
    export_per_kwh: float


@dataclass(frozen=True)
class PriceSeries:
    """Sorted period starts (UTC epoch s) and the prices from each start."""

    starts_s: tuple[float, ...]
    import_per_kwh: tuple[float, ...]
    export_per_kwh: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.starts_s:
            raise ValueError("a price series needs at least one row")

    @property
    def end_s(self) -> float:
        """End of the last period (it lasts as long as the one before it, else an hour)."""
        s = self.starts_s
        last_len = s[-1] - s[-2] if len(s) > 1 else 3600.0
        return s[-1] + last_len

    def at(self, t_s: float) -> Prices | None:
        """Prices in force at `t_s`, or None outside the series."""
        if t_s < self.starts_s[0] or t_s >= self.end_s:
            return None
        i = bisect.bisect_right(self.starts_s, t_s) - 1
        return Prices(self.import_per_kwh[i], self.export_per_kwh[i])

    def window(self, t0_s: float, step_s: float, n: int) -> tuple[list[float], list[float]]:
        """Prices at t0 + k·step for k < n (NaN where unknown): what the planner reads."""
        imp, exp = [], []
        for k in range(n):
            p = self.at(t0_s + k * step_s)
            imp.append(math.nan if p is None else p.import_per_kwh)
            exp.append(math.nan if p is None else p.export_per_kwh)
        return imp, exp


def _number(text: str) -> float | str:
    try:
        v = float(text.strip())
    except ValueError:
        return f"not a number: {text.strip()!r}"
    if not math.isfinite(v):
        return f"not a finite number: {text.strip()!r}"
    if abs(v) > MAX_PRICE_PER_KWH:
        return (f"{v:g} per kWh is beyond any market price (|price| <= {MAX_PRICE_PER_KWH:g});"
                " prices are per kWh, not per MWh")
    return v


def build_series(rows: Sequence[tuple[str, object, object, object]], source: str,
                 text_numbers: bool = True) -> PriceSeries:
    """(where, time, import, export) rows -> a series; InputError names every bad field.

    Shared by the CSV reader (where = "line N", numbers as text) and the MQTT command
    (where = "prices[i]", JSON numbers only: "0.2" is refused like elsewhere in MQTT).
    """
    problems: list[Problem] = []
    out: list[tuple[float, float, float]] = []
    for where, t_raw, imp_raw, exp_raw in rows:
        row_ok = True
        t: datetime | str = (aware_time(t_raw) if isinstance(t_raw, str)
                             else f"must be an ISO 8601 time string, got {t_raw!r}")
        if isinstance(t, str):
            problems.append(Problem(f"{where} time", t))
            row_ok = False
        vals: list[float] = []
        for name, raw in (("import_price", imp_raw), ("export_price", exp_raw)):
            v: float | str
            if isinstance(raw, str) and text_numbers:
                v = _number(raw)
            elif isinstance(raw, int | float) and not isinstance(raw, bool):
                v = _number(repr(float(raw)))
            else:
                v = f"must be a number, got {raw!r}"
            if isinstance(v, str):
                problems.append(Problem(f"{where} {name}", v))
                row_ok = False
            else:
                vals.append(v)
        if row_ok and isinstance(t, datetime):
            out.append((t.timestamp(), vals[0], vals[1]))
        if len(problems) >= MAX_PROBLEMS:
            break
    if not problems:
        for (a, *_), (b, *_), (where, *_) in zip(out, out[1:], rows[1:], strict=False):
            if b <= a:
                problems.append(Problem(f"{where} time", "times must be strictly increasing"))
                break
    if not problems and not out:
        problems.append(Problem("", "no price rows"))
    if problems:
        raise InputError(source, problems[:MAX_PROBLEMS])
    return PriceSeries(tuple(r[0] for r in out), tuple(r[1] for r in out),
                       tuple(r[2] for r in out), source)


def parse_prices_csv(text: str, source: str) -> PriceSeries:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(source, [Problem("line 1", "empty file; expected header "
                                                    f"{','.join(COLUMNS)}")])
    header = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(source, [Problem("line 1", f"missing column(s) {missing}; header "
                                                    f"must have {','.join(COLUMNS)}")])
    if len(rows) - 1 > MAX_ROWS:
        raise InputError(source, [Problem("", f"{len(rows) - 1} rows; at most {MAX_ROWS}")])
    problems: list[Problem] = []
    parsed = [(f"line {line}", rec["time"], rec["import_price"], rec["export_price"])
              for line, rec in records(rows, header, problems)]
    if problems:
        raise InputError(source, problems[:MAX_PROBLEMS])
    return build_series(parsed, source)


def read_prices_file(path: Path) -> PriceSeries:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(str(path), [Problem("", f"cannot read: {err}")]) from None
    return parse_prices_csv(text, str(path))


class PriceFeed:
    """What the service asks each tick (`prices_at`), kept fresh off the tick."""

    def __init__(self, cfg: SiteConfig, base_dir: Path | None = None,
                 poll_s: float = 1.0) -> None:
        t = cfg.tariffs
        self.default = Prices(float(t.import_price_per_kwh), float(t.export_price_per_kwh))
        name = t.prices_file
        self.path: Path | None = None
        if name:
            p = Path(name)
            self.path = p if p.is_absolute() or base_dir is None else base_dir / p
        self.poll_s = poll_s
        self.series: PriceSeries | None = None
        self.last_error: str | None = None
        self.version = 0  # bumped on every accepted series (the planner re-plans on it)
        self.listeners: list[Callable[[PriceSeries], None]] = []
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) last read
        self._gap_logged = False
        self._task: asyncio.Task[None] | None = None

    # -- sources --------------------------------------------------------------------------

    def set_series(self, series: PriceSeries) -> None:
        """Accept a validated series (file or MQTT): it replaces the current one whole."""
        self.series = series
        self.version += 1
        self._gap_logged = False
        log.info("prices: %d periods from %s, %s .. %s", len(series.starts_s), series.source,
                 _iso(series.starts_s[0]), _iso(series.end_s))
        for fn in self.listeners:
            try:
                fn(series)
            except Exception:
                log.exception("price listener %r failed", fn)

    def refresh(self) -> bool:
        """Re-read the file if it changed; True if a new series was accepted. Never raises:
        a missing or bad file is logged (once per version of the file), the last good
        series stays."""
        if self.path is None:
            return False
        try:
            st = self.path.stat()
        except OSError as err:
            self._error(f"{self.path}: cannot read: {err.strerror or err}", None)
            return False
        key = (st.st_mtime_ns, st.st_size)
        if key == self._seen:
            return False
        try:
            series = read_prices_file(self.path)
        except InputError as err:
            self._error(err.render(), key)
            return False
        self._seen = key
        self.last_error = None
        self.set_series(series)
        return True

    def _error(self, text: str, key: tuple[int, int] | None) -> None:
        if text != self.last_error:
            log.error("prices refused (keeping %s): %s",
                      "the last good series" if self.series else "[tariffs]", text)
        self.last_error = text
        if key is not None:
            self._seen = key

    async def start(self) -> None:
        if self.path is None or self._task is not None:
            return
        await asyncio.to_thread(self.refresh)
        self._task = asyncio.create_task(self._poll(), name="price-file")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # never let the poll die silently
                log.exception("price file poll failed")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    # -- the tick's question ----------------------------------------------------------------

    def prices_at(self, t_s: float) -> Prices:
        s = self.series
        if s is not None:
            p = s.at(t_s)
            if p is not None:
                return p
            if not self._gap_logged:
                self._gap_logged = True
                log.warning("prices: %s outside the series from %s (%s .. %s): using "
                            "[tariffs]", _iso(t_s), s.source, _iso(s.starts_s[0]),
                            _iso(s.end_s))
        return self.default


def _iso(t_s: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(t_s, UTC).isoformat(timespec="minutes")
