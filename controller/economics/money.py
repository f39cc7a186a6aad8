"""Exact numbers for the ledger: Decimal money with its currency, and the conversion rules.

Every float that enters the accounting (a measured power, a price read from a CSV) is
taken at its shortest decimal representation (`repr`), so 0.20848 stays 0.20848 and not
0.2084799999999999986..., and the same input always gives the same cents. Sums and
products are then exact: `EXACT` has 80 digits and traps `Inexact`, so a computation that
would have to round raises instead of drifting. Values are rounded once, when an interval
is closed, to `MICRO` (1e-6 of the currency unit or of a kWh); reports round to cents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, localcontext
from fractions import Fraction

MICRO = Decimal("0.000001")
CENT = Decimal("0.01")
EXACT = Context(prec=80, traps=[Inexact])
"""Context for accumulation: 80 digits, and an error rather than silent rounding."""
DIVIDE = Context(prec=80)
"""Context for the few divisions (per kWh, per efficiency) done once per interval."""
J_PER_KWH = Decimal(3_600_000)


def dec(x: float | int | str | Decimal) -> Decimal:
    """A number as Decimal: floats by their shortest repr; NaN and infinities refused."""
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {x!r}")
        d = Decimal(repr(x))
    else:
        d = Decimal(x)
    if not d.is_finite():
        raise ValueError(f"not a finite number: {x!r}")
    return d


def micro(x: Decimal | Fraction) -> Decimal:
    """Round to 1e-6, half to even (banker's rounding, no drift in long sums)."""
    if isinstance(x, Fraction):
        return quantize_fraction(x, MICRO)
    return x.quantize(MICRO, rounding=ROUND_HALF_EVEN, context=DIVIDE)


def quantize_fraction(x: Fraction, step: Decimal) -> Decimal:
    """An exact rational rounded to a multiple of `step`, half to even."""
    q = x / Fraction(step)
    n = round(q)  # Fraction.__round__ rounds half to even
    with localcontext(DIVIDE):
        return (Decimal(n) * step).quantize(step)


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN, context=DIVIDE)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount and its currency. Adding two currencies is an error, never a number."""

    amount: Decimal
    currency: str

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return f"{cents(self.amount)} {self.currency}"
