"""Revenue for the wall page (today, this month: the four money words of docs/ledger.md,
btc_value + heat_value - power_cost = net, and sats) and the ledger's
reports and export for installers, read through the ledger's own query API
(controller/ledger/query.py) so the page, the CLI and MQTT show the same numbers.

No ledger, no numbers: when the database is missing or unreadable the page says
"not available" with the reason, it never shows an estimate in its place.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import IO, Any, Protocol

from controller.errors import InputError
from controller.ledger.query import Ledger, local_day_bounds
from hmi.schemas import HistoryPoint, PoolMonth, RevenueOut, RevenuePeriod

log = logging.getLogger(__name__)


class RevenueSource(Protocol):
    def summary(self, now_s: float) -> RevenueOut: ...


class LedgerAccess(RevenueSource, Protocol):
    """Everything the HMI reads from the ledger."""

    def day_report(self, day: date) -> dict[str, Any]: ...

    def month_report(self, year: int, month: int) -> dict[str, Any]: ...

    def export_csv(self, out: IO[str], start: date | None, end: date | None) -> int: ...

    def telemetry(self, start_s: int, end_s: int) -> list[HistoryPoint]: ...


class Unavailable(Exception):
    """The ledger cannot be read now (reason for people in the message)."""


def period_of(label: str, totals: dict[str, Any]) -> RevenuePeriod:
    """The resident's split of a `Totals.as_json()`, in the ledger's own money words."""
    return RevenuePeriod(
        label=label, sats=int(totals["sats"]), btc_value=str(totals["btc_value"]),
        heat_value=str(totals["heat_value"]), power_cost=str(totals["power_cost"]),
        heat_kwh=str(totals["heat_delivered_kwh"]), miner_kwh=str(totals["miner_kwh"]),
        net=str(totals["net"]))


def pool_of(ledger: Ledger, now_s: float, months: int = 3) -> list[PoolMonth]:
    """Expected vs paid sats for the last `months` local months, when any of them has
    payouts (without any, the page has nothing to reconcile)."""
    from datetime import datetime

    today = datetime.fromtimestamp(now_s, ledger.tz).date()
    rec = ledger.reconciliation(today.year, today.month, months)
    if not any(m.payouts for m in rec):
        return []
    return [PoolMonth.model_validate(m.as_json()) for m in rec]


class LedgerRevenue:
    """The ledger at `url`, opened on first use and again after a failure (the database
    may appear after the HMI started: the ledger writer creates it on its first flush)."""

    def __init__(self, url: str, site_id: str, currency: str,
                 opener: Callable[[str, str], Ledger] = Ledger.open,
                 cache_s: float = 5.0) -> None:
        self.url = url
        self.site_id = site_id
        self.currency = currency
        self._opener = opener
        self._ledger: Ledger | None = None
        self._lock = threading.Lock()
        self._cache: tuple[float, int, RevenueOut] | None = None
        self.cache_s = cache_s

    def _open(self) -> Ledger:
        if self._ledger is None:
            try:
                self._ledger = self._opener(self.url, self.site_id)
            except InputError as err:
                raise Unavailable("; ".join(str(p) for p in err.problems) or str(err)) from None
            except Exception as err:  # a database driver error, a locked file, ...
                log.warning("ledger %s cannot be opened: %s", self.url, err)
                raise Unavailable(f"the ledger cannot be opened ({type(err).__name__})") \
                    from None
        return self._ledger

    def _call(self, fn: Callable[[Ledger], Any]) -> Any:
        with self._lock:
            ledger = self._open()
            try:
                return fn(ledger)
            except InputError:
                raise
            except Exception as err:
                log.warning("ledger %s query failed: %s", self.url, err)
                ledger.close()
                self._ledger = None
                raise Unavailable(f"the ledger cannot be read ({type(err).__name__})") \
                    from None

    def summary(self, now_s: float) -> RevenueOut:
        day = int(now_s // 86_400)
        c = self._cache
        if c is not None and c[1] == day and time.monotonic() - c[0] < self.cache_s:
            return c[2]
        try:
            snap = self._call(lambda lg: lg.snapshot(now_s))
            pool = self._call(lambda lg: pool_of(lg, now_s))
        except Unavailable as err:
            return RevenueOut(available=False, reason=str(err), currency=self.currency)
        out = RevenueOut(available=True, currency=snap["currency"],
                         today=period_of("today", snap["today"]),
                         month=period_of("month", snap["month"]), pool=pool)
        self._cache = (time.monotonic(), day, out)
        return out

    def day_report(self, day: date) -> dict[str, Any]:
        result: dict[str, Any] = self._call(lambda lg: lg.day_report(day).as_json())
        return result

    def month_report(self, year: int, month: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call(lambda lg: lg.month_report(year, month).as_json())
        return result

    def export_csv(self, out: IO[str], start: date | None, end: date | None) -> int:
        def run(lg: Ledger) -> int:
            s = local_day_bounds(start, lg.tz)[0] if start else None
            e = local_day_bounds(end, lg.tz)[1] if end else None
            return lg.export_csv(out, s, e)

        n: int = self._call(run)
        return n

    def telemetry(self, start_s: int, end_s: int) -> list[HistoryPoint]:
        rows: list[dict[str, Any]] = self._call(lambda lg: lg.telemetry(start_s, end_s))
        return [HistoryPoint(t=float(r["start_s"]), pv_w=r["pv_w"], load_w=r["load_w"],
                             miners_w=r["miner_w"], grid_w=r["grid_w"], soc_pct=r["soc_pct"],
                             tank_c=r["tank_c"], import_price=r["import_price"])
                for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None


class NoLedger:
    """A site without a ledger (`[ledger] enabled = false`)."""

    def __init__(self, currency: str, reason: str = "the ledger is switched off for this site"
                 ) -> None:
        self.currency = currency
        self.reason = reason

    def summary(self, now_s: float) -> RevenueOut:
        return RevenueOut(available=False, reason=self.reason, currency=self.currency)

    def day_report(self, day: date) -> dict[str, Any]:
        raise Unavailable(self.reason)

    def month_report(self, year: int, month: int) -> dict[str, Any]:
        raise Unavailable(self.reason)

    def export_csv(self, out: IO[str], start: date | None, end: date | None) -> int:
        raise Unavailable(self.reason)

    def telemetry(self, start_s: int, end_s: int) -> list[HistoryPoint]:
        raise Unavailable(self.reason)
