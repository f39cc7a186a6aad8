"""The day-ahead plan as a linear program (HiGHS via `highspy`).

Per slot k (length `step_s`), all powers are slot averages in W:

- miner power as concave segments: each miner's hash rate H(P) = P / j(P) is piecewise
  linear between its efficiency points, so its power splits into segments of falling
  marginal TH per kWh; the LP fills the best first. Continuous from 0 W: the allocator
  handles minimum powers and on/off (a relaxation, so the perfect-foresight value is an
  upper bound);
- grid import (<= max(import limit − headroom, house deficit)), export (<= export limit),
  PV curtailment;
- battery charge/discharge and state of charge (√η each way, as the plant), charging only
  from PV (ch <= pv); discharging into the house's deficit only, as the controller's
  battery policy does (the miners never drain it), or also into the miners
  (dis <= load + miners) where `miners_may_discharge_above_soc_pct` allows it and for the
  perfect-foresight bound (`bound=True`, relaxed so every real run is feasible). The
  battery's policy stays with the controller: the plan does not command it;
- heat the tank delivers to the building q (0..demand); the rest of the demand is backup
  heat, costing fuel price / efficiency per kWh;
- tank temperature at the slot end, with explicit linear standing loss; at most
  max − margin; at least min_c, or the path the tank cools along when left alone where
  that is lower (a cold start), so the model is always feasible without a penalty term
  and never delivers heat from water below min_c.

Objective (maximised): Σ BTC value of the hashes + export revenue − import cost − backup
heat cost + the change of heat stored in the tank valued at the backup heat cost (the
same definition as the sim's `net_value`, so plan and realised values compare).

The model is built from numpy index arrays (one COO block per constraint family, turned
into the column-wise matrix HiGHS takes), never constraint by constraint: 192 slots build
in about a millisecond.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.plan.value import heat_cost_per_kwh

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
J_PER_KWH = 3.6e6
DAY_S = 86_400.0


@dataclass(frozen=True)
class Segment:
    """A slice of one miner's power range with its marginal efficiency."""

    miner: str
    width_w: float
    th_per_kwh: float  # marginal terahashes per kWh in this slice
    heats_tank: bool


def miner_segments(cfg: SiteConfig) -> list[Segment]:
    """Each miner's hash-rate curve as slices of falling marginal TH/kWh, best first."""
    out: list[Segment] = []
    for m in cfg.miners:
        pts = [p.power_w for p in m.efficiency if p.power_w <= m.max_power_w]
        if not pts or pts[-1] < m.max_power_w:
            pts.append(m.max_power_w)
        prev_p, prev_h = 0.0, 0.0
        for p in pts:
            h = m.hashrate_ths_at(p)
            if p > prev_p:
                # TH/s per W = TH per J; x 3.6e6 J per kWh
                out.append(Segment(m.name, p - prev_p, (h - prev_h) / (p - prev_p) * J_PER_KWH,
                                   m.heats_tank))
            prev_p, prev_h = p, h
    out.sort(key=lambda s: -s.th_per_kwh)
    return out


@dataclass(frozen=True)
class PlanInputs:
    """Everything the LP needs for one horizon, one value per slot (length n)."""

    start_s: float  # UTC epoch seconds of slot 0
    step_s: float
    pv_w: FloatArray
    load_w: FloatArray
    heat_demand_w: FloatArray
    import_price: FloatArray  # per kWh
    export_price: FloatArray
    value_per_th: FloatArray  # site currency per terahash (after pool fee)
    tank_start_c: float | None = None
    soc_start_pct: float | None = None

    @property
    def n(self) -> int:
        return len(self.pv_w)


@dataclass(frozen=True)
class Plan:
    start_s: float
    step_s: float
    miner_w: FloatArray
    import_w: FloatArray
    export_w: FloatArray
    curtail_w: FloatArray
    battery_w: FloatArray  # + charging
    soc_pct: FloatArray  # end of slot (NaN: no battery)
    tank_c: FloatArray  # end of slot (NaN: no tank)
    backup_heat_w: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    value: float  # objective incl. constants: the plan's expected net value
    status: str
    build_s: float
    solve_s: float

    @property
    def n(self) -> int:
        return len(self.miner_w)

    def slot(self, t_s: float) -> int | None:
        k = math.floor((t_s - self.start_s) / self.step_s)
        return k if 0 <= k < self.n else None


class PlanError(RuntimeError):
    """HiGHS found no optimal plan (should not happen: the model is always feasible)."""


@dataclass
class _Cols:
    n: int
    count: int = 0

    def add(self, k: int) -> IntArray:
        idx = np.arange(self.count, self.count + k, dtype=np.int64)
        self.count += k
        return idx


def build_lp(cfg: SiteConfig, inp: PlanInputs, buy_margin_per_kwh: float = 0.0,
             bound: bool = False) -> tuple[highspy.HighsLp, dict[str, IntArray], float]:
    """The HiGHS model, the column indices of each variable family, the objective offset.

    `buy_margin_per_kwh` is added to the import price in the objective only (the plan
    then buys for the miners only where that clearly pays: the LP's miners are a
    relaxation, optimistic about low powers); the house's own import is the same in every
    plan, so the margin changes no other decision.

    `bound`: the perfect-foresight upper bound, relaxed so that every real run is feasible
    for it: the battery may discharge into the miners, and the tank's floor is the path it
    cools along from min(start, min_c) (the plant's tank gets below min_c only by cooling).
    Otherwise the battery feeds the miners only if `miners_may_discharge_above_soc_pct` is
    set (the controller's battery policy), and the floor is min_c or, for a cold start, the
    path the tank cools along from its start."""
    n, dt = inp.n, inp.step_s
    kwh = dt / 3600.0 / 1000.0  # kWh per W over one slot
    c = cfg.control
    segs = miner_segments(cfg)
    s_n = len(segs)
    cols = _Cols(n)
    v: dict[str, IntArray] = {}
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []
    cost: list[FloatArray] = []

    def family(name: str, count: int, lower: FloatArray | float, upper: FloatArray | float,
               obj: FloatArray | float) -> IntArray:
        idx = cols.add(count)
        v[name] = idx
        lo.append(np.broadcast_to(np.asarray(lower, np.float64), (count,)))
        hi.append(np.broadcast_to(np.asarray(upper, np.float64), (count,)))
        cost.append(np.broadcast_to(np.asarray(obj, np.float64), (count,)))
        return idx

    pv, load, demand = inp.pv_w, inp.load_w, inp.heat_demand_w
    widths = np.array([s.width_w for s in segs])
    th = np.array([s.th_per_kwh for s in segs])
    # seg[k, s] laid out slot-major: column = base + k*S + s
    seg_val = (inp.value_per_th[:, None] * th[None, :] * kwh).ravel()
    seg = family("seg", n * s_n, 0.0, np.tile(widths, n), seg_val)
    imp_ub = np.maximum(cfg.site.import_limit_w - c.import_headroom_w, load - pv)
    imp = family("imp", n, 0.0, np.maximum(imp_ub, 0.0),
                 -(inp.import_price + buy_margin_per_kwh) * kwh)
    exp = family("exp", n, 0.0, cfg.site.grid_export_limit_w, inp.export_price * kwh)
    curt = family("curt", n, 0.0, pv, 0.0)
    heat_cost = heat_cost_per_kwh(cfg)

    rows_r: list[IntArray] = []
    rows_c: list[IntArray] = []
    rows_v: list[FloatArray] = []
    r_lo: list[FloatArray] = []
    r_hi: list[FloatArray] = []
    nrows = 0

    def block(r: IntArray, col: IntArray, val: FloatArray | float) -> None:
        rows_r.append(r)
        rows_c.append(col)
        rows_v.append(np.broadcast_to(np.asarray(val, np.float64), r.shape).copy())

    def rows(lower: FloatArray | float, upper: FloatArray | float) -> IntArray:
        nonlocal nrows
        idx = np.arange(nrows, nrows + n, dtype=np.int64)
        nrows += n
        r_lo.append(np.broadcast_to(np.asarray(lower, np.float64), (n,)))
        r_hi.append(np.broadcast_to(np.asarray(upper, np.float64), (n,)))
        return idx

    k = np.arange(n, dtype=np.int64)
    seg_rows = np.repeat(k, s_n)  # slot of each seg column
    # Energy balance: pv − curt + imp − exp + dis − ch − Σ seg = load
    bal = rows(load - pv, load - pv)
    block(bal, curt, -1.0)
    block(bal, imp, 1.0)
    block(bal, exp, -1.0)
    block(bal[seg_rows], seg, -1.0)

    offset = 0.0
    b = cfg.battery
    if b is not None:
        cap_kwh = b.capacity_kwh
        eta = math.sqrt(b.round_trip_efficiency)
        soc0 = (inp.soc_start_pct if inp.soc_start_pct is not None else b.initial_soc_pct)
        soc0_kwh = min(max(soc0, 0.0), 100.0) / 100 * cap_kwh
        ch = family("ch", n, 0.0, np.minimum(b.max_charge_w, pv), 0.0)
        feeds = bound or b.miners_may_discharge_above_soc_pct is not None
        # Without feeding the miners, the battery discharges into the house's deficit only.
        dis = family("dis", n, 0.0, b.max_discharge_w if feeds else
                     np.minimum(b.max_discharge_w, np.maximum(load - pv, 0.0)), 0.0)
        lo_kwh = min(b.min_soc_pct / 100 * cap_kwh, soc0_kwh)
        hi_kwh = max(b.max_soc_pct / 100 * cap_kwh, soc0_kwh)
        soc = family("soc", n, lo_kwh, hi_kwh, 0.0)
        block(bal, dis, 1.0)
        block(bal, ch, -1.0)
        # soc_k − soc_{k−1} − η·ch·kwh + dis·kwh/η = 0 (soc_{-1} = start)
        sr = rows(np.where(k == 0, soc0_kwh, 0.0), np.where(k == 0, soc0_kwh, 0.0))
        block(sr, soc, 1.0)
        block(sr[1:], soc[:-1], -1.0)
        block(sr, ch, -eta * kwh)
        block(sr, dis, kwh / eta)
        if feeds:
            # dis − Σ seg <= load: the battery only serves the house and the miners
            dr_ = rows(-np.inf, load)
            block(dr_, dis, 1.0)
            block(dr_[seg_rows], seg, -1.0)

    t = cfg.tank
    tank_seg = np.array([s.heats_tank for s in segs])
    if t is not None:
        cap_j = t.heat_capacity_j_per_k
        t0 = inp.tank_start_c if inp.tank_start_c is not None else t.start_c
        ua, amb, f = t.heat_loss_w_per_k, t.ambient_c, t.miner_heat_fraction
        k_val = heat_cost * cap_j / J_PER_KWH  # value of one K of stored heat
        # The tank left alone (no heat in, none delivered) cools along this path; the
        # building draws from it only down to min_c. So the floor is min_c, or the
        # cooling path where that is lower (a cold start): feasible by construction, and
        # no heat is ever "delivered" from water below min_c. The ceiling likewise never
        # asks a tank that starts above it to cool faster than it can.
        cool = (1.0 - dt * ua / cap_j) ** np.arange(1, n + 1)
        decay = amb + (t0 - amb) * cool
        floor_c = np.minimum(t.min_c, amb + (min(t0, t.min_c) - amb) * cool if bound
                             else decay)
        ceiling_c = np.maximum(t.max_c - c.tank_max_margin_c, decay)
        # q: heat the tank delivers; backup = demand − q.
        q = family("q", n, 0.0, demand, heat_cost * kwh)
        offset -= heat_cost * kwh * float(demand.sum())
        # stored heat at the end, valued like the backup heat it will displace
        end_obj = np.zeros(n)
        end_obj[-1] = k_val
        tank = family("tank", n, floor_c, ceiling_c, end_obj)
        # C·T_k − (C − dt·UA)·T_{k−1} − dt·f·Σ tank seg + dt·q = dt·UA·amb
        rhs = np.full(n, dt * ua * amb)
        rhs[0] += (cap_j - dt * ua) * t0
        tr = rows(rhs, rhs)
        block(tr, tank, cap_j)
        block(tr[1:], tank[:-1], -(cap_j - dt * ua))
        tank_cols = seg.reshape(n, s_n)[:, tank_seg].ravel()
        block(tr[np.repeat(k, int(tank_seg.sum()))], tank_cols, -dt * f)
        block(tr, q, dt)
        offset -= k_val * t0
    else:
        # No tank: all the demand is the backup heater's, whatever the plan does.
        offset -= heat_cost * kwh * float(demand.sum())

    ncols = cols.count
    r_all = np.concatenate(rows_r)
    c_all = np.concatenate(rows_c)
    v_all = np.concatenate(rows_v)
    order = np.lexsort((r_all, c_all))
    r_all, c_all, v_all = r_all[order], c_all[order], v_all[order]
    starts = np.zeros(ncols + 1, dtype=np.int64)
    np.cumsum(np.bincount(c_all, minlength=ncols), out=starts[1:])

    lp = highspy.HighsLp()
    lp.num_col_ = ncols
    lp.num_row_ = nrows
    lp.col_cost_ = np.concatenate(cost)
    lp.col_lower_ = np.concatenate(lo)
    lp.col_upper_ = np.concatenate(hi)
    lp.row_lower_ = np.concatenate(r_lo)
    lp.row_upper_ = np.concatenate(r_hi)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = r_all.astype(np.int32)
    lp.a_matrix_.value_ = v_all
    lp.a_matrix_.num_col_ = ncols
    lp.a_matrix_.num_row_ = nrows
    return lp, v, offset


def solve_plan(cfg: SiteConfig, inp: PlanInputs, threads: int = 1,
               buy_margin_per_kwh: float = 0.0,
               bound: bool = False) -> Plan:
    """Build and solve; `Plan.value` is the expected net value over the horizon (at the
    real prices: the buy margin and the tank-floor penalty are not money)."""
    t0 = time.perf_counter()
    lp, v, offset = build_lp(cfg, inp, buy_margin_per_kwh, bound)
    t1 = time.perf_counter()
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise PlanError(f"HiGHS: {status}")
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    t2 = time.perf_counter()
    n = inp.n
    nan = np.full(n, np.nan)
    seg = x[v["seg"]].reshape(n, -1)
    miner = seg.sum(axis=1)
    battery = x[v["ch"]] - x[v["dis"]] if "ch" in v else np.zeros(n)
    soc = (x[v["soc"]] / cfg.battery.capacity_kwh * 100.0
           if "soc" in v and cfg.battery is not None else nan)
    tank = x[v["tank"]] if "tank" in v else nan
    backup = inp.heat_demand_w - x[v["q"]] if "q" in v else inp.heat_demand_w.copy()
    kwh = inp.step_s / 3.6e6
    value = (float(h.getInfo().objective_function_value) + offset
             + buy_margin_per_kwh * kwh * float(x[v["imp"]].sum()))
    return Plan(inp.start_s, inp.step_s, miner, x[v["imp"]], x[v["exp"]], x[v["curt"]],
                battery, soc, tank, np.maximum(backup, 0.0), inp.import_price.copy(),
                inp.export_price.copy(), value, status, t1 - t0, t2 - t1)
