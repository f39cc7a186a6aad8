"""Reading the ledger: current intervals, totals, day and month reports, CSV export,
pool payouts and corrections. The CLI, the HMI and the MQTT bridge all use this API, so
they show the same numbers.

"Current" rows are the ones no correction supersedes. Reports group them by the site's
local day (a DST day has 92 or 100 quarter hours, and the report says how many it has).
"""

from __future__ import annotations

import calendar
import csv
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, and_, case, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from controller.economics.money import Money, micro
from controller.economics.payouts import (
    MonthReconciliation,
    Payout,
    PayoutComparison,
    fee_pct_of_key,
)
from controller.errors import InputError, Problem
from controller.ledger.accumulate import (
    ENERGY_FIELDS,
    MONEY_FIELDS,
    net_of,
    power_cost_of,
    value_per_kwh,
)
from controller.ledger.db import make_engine, migrate
from controller.ledger.tables import (
    INTERVAL_VALUE_COLUMNS,
    LedgerInterval,
    LedgerPayout,
    LedgerSite,
    LedgerTelemetry,
)
from controller.ledger.writer import table

log = logging.getLogger(__name__)

SUMMED = (*(f"{e}_kwh" for e in ENERGY_FIELDS), "flex_offered_kwh", "terahashes",
          "expected_msat", "covered_s",
          *(m for m in MONEY_FIELDS))
"""Columns that add up over intervals."""
CORRECTABLE = frozenset(SUMMED) - {"net"}
"""What a correction may change (net is always recomputed from its terms)."""


@dataclass(frozen=True)
class Totals:
    """Sums over intervals; money in `currency`."""

    intervals: int
    currency: str
    sums: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.sums[name]

    @property
    def sats(self) -> int:
        """Whole expected sats (millisats floored)."""
        return int(self.sums["expected_msat"]) // 1000

    def money(self, name: str) -> Money:
        return Money(self.sums[name], self.currency)

    @property
    def value_per_kwh(self) -> Decimal | None:
        """Realised (BTC + heat) per kWh of miner energy: the break-even import price."""
        return value_per_kwh(dict(self.sums))

    @property
    def power_cost(self) -> Decimal:
        """What the miners' power cost, less grid-service pay (net = btc + heat - this)."""
        return power_cost_of(self.sums)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"intervals": self.intervals, "currency": self.currency,
                               "sats": self.sats}
        for k, v in self.sums.items():
            out[k] = v if isinstance(v, int) else str(v)
        out["power_cost"] = str(self.power_cost)
        vpk = self.value_per_kwh
        out["value_per_kwh"] = None if vpk is None else str(vpk)
        return out


def _sum_rows(rows: list[dict[str, Any]], currency: str) -> Totals:
    sums: dict[str, Any] = {k: (0 if k == "expected_msat" else Decimal(0)) for k in SUMMED}
    for r in rows:
        for k in SUMMED:
            sums[k] += r[k]
    return Totals(len(rows), currency, sums)


@dataclass(frozen=True)
class ReportRow:
    label: str
    start_s: int
    totals: Totals


@dataclass(frozen=True)
class Report:
    site_id: str
    currency: str
    timezone: str
    kind: str  # "day" | "month"
    label: str
    start_s: int
    end_s: int
    interval_s: int
    rows: list[ReportRow]
    total: Totals
    payouts: PayoutComparison
    corrected: int = 0  # current rows that are corrections
    # Month reports: expected vs paid sats for the 12 months up to this one (pool luck, fees)
    reconciliation: tuple[MonthReconciliation, ...] = ()

    @property
    def expected_intervals(self) -> int:
        return (self.end_s - self.start_s) // self.interval_s

    def as_json(self) -> dict[str, Any]:
        """The report for the HMI and the MQTT bridge (Decimals as strings, exact)."""
        p = self.payouts
        return {
            "site_id": self.site_id, "currency": self.currency, "timezone": self.timezone,
            "kind": self.kind, "label": self.label,
            "start": _iso(self.start_s), "end": _iso(self.end_s),
            "interval_s": self.interval_s, "expected_intervals": self.expected_intervals,
            "corrected_intervals": self.corrected,
            "total": self.total.as_json(),
            "rows": [{"label": r.label, "start": _iso(r.start_s), **r.totals.as_json()}
                     for r in self.rows],
            "payouts": {"count": p.payouts, "actual_sats": p.actual_sats,
                        "expected_sats": p.expected_sats,
                        "ratio": None if p.ratio is None else str(p.ratio)},
            "pool_reconciliation": [m.as_json() for m in self.reconciliation],
        }


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local calendar day in UTC epoch seconds (23/24/25 h long)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


class Ledger:
    """The query API over one site's ledger."""

    def __init__(self, engine: Engine, site_id: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        t = table(LedgerSite)
        with engine.connect() as conn:
            sites = list(conn.execute(select(t)).mappings())
        if site_id is None:
            if len(sites) != 1:
                names = ", ".join(sorted(s["site_id"] for s in sites)) or "none"
                raise InputError(str(engine.url), [Problem(
                    "--site", f"the database holds {len(sites)} sites ({names}); name one")])
            row = sites[0]
        else:
            found = [s for s in sites if s["site_id"] == site_id]
            if not found:
                raise InputError(str(engine.url), [Problem(
                    "--site", f"no ledger for site {site_id!r} in this database")])
            row = found[0]
        self.site_pk = int(row["id"])
        self.site_id = str(row["site_id"])
        self.currency = str(row["currency"])
        self.timezone = str(row["timezone"])
        self.tz = ZoneInfo(self.timezone)
        self.interval_s = int(row["interval_s"])

    @classmethod
    def open(cls, url: str, site_id: str | None = None, **kw: Any) -> Ledger:
        """Open an existing ledger (its schema upgraded if older)."""
        engine = make_engine(url, create=False)
        migrate(engine)
        return cls(engine, site_id, **kw)

    def close(self) -> None:
        self.engine.dispose()

    # -- intervals ----------------------------------------------------------------------------

    def _where(self, start_s: int | None, end_s: int | None,
               history: bool = False) -> ColumnElement[bool]:
        t = table(LedgerInterval)
        conds: list[ColumnElement[bool]] = [t.c.site == self.site_pk]
        if start_s is not None:
            conds.append(t.c.start_s >= start_s)
        if end_s is not None:
            conds.append(t.c.start_s < end_s)
        if not history:
            later = table(LedgerInterval).alias("later")
            conds.append(~exists(select(later.c.id).where(later.c.supersedes_id == t.c.id)))
        return and_(*conds)

    def intervals(self, start_s: int | None = None, end_s: int | None = None,
                  history: bool = False) -> list[dict[str, Any]]:
        """Interval rows (current ones, or every revision with `history`), by time."""
        t = table(LedgerInterval)
        stmt = select(t).where(self._where(start_s, end_s, history)) \
            .order_by(t.c.start_s, t.c.rev)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def totals(self, start_s: int | None = None, end_s: int | None = None) -> Totals:
        """Sums over current intervals, computed by the database."""
        t = table(LedgerInterval)
        cols = [func.coalesce(func.sum(t.c[k]), 0).label(k) for k in SUMMED]
        stmt = select(func.count().label("n"), *cols).where(self._where(start_s, end_s))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().one()
        # SUM keeps the column type, so FixedDecimal columns come back as Decimal.
        sums = {k: int(row[k]) if k == "expected_msat" else row[k] for k in SUMMED}
        return Totals(int(row["n"]), self.currency, sums)

    def latest(self) -> dict[str, Any] | None:
        t = table(LedgerInterval)
        stmt = select(t).where(self._where(None, None)).order_by(t.c.start_s.desc()).limit(1)
        with self.engine.connect() as conn:
            r = conn.execute(stmt).mappings().first()
        return None if r is None else dict(r)

    def telemetry(self, start_s: int, end_s: int) -> list[dict[str, Any]]:
        """Telemetry history rows in [start, end) (for the HMI's charts)."""
        t = table(LedgerTelemetry)
        stmt = select(t).where(t.c.site == self.site_pk, t.c.start_s >= start_s,
                               t.c.start_s < end_s).order_by(t.c.start_s)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def snapshot(self, now_s: float) -> dict[str, Any]:
        """Today and this month so far, and the last closed interval: what the HMI shows
        and the MQTT bridge publishes (retained) after each flush."""
        today = datetime.fromtimestamp(now_s, self.tz).date()
        d0, d1 = local_day_bounds(today, self.tz)
        m0, _ = local_day_bounds(today.replace(day=1), self.tz)
        last = self.latest()
        return {
            "site_id": self.site_id, "currency": self.currency, "at": _iso(now_s),
            "today": self.totals(d0, d1).as_json(),
            "month": self.totals(m0, d1).as_json(),
            "latest_interval": None if last is None else {
                "start": _iso(last["start_s"]), "duration_s": last["duration_s"],
                **{k: (v if isinstance(v, int) or v is None else str(v))
                   for k, v in last.items() if k in INTERVAL_VALUE_COLUMNS
                   and k not in ("start_s", "duration_s")}},
        }

    # -- reports ------------------------------------------------------------------------------

    def day_report(self, day: date) -> Report:
        start, end = local_day_bounds(day, self.tz)
        rows = self.intervals(start, end)
        out = [ReportRow(datetime.fromtimestamp(r["start_s"], self.tz).strftime("%H:%M"),
                         r["start_s"], _sum_rows([r], self.currency)) for r in rows]
        return Report(self.site_id, self.currency, self.timezone, "day", day.isoformat(),
                      start, end, self.interval_s, out, _sum_rows(rows, self.currency),
                      self.payouts(start, end), sum(1 for r in rows if r["rev"] > 0))

    def month_report(self, year: int, month: int) -> Report:
        """One row per local day, summed by the database in one pass (GROUP BY day)."""
        days = [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
        bounds = [local_day_bounds(d, self.tz) for d in days]
        start, end = bounds[0][0], bounds[-1][1]
        t = table(LedgerInterval)
        day_no = case(*[(t.c.start_s < e, i) for i, (_, e) in enumerate(bounds)]).label("day")
        cols = [func.sum(t.c[k]).label(k) for k in SUMMED]
        stmt = (select(day_no, func.count().label("n"),
                       func.sum(case((t.c.rev > 0, 1), else_=0)).label("corrected"), *cols)
                .where(self._where(start, end)).group_by(day_no).order_by(day_no))
        with self.engine.connect() as conn:
            got = list(conn.execute(stmt).mappings())
        out = []
        for g in got:
            sums = {k: int(g[k]) if k == "expected_msat" else g[k] for k in SUMMED}
            i = int(g["day"])
            out.append(ReportRow(days[i].isoformat(), bounds[i][0],
                                 Totals(int(g["n"]), self.currency, sums)))
        total = {k: sum((r.totals[k] for r in out), 0 if k == "expected_msat" else Decimal(0))
                 for k in SUMMED}
        return Report(self.site_id, self.currency, self.timezone, "month",
                      f"{year:04d}-{month:02d}", start, end, self.interval_s, out,
                      Totals(sum(r.totals.intervals for r in out), self.currency, total),
                      self.payouts(start, end), sum(int(g["corrected"] or 0) for g in got),
                      tuple(self.reconciliation(year, month)))

    # -- payouts ------------------------------------------------------------------------------

    def import_payouts(self, payouts: list[Payout]) -> int:
        """Store payouts; ones already stored (same reference) are skipped. Returns new."""
        t = table(LedgerPayout)
        with self.engine.begin() as conn:
            known = set(conn.execute(select(t.c.reference).where(t.c.site == self.site_pk))
                        .scalars())
            new = [p for p in payouts if p.reference not in known]
            if new:
                conn.execute(insert(t), [
                    {"site": self.site_pk, "time_s": p.time_s, "sats": p.sats,
                     "reference": p.reference, "period_start_s": p.period_start_s,
                     "period_end_s": p.period_end_s, "imported_at_s": int(self.clock())}
                    for p in new])
        return len(new)

    def payouts(self, start_s: int, end_s: int) -> PayoutComparison:
        """Payouts attributed to [start, end) (by period start, else by paid time) against
        the expected sats of the intervals their periods cover (or of [start, end))."""
        t = table(LedgerPayout)
        attributed = func.coalesce(t.c.period_start_s, t.c.time_s)
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(t).where(
                t.c.site == self.site_pk, attributed >= start_s, attributed < end_s))
                .mappings())
        lo = min([start_s, *(r["period_start_s"] for r in rows if r["period_start_s"])])
        hi = max([end_s, *(r["period_end_s"] for r in rows if r["period_end_s"])])
        if rows and all(r["period_start_s"] is not None for r in rows):
            lo = min(r["period_start_s"] for r in rows)
            hi = max(r["period_end_s"] for r in rows)
        expected = int(self.totals(lo, hi)["expected_msat"]) if rows else \
            int(self.totals(start_s, end_s)["expected_msat"])
        return PayoutComparison(expected, sum(int(r["sats"]) for r in rows), len(rows))

    def reconciliation(self, year: int, month: int, months: int = 12
                       ) -> list[MonthReconciliation]:
        """Pool reconciliation for the `months` local months ending with year-month: the
        sats the ledger expected (after and before the pool fee) against the payouts
        attributed to each month (by the period they pay for, else when they were paid).
        Months with neither are left out."""
        if not 1 <= months <= 120:
            raise InputError("reconciliation", [Problem("months", "must be 1..120")])
        firsts: list[date] = []
        y, m = year, month
        for _ in range(months):
            firsts.append(date(y, m, 1))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        firsts.reverse()
        nxt = date(year + month // 12, month % 12 + 1, 1)
        bounds = [local_day_bounds(d, self.tz)[0] for d in (*firsts, nxt)]
        start, end = bounds[0], bounds[-1]
        t = table(LedgerInterval)
        month_no = case(*[(t.c.start_s < e, i) for i, e in enumerate(bounds[1:])]) \
            .label("month")
        stmt = (select(month_no, t.c.btc_terms, func.sum(t.c.expected_msat).label("msat"))
                .where(self._where(start, end)).group_by(month_no, t.c.btc_terms))
        p = table(LedgerPayout)
        attributed = func.coalesce(p.c.period_start_s, p.c.time_s)
        with self.engine.connect() as conn:
            sums = list(conn.execute(stmt).mappings())
            paid = list(conn.execute(select(attributed.label("at"), p.c.sats).where(
                p.c.site == self.site_pk, attributed >= start, attributed < end)).mappings())
        expected = [0] * months
        gross: list[Fraction | None] = [Fraction(0)] * months
        by_month: dict[int, list[tuple[str, int]]] = {}
        for r in sums:
            by_month.setdefault(int(r["month"]), []).append((r["btc_terms"], int(r["msat"])))
        for i, rows in by_month.items():
            named = [(f, n) for k, n in rows if (f := fee_pct_of_key(k)) is not None]
            # An interval under two sets of terms ("mixed:2") still had the site's one pool
            # fee: the fee of the month's other intervals.
            fallback = max(named, key=lambda x: x[1])[0] if named else None
            g: Fraction | None = Fraction(0)
            for k, n in rows:
                expected[i] += n
                fee = fee_pct_of_key(k)
                fee = fallback if fee is None else fee
                if fee is None or g is None:
                    g = None
                else:
                    g += Fraction(n) / (1 - Fraction(fee) / 100)
            gross[i] = g
        paid_sats, count = [0] * months, [0] * months
        for r in paid:
            i = next(j for j, e in enumerate(bounds[1:]) if int(r["at"]) < e)
            paid_sats[i] += int(r["sats"])
            count[i] += 1
        out = []
        for i, d in enumerate(firsts):
            if not expected[i] and not count[i]:
                continue
            gi = gross[i]
            out.append(MonthReconciliation(f"{d.year:04d}-{d.month:02d}", expected[i],
                                           None if gi is None else int(gi), paid_sats[i],
                                           count[i]))
        return out

    # -- corrections --------------------------------------------------------------------------

    def correct(self, interval_id: int, changes: Mapping[str, Decimal | int],
                reason: str) -> dict[str, Any]:
        """Append a correction of interval `interval_id`; net is recomputed. Returns it."""
        problems = [Problem(k, "cannot be corrected (unknown column, or derived)")
                    for k in changes if k not in CORRECTABLE]
        if not reason.strip():
            problems.append(Problem("reason", "a correction needs a reason"))
        for k, v in changes.items():
            if k == "expected_msat" and not isinstance(v, int):
                problems.append(Problem(k, "must be an integer (millisats)"))
            elif k != "expected_msat" and not isinstance(v, Decimal):
                problems.append(Problem(k, "must be a Decimal"))
            elif isinstance(v, Decimal) and micro(v) != v:
                problems.append(Problem(k, "more than 6 decimal places"))
        t = table(LedgerInterval)
        with self.engine.connect() as conn:
            old = conn.execute(select(t).where(t.c.id == interval_id,
                                               t.c.site == self.site_pk)).mappings().first()
            later = conn.execute(select(t.c.id).where(t.c.supersedes_id == interval_id)) \
                .scalar()
        if old is None:
            problems.append(Problem("interval", f"no interval {interval_id} for site "
                                                f"{self.site_id!r}"))
        elif later is not None:
            problems.append(Problem("interval", f"interval {interval_id} was already "
                                                f"corrected by {later}; correct that one"))
        if problems:
            log.warning("refused ledger correction of %s: %s", interval_id,
                        "; ".join(map(str, problems)))
            raise InputError(f"correction of interval {interval_id}", problems)
        assert old is not None
        row = {k: old[k] for k in INTERVAL_VALUE_COLUMNS}
        row.update(changes)
        row["net"] = net_of(row)
        row["value_per_kwh"] = value_per_kwh(row)
        row.update(site=self.site_pk, rev=int(old["rev"]) + 1, supersedes_id=interval_id,
                   source="correction", reason=reason.strip()[:500],
                   recorded_at_s=int(self.clock()))
        try:
            with self.engine.begin() as conn:
                res = conn.execute(insert(t).values(**row))
                pk = res.inserted_primary_key
        except IntegrityError as err:
            raise InputError(f"correction of interval {interval_id}", [Problem(
                "interval", f"a concurrent correction won: {err.orig}")]) from None
        assert pk is not None
        row["id"] = int(pk[0])
        log.info("ledger interval %s corrected by %s: %s", interval_id, row["id"], reason)
        return row

    # -- export -------------------------------------------------------------------------------

    def export_csv(self, out: IO[str], start_s: int | None = None, end_s: int | None = None,
                   history: bool = False) -> int:
        """Write intervals as CSV (exact decimals, UTC times); returns the row count."""
        rows = self.intervals(start_s, end_s, history)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(EXPORT_COLUMNS)
        for r in rows:
            w.writerow(_export_row(r, self.currency))
        return len(rows)


EXPORT_COLUMNS = ("interval_start", "interval_end", "id", "rev", "supersedes_id", "source",
                  "reason", "currency", *(c for c in INTERVAL_VALUE_COLUMNS
                                          if c not in ("start_s", "duration_s")))


def _export_row(r: dict[str, Any], currency: str) -> list[str]:
    out = [_iso(r["start_s"]), _iso(r["start_s"] + r["duration_s"]), str(r["id"]),
           str(r["rev"]), "" if r["supersedes_id"] is None else str(r["supersedes_id"]),
           r["source"], r["reason"] or "", currency]
    for c in EXPORT_COLUMNS[8:]:
        v = r[c]
        out.append("" if v is None else str(v))
    return out


@dataclass
class _Col:
    title: str
    width: int
    get: Callable[[Totals], str]
    extra: dict[str, Any] = field(default_factory=dict)


def render_report(rep: Report) -> str:
    """The report as a terminal table."""
    places = Decimal("0.0001") if rep.kind == "day" else Decimal("0.01")

    def m(name: str) -> Callable[[Totals], str]:
        return lambda t: f"{t[name].quantize(places)}"

    def k(name: str) -> Callable[[Totals], str]:
        return lambda t: f"{t[name].quantize(Decimal('0.001'))}"

    cols = [
        _Col("miner kWh", 9, k("miner_kwh")),
        _Col("PV", 7, k("miner_from_pv_kwh")),
        _Col("battery", 7, k("miner_from_battery_kwh")),
        _Col("grid", 7, k("miner_from_grid_kwh")),
        _Col("sats", 7, lambda t: str(t.sats)),
        _Col("BTC", 9, m("btc_value")),
        _Col("heat kWh", 8, k("heat_delivered_kwh")),
        _Col("heat", 8, m("heat_value")),
        _Col("grid cost", 9, m("grid_cost")),
        _Col("forgone", 8, m("forgone_export")),
        _Col("services", 8,
             lambda t: f"{(t['availability_pay'] + t['activation_pay']).quantize(places)}"),
        _Col("net", 9, m("net")),
    ]
    first_w = 5 if rep.kind == "day" else 10
    head = f"{'time' if rep.kind == 'day' else 'day':<{first_w}}  " + "  ".join(
        f"{c.title:>{c.width}}" for c in cols)
    lines = [
        f"Hearth ledger: site {rep.site_id}, {rep.kind} {rep.label} ({rep.timezone}), "
        f"money in {rep.currency}",
        f"{rep.total.intervals} of {rep.expected_intervals} {rep.interval_s // 60}-min "
        f"intervals recorded" + (f", {rep.corrected} corrected" if rep.corrected else ""),
        "miner energy by source (kWh): PV / battery / grid; services = grid-service payments",
        "",
        head,
        "-" * len(head),
    ]
    for r in rep.rows:
        lines.append(f"{r.label:<{first_w}}  " + "  ".join(
            f"{c.get(r.totals):>{c.width}}" for c in cols))
    lines.append("-" * len(head))
    lines.append(f"{'total':<{first_w}}  " + "  ".join(
        f"{c.get(rep.total):>{c.width}}" for c in cols))
    vpk = rep.total.value_per_kwh
    lines.append("")
    lines.append(f"import cost {rep.total['import_cost'].quantize(places)}, export revenue "
                 f"{rep.total['export_revenue'].quantize(places)} (whole site); value per "
                 f"miner kWh (BTC + heat) {'-' if vpk is None else vpk.quantize(places)}")
    p = rep.payouts
    if p.payouts:
        ratio = "-" if p.ratio is None else f"{p.ratio * 100:.1f} %"
        lines.append(f"pool payouts: {p.payouts}, {p.actual_sats} sats paid against "
                     f"{p.expected_sats} sats expected ({ratio})")
    if rep.reconciliation:
        lines.extend(render_reconciliation(rep.reconciliation))
    return "\n".join(lines) + "\n"


def render_reconciliation(months: tuple[MonthReconciliation, ...]) -> list[str]:
    """Expected vs paid sats per month: the pool's fee at the configured rate, then what
    luck (and any fee beyond it) made of the rest."""
    head = (f"{'month':<7}  {'gross':>10}  {'pool fee':>9}  {'expected':>10}  {'paid':>10}  "
            f"{'paid-exp':>10}  {'paid/exp':>8}  payouts")
    out = ["", "pool reconciliation (sats; gross = before the pool fee, expected = after it; "
               "paid by the period paid for):", head, "-" * len(head)]
    for m in months:
        gross = "-" if m.gross_msat is None else str(m.gross_msat // 1000)
        fee = "-" if m.fee_sats is None else str(m.fee_sats)
        ratio = "-" if m.ratio is None else f"{m.ratio * 100:.1f} %"
        out.append(f"{m.label:<7}  {gross:>10}  {fee:>9}  {m.expected_sats:>10}  "
                   f"{m.paid_sats:>10}  {m.difference_sats:>+10}  {ratio:>8}  {m.payouts}")
    return out
