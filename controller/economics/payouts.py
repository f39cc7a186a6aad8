"""Actual pool payouts, imported from a CSV, to compare with the expected sats.

Pools export payouts in their own layouts; this reads one plain layout that any of them
can be turned into (one header row, unknown columns ignored):

| column | meaning | required |
| --- | --- | --- |
| `time` | when it was paid, ISO 8601 with offset or Z | yes |
| `amount_sats` or `amount_btc` | what was paid (exactly one of the two; BTC to 8 decimals) | yes |
| `reference` | payout id or transaction id; re-importing the same reference is a no-op | no |
| `period_start`, `period_end` | the mining period it pays for (FPPS: the previous day) | no |

Without a period, a payout is compared by the time it was paid. The file is refused as
a whole, with every bad cell named, if any row is wrong.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from controller.economics.csvrows import aware_time, records
from controller.economics.hashprice import SATS_PER_BTC
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Payout:
    time_s: int
    sats: int
    reference: str
    period_start_s: int | None = None
    period_end_s: int | None = None

    @property
    def attributed_s(self) -> int:
        """The time it counts at when comparing by period (period start, else paid time)."""
        return self.period_start_s if self.period_start_s is not None else self.time_s


@dataclass(frozen=True)
class PayoutComparison:
    expected_msat: int
    actual_sats: int
    payouts: int

    @property
    def expected_sats(self) -> int:
        return self.expected_msat // 1000

    @property
    def ratio(self) -> Decimal | None:
        """Actual / expected (1.00 = the pool paid exactly the expectation)."""
        if self.expected_msat <= 0:
            return None
        return (Decimal(self.actual_sats * 1000) / Decimal(self.expected_msat)).quantize(
            Decimal("0.0001"))


@dataclass(frozen=True)
class MonthReconciliation:
    """One month of pool reconciliation: what the ledger expected, what the pool paid.

    `expected_msat` is after the pool fee (what an FPPS pool owes); `gross_msat` before it
    (None when the month's terms do not say the fee). Paid - expected is the pool's luck
    (PPLNS, solo) and whatever it charged beyond the configured fee."""

    label: str  # YYYY-MM, the site's local month
    expected_msat: int
    gross_msat: int | None
    paid_sats: int
    payouts: int

    @property
    def expected_sats(self) -> int:
        return self.expected_msat // 1000

    @property
    def fee_sats(self) -> int | None:
        """Expected pool fee at the configured rate (gross - expected)."""
        if self.gross_msat is None:
            return None
        return self.gross_msat // 1000 - self.expected_sats

    @property
    def difference_sats(self) -> int:
        """Paid - expected: positive, the pool paid more (luck); negative, less."""
        return self.paid_sats - self.expected_sats

    @property
    def ratio(self) -> Decimal | None:
        """Paid / expected (1.0000 = the expectation exactly), None without both."""
        if self.expected_msat <= 0 or self.payouts == 0:
            return None
        return (Decimal(self.paid_sats * 1000) / Decimal(self.expected_msat)).quantize(
            Decimal("0.0001"))

    def as_json(self) -> dict[str, object]:
        r = self.ratio
        return {"month": self.label, "expected_sats": self.expected_sats,
                "gross_sats": None if self.gross_msat is None else self.gross_msat // 1000,
                "pool_fee_sats": self.fee_sats, "paid_sats": self.paid_sats,
                "payouts": self.payouts, "difference_sats": self.difference_sats,
                "ratio": None if r is None else str(r)}


def fee_pct_of_key(key: str) -> Decimal | None:
    """The pool fee named in a ledger interval's `btc_terms` key (`...;fee=2`), or None
    (`mixed:N`, empty)."""
    for part in key.split(";"):
        if part.startswith("fee="):
            try:
                return Decimal(part[4:])
            except InvalidOperation:
                return None
    return None


def _amount(text: str, unit: str) -> int | str:
    raw = text.strip()
    try:
        d = Decimal(raw)
    except InvalidOperation:
        return f"not a number: {raw!r}"
    if not d.is_finite():
        return f"not a finite number: {raw!r}"
    if d < 0:
        return f"must not be negative (is {raw})"
    sats = d * SATS_PER_BTC if unit == "btc" else d
    if sats != sats.to_integral_value():
        return f"{raw} is not a whole number of sats"
    return int(sats)


def read_payouts_csv(path: str | Path) -> list[Payout]:
    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(source, [Problem("", f"cannot read: {err}")]) from None
    rows = list(csv.reader(text.splitlines()))
    problems: list[Problem] = []
    if not rows:
        problems.append(Problem("", "file is empty (no header row)"))
        header: list[str] = []
    else:
        header = [h.strip() for h in rows[0]]
    if rows and "time" not in header:
        problems.append(Problem("header", "required column 'time' is missing"))
    units = [u for u in ("sats", "btc") if f"amount_{u}" in header]
    if rows and len(units) != 1:
        problems.append(Problem("header", "needs exactly one of 'amount_sats' and 'amount_btc'"))
    if problems:
        log.warning("refused payouts %s: %s", source, "; ".join(map(str, problems)))
        raise InputError(source, problems)
    unit = units[0]
    out: list[Payout] = []
    seen: dict[str, int] = {}
    for line, cell in records(rows, header, problems):
        t = aware_time(cell["time"])
        if isinstance(t, str):
            problems.append(Problem(f"row {line}, column time", t))
        amount = _amount(cell[f"amount_{unit}"], unit)
        if isinstance(amount, str):
            problems.append(Problem(f"row {line}, column amount_{unit}", amount))
        period: list[int | None] = []
        for name in ("period_start", "period_end"):
            text_ = cell.get(name, "").strip()
            if not text_:
                period.append(None)
                continue
            pt = aware_time(text_)
            if isinstance(pt, str):
                problems.append(Problem(f"row {line}, column {name}", pt))
                period.append(None)
            else:
                period.append(int(pt.timestamp()))
        ps, pe = period
        if (ps is None) != (pe is None) and not any(
                pr.where.startswith(f"row {line}, column period") for pr in problems):
            problems.append(Problem(f"row {line}, column period_end",
                                    "give both period_start and period_end, or neither"))
        elif ps is not None and pe is not None and pe <= ps:
            problems.append(Problem(f"row {line}, column period_end",
                                    "must be after period_start"))
        if isinstance(t, str) or isinstance(amount, str):
            continue
        ref = cell.get("reference", "").strip() or f"{cell['time'].strip()}/{amount}"
        if ref in seen:
            problems.append(Problem(f"row {line}, column reference",
                                    f"{ref!r} already on row {seen[ref]}"))
            continue
        seen[ref] = line
        out.append(Payout(int(t.timestamp()), amount, ref, ps, pe))
    if problems:
        log.warning("refused payouts %s: %s", source, "; ".join(map(str, problems)))
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(Problem("", f"... and {len(problems) - MAX_PROBLEMS} more problems"))
        raise InputError(source, shown)
    return out
