"""Grid-service payments: being available, and delivering on request.

- availability = offered flexible kW x hours inside the availability windows x rate;
- activation = energy curtailed (a "reduce" request: the miners back off) or absorbed
  (an "absorb" request: the miners soak up surplus) x rate.

Curtailed or absorbed energy is measured against a baseline, as aggregators settle it:
the miners' mean power over `baseline_s` before the request started ("meter before").
Time under a request is kept out of later baselines, so one event does not depress the
next one's baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any, Literal
from zoneinfo import ZoneInfo

from controller.config.ledger import GridServiceSection, parse_window
from controller.economics.money import DIVIDE, EXACT, J_PER_KWH, micro

Request = Literal["", "reduce", "absorb"]
BUCKET_S = 60


def availability_payment(offered_kw: Decimal, hours: Decimal, rate_per_kw_h: Decimal) -> Decimal:
    return offered_kw * hours * rate_per_kw_h


def activation_payment(kwh: Decimal, rate_per_kwh: Decimal) -> Decimal:
    return kwh * rate_per_kwh


@dataclass(frozen=True)
class GridServiceTerms:
    offered_kw: Decimal
    availability_rate_per_kw_h: Decimal
    activation_rate_per_kwh: Decimal
    windows: tuple[tuple[int, int], ...]  # local minutes of day; empty = always
    baseline_s: int
    tz: ZoneInfo

    @classmethod
    def from_config(cls, sec: GridServiceSection, miner_capacity_w: float,
                    timezone: str) -> GridServiceTerms:
        kw = Decimal(repr(sec.offered_kw)) if sec.offered_kw is not None \
            else Decimal(repr(miner_capacity_w)) / 1000
        return cls(kw, sec.availability_rate_per_kw_h, sec.activation_rate_per_kwh,
                   tuple(parse_window(w) for w in sec.windows), sec.baseline_s,
                   ZoneInfo(timezone))

    def available_at(self, t_s: float) -> bool:
        if not self.windows:
            return True
        local = datetime.fromtimestamp(t_s, self.tz)
        m = local.hour * 60 + local.minute
        for start, end in self.windows:
            if start < end:
                if start <= m < end:
                    return True
            elif m >= start or m < end:  # wraps midnight
                return True
        return False


class DrBaseline:
    """Tracks the miners' recent power and measures curtailment/absorption against it.

    State is a few 60-second buckets, so it fits the ledger's checkpoint.
    """

    def __init__(self, baseline_s: int = 900) -> None:
        self.baseline_s = baseline_s
        self.buckets: dict[int, tuple[Decimal, Decimal]] = {}  # start -> (energy J, seconds)
        self.request: Request = ""
        self.baseline_w = Decimal(0)

    def update(self, start_s: float, duration_s: Decimal, miner_w: Decimal,
               request: Request) -> tuple[Decimal, Decimal]:
        """Account one sample; returns (curtailed J, absorbed J) for it."""
        if request and request != self.request:
            self.baseline_w = self.mean_before(start_s)
        self.request = request
        with localcontext(EXACT):
            if request == "reduce":
                return max(self.baseline_w - miner_w, Decimal(0)) * duration_s, Decimal(0)
            if request == "absorb":
                return Decimal(0), max(miner_w - self.baseline_w, Decimal(0)) * duration_s
            key = math.floor(start_s / BUCKET_S) * BUCKET_S
            e, s = self.buckets.get(key, (Decimal(0), Decimal(0)))
            self.buckets[key] = (e + miner_w * duration_s, s + duration_s)
        horizon = start_s - self.baseline_s - BUCKET_S
        for k in [k for k in self.buckets if k < horizon]:
            del self.buckets[k]
        return Decimal(0), Decimal(0)

    def mean_before(self, t_s: float) -> Decimal:
        """Mean miner power over [t - baseline_s, t) from whole buckets, to 1e-6 W."""
        e = s = Decimal(0)
        for k, (ek, sk) in self.buckets.items():
            if t_s - self.baseline_s <= k < t_s:
                e += ek
                s += sk
        if s == 0:
            return Decimal(0)
        with localcontext(DIVIDE):
            return micro(e / s)

    def state(self) -> dict[str, Any]:
        return {"request": self.request, "baseline_w": str(self.baseline_w),
                "buckets": [[k, str(e), str(s)] for k, (e, s) in sorted(self.buckets.items())]}

    @classmethod
    def from_state(cls, baseline_s: int, st: dict[str, Any]) -> DrBaseline:
        b = cls(baseline_s)
        b.request = st["request"]
        b.baseline_w = Decimal(st["baseline_w"])
        b.buckets = {int(k): (Decimal(e), Decimal(s)) for k, e, s in st["buckets"]}
        return b


def kwh(joules: Decimal) -> Decimal:
    with localcontext(DIVIDE):
        return joules / J_PER_KWH
