"""Per-interval accounting: samples in, one exact interval row out.

A `Sample` is what one control tick (or one simulator row) contributes: average powers
over `duration_s`, the prices in force, the Bitcoin terms and any demand-response request.
`IntervalAccumulator` sums a clock-aligned interval's samples exactly (energy in J as
Decimal, money as J x price, hashes per set of Bitcoin terms) and `close()` turns them
into the interval's columns, rounded once to 1e-6 (kWh, currency) and to millisats.

Rules (docs/ledger.md explains them with an example):

- energy: J = W x s; kWh = J / 3.6e6.
- miner energy split (the simulator's rule): PV serves the house first, then the miners;
  then battery discharge (house first); the grid supplies the rest.
- forgone export = PV the miners used, up to what the export limit would have let out,
  x export price (negative export prices make it a gain).
- grid cost = miner energy from the grid x import price; battery cost = miner energy from
  the battery x the configured battery price (default: the export price).
- sats = terahashes x expected sats per TH (hashprice terms, after pool fee), floored to
  millisats per interval: an S9 earns ~7 sats per 15 min, so whole sats would lose up to
  14 %. BTC value = the same expectation x BTC price.
- heat value = heat the tank delivered x backup energy price / backup efficiency.
- grid services: offered kW x hours inside the windows x rate, plus (curtailed +
  absorbed) kWh x rate (see controller/economics/grid_service.py).
- net = BTC + heat + grid services - grid cost - forgone export - battery cost, each term
  rounded first, so the row adds up exactly as displayed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from controller.economics.grid_service import DrBaseline, GridServiceTerms, Request
from controller.economics.hashprice import BtcTerms, GivenHashprice, Hashvalue, NetworkTerms
from controller.economics.heat import HeatValuation
from controller.economics.money import DIVIDE, EXACT, J_PER_KWH, dec, micro

ENERGY_FIELDS = (
    "pv", "load", "import", "export", "miner", "miner_from_pv", "miner_from_battery",
    "miner_from_grid", "forgone_export", "heat_to_tank", "heat_delivered", "backup_heat",
    "dr_curtailed", "dr_absorbed",
)
"""Energies summed per interval (J while open; `<name>_kwh` columns when closed)."""
MONEY_FIELDS = ("import_cost", "export_revenue", "grid_cost", "forgone_export",
                "battery_cost", "btc_value", "heat_value", "availability_pay",
                "activation_pay", "net")
"""Money columns of a closed interval (site currency, 1e-6)."""
_NUMERATORS = ("import_cost", "export_revenue", "grid_cost", "forgone_export",
               "battery_cost", "heat", "import_price_s", "export_price_s")
_ZERO = Decimal(0)
MILLI = Decimal("0.001")


class Sample(NamedTuple):
    """One tick's worth of flows. Powers are averages over the sample (W, import +,
    battery charge +); prices per kWh in the site currency (may be negative)."""

    start_s: float  # UTC epoch seconds
    duration_s: float
    pv_w: float
    load_w: float
    grid_w: float
    battery_w: float
    miner_w: float
    miner_from_pv_w: float
    miner_from_battery_w: float
    miner_from_grid_w: float
    heat_to_tank_w: float
    heat_from_tank_w: float
    backup_heat_w: float
    terahashes: float
    import_price: Decimal
    export_price: Decimal
    btc: BtcTerms
    dr_request: Request = ""
    soc_pct: float = math.nan
    tank_c: float = math.nan
    dr_events: tuple[str, ...] = ()  # "source:event_id" of the DR events in force

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @classmethod
    def from_meters(cls, start_s: float, duration_s: float, *, pv_w: float, grid_w: float,
                    battery_w: float, miner_w: float, hashrate_ths: float,
                    import_price: Decimal, export_price: Decimal, btc: BtcTerms,
                    heat_to_tank_w: float = 0.0, heat_from_tank_w: float = 0.0,
                    backup_heat_w: float = 0.0, dr_request: Request = "",
                    soc_pct: float = math.nan, tank_c: float = math.nan,
                    dr_events: tuple[str, ...] = ()) -> Sample:
        """A live tick's sample: house load from the balance (pv + grid = load + miners +
        battery), miner energy split by source. `start_s` is wall-clock UTC (the control
        core's monotonic clock is not a calendar)."""
        load = pv_w + grid_w - miner_w - battery_w
        fpv, fbat, fgrid = split_miner_power(pv_w, max(load, 0.0), miner_w, battery_w)
        return cls(start_s, duration_s, pv_w, max(load, 0.0), grid_w, battery_w, miner_w,
                   fpv, fbat, fgrid, heat_to_tank_w, heat_from_tank_w, backup_heat_w,
                   hashrate_ths * duration_s, import_price, export_price, btc, dr_request,
                   soc_pct, tank_c, dr_events)


def split_miner_power(pv_w: float, load_w: float, miner_w: float, battery_w: float
                      ) -> tuple[float, float, float]:
    """(from PV, from battery, from grid): PV serves the house first, then the miners;
    then battery discharge (house first); the grid the rest. Same rule as `hearth sim`."""
    from_pv = min(miner_w, max(pv_w - load_w, 0.0))
    rest = miner_w - from_pv
    discharge = max(-battery_w, 0.0)
    from_bat = min(rest, max(discharge - max(load_w - pv_w, 0.0), 0.0))
    return from_pv, from_bat, rest - from_bat


def interval_start(t_s: float, interval_s: int, tz: ZoneInfo) -> int:
    """Start of the clock-aligned interval containing `t_s` (UTC epoch seconds).

    Aligned to the local clock like market intervals: every real UTC offset is a multiple
    of 15 min, so intervals that divide 15 min align the same in UTC; longer ones (30,
    60 min) are aligned to local time, which matters in zones offset by :30 or :45.
    """
    if 900 % interval_s == 0:
        return math.floor(t_s / interval_s) * interval_s
    off = datetime.fromtimestamp(t_s, tz).utcoffset()
    off_s = int(off.total_seconds()) if off is not None else 0
    return math.floor((t_s + off_s) / interval_s) * interval_s - off_s


@dataclass(frozen=True)
class LedgerEconomics:
    """Site terms the accounting needs besides what each sample carries."""

    currency: str
    export_limit_w: Decimal
    heat: HeatValuation
    battery_price_per_kwh: Decimal | None = None  # None: the sample's export price
    grid_service: GridServiceTerms | None = None


def terms_to_json(t: BtcTerms) -> dict[str, Any]:
    if isinstance(t, NetworkTerms):
        return {"kind": "net", "difficulty": str(t.difficulty), "reward_sats": t.reward_sats,
                "btc_price": str(t.btc_price), "pool_fee_pct": str(t.pool_fee_pct)}
    if isinstance(t, Hashvalue):
        return {"kind": "hv", "sats_per_th_day": str(t.sats_per_th_day),
                "btc_price": str(t.btc_price), "pool_fee_pct": str(t.pool_fee_pct)}
    return {"kind": "hp", "hashprice": str(t.hashprice_per_th_day),
            "btc_price": str(t.btc_price), "pool_fee_pct": str(t.pool_fee_pct)}


def terms_from_json(d: dict[str, Any]) -> BtcTerms:
    if d["kind"] == "net":
        return NetworkTerms(Decimal(d["difficulty"]), int(d["reward_sats"]),
                            Decimal(d["btc_price"]), Decimal(d["pool_fee_pct"]))
    if d["kind"] == "hv":
        return Hashvalue(Decimal(d["sats_per_th_day"]), Decimal(d["btc_price"]),
                         Decimal(d["pool_fee_pct"]))
    return GivenHashprice(Decimal(d["hashprice"]), Decimal(d["btc_price"]),
                          Decimal(d["pool_fee_pct"]))


class IntervalAccumulator:
    """The open interval: exact sums of its samples so far."""

    def __init__(self, start_s: int, duration_s: int) -> None:
        self.start_s = start_s
        self.duration_s = duration_s
        self.covered_s = _ZERO
        self.energy_j: dict[str, Decimal] = dict.fromkeys(ENERGY_FIELDS, _ZERO)
        self.num: dict[str, Decimal] = dict.fromkeys(_NUMERATORS, _ZERO)
        self.available_s = _ZERO
        self.th: dict[str, tuple[BtcTerms, Decimal]] = {}
        self.dr_events: set[str] = set()  # DR events (source:id) in force during the interval

    @property
    def end_s(self) -> int:
        return self.start_s + self.duration_s

    def add(self, s: Sample, econ: LedgerEconomics, dr: DrBaseline | None) -> None:
        """Add a sample that lies inside this interval (the writer splits the others)."""
        d = dec(s.duration_s)
        p_imp, p_exp = s.import_price, s.export_price
        grid = dec(s.grid_w)
        from_pv = dec(s.miner_from_pv_w)
        from_bat = dec(s.miner_from_battery_w)
        from_grid = dec(s.miner_from_grid_w)
        miner = dec(s.miner_w)
        heat_out = dec(s.heat_from_tank_w)
        with localcontext(EXACT):
            imp = max(grid, _ZERO)
            exp = -min(grid, _ZERO)
            forgone = min(from_pv, max(econ.export_limit_w - exp, _ZERO))
            e = self.energy_j
            e["pv"] += dec(s.pv_w) * d
            e["load"] += dec(s.load_w) * d
            e["import"] += imp * d
            e["export"] += exp * d
            e["miner"] += miner * d
            e["miner_from_pv"] += from_pv * d
            e["miner_from_battery"] += from_bat * d
            e["miner_from_grid"] += from_grid * d
            e["forgone_export"] += forgone * d
            e["heat_to_tank"] += dec(s.heat_to_tank_w) * d
            e["heat_delivered"] += heat_out * d
            e["backup_heat"] += dec(s.backup_heat_w) * d
            n = self.num
            n["import_cost"] += imp * d * p_imp
            n["export_revenue"] += exp * d * p_exp
            n["grid_cost"] += from_grid * d * p_imp
            n["forgone_export"] += forgone * d * p_exp
            bat_price = econ.battery_price_per_kwh if econ.battery_price_per_kwh is not None \
                else p_exp
            n["battery_cost"] += from_bat * d * bat_price
            n["heat"] += heat_out * d * econ.heat.energy_price(p_imp)
            n["import_price_s"] += p_imp * d
            n["export_price_s"] += p_exp * d
            self.covered_s += d
            key = s.btc.key()
            terms, th = self.th.get(key, (s.btc, _ZERO))
            self.th[key] = (terms, th + dec(s.terahashes))
        if econ.grid_service is not None and econ.grid_service.available_at(s.start_s):
            with localcontext(EXACT):
                self.available_s += d
        self.dr_events.update(s.dr_events)
        if dr is not None:
            cur, absd = dr.update(s.start_s, d, miner, s.dr_request)
            with localcontext(EXACT):
                e["dr_curtailed"] += cur
                e["dr_absorbed"] += absd

    def close(self, econ: LedgerEconomics) -> dict[str, Any]:
        """The interval's columns (see tables.LedgerInterval)."""
        out: dict[str, Any] = {"start_s": self.start_s, "duration_s": self.duration_s}
        with localcontext(DIVIDE):
            out["covered_s"] = self.covered_s.quantize(MILLI)
            for name, j in self.energy_j.items():
                out[f"{name}_kwh"] = micro(j / J_PER_KWH)
            n = self.num
            for name in ("import_cost", "export_revenue", "grid_cost", "forgone_export",
                         "battery_cost"):
                out[name] = micro(n[name] / J_PER_KWH)
            out["heat_value"] = micro(n["heat"] / (J_PER_KWH * econ.heat.efficiency))
            if self.covered_s > 0:
                out["import_price_avg"] = micro(n["import_price_s"] / self.covered_s)
                out["export_price_avg"] = micro(n["export_price_s"] / self.covered_s)
            else:
                out["import_price_avg"] = out["export_price_avg"] = None
        sats = Fraction(0)
        value = Fraction(0)
        th_total = _ZERO
        for terms, th in self.th.values():
            sats += Fraction(th) * terms.sats_per_th_s()
            value += Fraction(th) * terms.value_per_th_s()
            th_total += th
        out["terahashes"] = micro(th_total)
        out["expected_msat"] = math.floor(sats * 1000)
        out["btc_value"] = micro(value)
        keys = sorted(self.th)
        out["btc_terms"] = keys[0] if len(keys) == 1 else (f"mixed:{len(keys)}" if keys else "")
        gs = econ.grid_service
        if gs is not None:
            offered_kwh = Fraction(gs.offered_kw) * Fraction(self.available_s) / 3600
            out["flex_offered_kwh"] = micro(offered_kwh)
            out["availability_pay"] = micro(offered_kwh * Fraction(gs.availability_rate_per_kw_h))
            activated = Fraction(self.energy_j["dr_curtailed"] + self.energy_j["dr_absorbed"])
            out["activation_pay"] = micro(activated / int(J_PER_KWH)
                                          * Fraction(gs.activation_rate_per_kwh))
        else:
            out["flex_offered_kwh"] = out["availability_pay"] = out["activation_pay"] = _ZERO
        out["dr_events"] = dr_events_text(self.dr_events)
        out["net"] = net_of(out)
        out["value_per_kwh"] = value_per_kwh(out)
        return out

    # -- checkpoint ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "start_s": self.start_s, "duration_s": self.duration_s,
            "covered_s": str(self.covered_s),
            "energy_j": {k: str(v) for k, v in self.energy_j.items()},
            "num": {k: str(v) for k, v in self.num.items()},
            "available_s": str(self.available_s),
            "th": [[terms_to_json(t), str(v)] for t, v in self.th.values()],
            "dr_events": sorted(self.dr_events),
        }

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> IntervalAccumulator:
        acc = cls(int(st["start_s"]), int(st["duration_s"]))
        acc.covered_s = Decimal(st["covered_s"])
        acc.energy_j.update({k: Decimal(v) for k, v in st["energy_j"].items()})
        acc.num.update({k: Decimal(v) for k, v in st["num"].items()})
        acc.available_s = Decimal(st["available_s"])
        for tj, v in st["th"]:
            t = terms_from_json(tj)
            acc.th[t.key()] = (t, Decimal(v))
        acc.dr_events = set(st.get("dr_events", ()))  # absent in older checkpoints
        return acc


DR_EVENTS_MAX = 500


def dr_events_text(events: set[str]) -> str:
    """The interval's DR events as 'source:id,...' (sorted), cut to fit the column."""
    text = ",".join(sorted(events))
    if len(text) > DR_EVENTS_MAX:
        text = text[:DR_EVENTS_MAX - 3] + "..."
    return text


def power_cost_of(row: Mapping[str, Any]) -> Decimal:
    """What the miners' power cost: grid cost + forgone export + battery cost - grid-service
    payments (for the miners' flexibility). Positive = a cost; negative = the site came out
    ahead on power (negative prices, DR payments). One of the four money words (docs/ledger.md)."""
    result: Decimal = (row["grid_cost"] + row["forgone_export"] + row["battery_cost"]
                       - row["availability_pay"] - row["activation_pay"])
    return result


def net_of(row: Mapping[str, Any]) -> Decimal:
    """Net = BTC value + heat value - power cost (grid services are inside power cost)."""
    result: Decimal = row["btc_value"] + row["heat_value"] - power_cost_of(row)
    return result


def value_per_kwh(row: dict[str, Any]) -> Decimal | None:
    """Realised marginal value of the interval's miner energy: (BTC + heat) / miner kWh."""
    kwh = row["miner_kwh"]
    if not kwh:
        return None
    with localcontext(DIVIDE):
        return micro((row["btc_value"] + row["heat_value"]) / kwh)


class TelemetryBucket:
    """Time-weighted averages for one telemetry step (floats: history, not money)."""

    FIELDS = ("pv_w", "load_w", "grid_w", "battery_w", "miner_w", "heat_to_tank_w",
              "heat_from_tank_w", "import_price", "export_price")

    def __init__(self, start_s: int, step_s: int) -> None:
        self.start_s = start_s
        self.step_s = step_s
        self.seconds = 0.0
        self.sums = dict.fromkeys(self.FIELDS, 0.0)
        self.terahashes = 0.0
        self.soc_pct = math.nan
        self.tank_c = math.nan

    def add(self, s: Sample) -> None:
        d = s.duration_s
        self.seconds += d
        sm = self.sums
        sm["pv_w"] += s.pv_w * d
        sm["load_w"] += s.load_w * d
        sm["grid_w"] += s.grid_w * d
        sm["battery_w"] += s.battery_w * d
        sm["miner_w"] += s.miner_w * d
        sm["heat_to_tank_w"] += s.heat_to_tank_w * d
        sm["heat_from_tank_w"] += s.heat_from_tank_w * d
        sm["import_price"] += float(s.import_price) * d
        sm["export_price"] += float(s.export_price) * d
        self.terahashes += s.terahashes
        if not math.isnan(s.soc_pct):
            self.soc_pct = s.soc_pct
        if not math.isnan(s.tank_c):
            self.tank_c = s.tank_c

    def row(self) -> dict[str, Any]:
        sec = self.seconds or 1.0
        out: dict[str, Any] = {k: v / sec for k, v in self.sums.items()}
        out.update(start_s=self.start_s, duration_s=self.seconds,
                   hashrate_ths=self.terahashes / sec,
                   soc_pct=None if math.isnan(self.soc_pct) else self.soc_pct,
                   tank_c=None if math.isnan(self.tank_c) else self.tank_c)
        return out

    def state(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "step_s": self.step_s, "seconds": self.seconds,
                "sums": self.sums, "terahashes": self.terahashes,
                "soc_pct": None if math.isnan(self.soc_pct) else self.soc_pct,
                "tank_c": None if math.isnan(self.tank_c) else self.tank_c}

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> TelemetryBucket:
        b = cls(int(st["start_s"]), int(st["step_s"]))
        b.seconds = float(st["seconds"])
        b.sums.update({k: float(v) for k, v in st["sums"].items()})
        b.terahashes = float(st["terahashes"])
        b.soc_pct = math.nan if st["soc_pct"] is None else float(st["soc_pct"])
        b.tank_c = math.nan if st["tank_c"] is None else float(st["tank_c"])
        return b


def split_sample(s: Sample, at_s: float) -> tuple[Sample, Sample]:
    """Cut a sample at `at_s` (flows are averages, so both parts keep the same powers;
    hashes are shared in proportion to time)."""
    first = at_s - s.start_s
    frac = first / s.duration_s
    a = s._replace(duration_s=first, terahashes=s.terahashes * frac)
    b = s._replace(start_s=at_s, duration_s=s.duration_s - first,
                   terahashes=s.terahashes - a.terahashes)
    return a, b
