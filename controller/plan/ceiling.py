"""The true ceiling: perfect foresight over the plant's own miner model, as a MILP (HiGHS).

The loose bound (`controller.plan.bound`) lets miners run at any power from 0 W; this one
knows what the plant (`controller/sim/plant/miners.py`) does, so no controller that keeps
the miners' minimum on/off times can beat it. Per miner and step (the trace's step, dt):

- `u` (binary): the run command held over the step; `s`/`f`: start/stop at its beginning
  (exact from `u`: s = max(u_t − u_{t−1}, 0)); cumulative sums of both make every
  time-window sum a 3-term row;
- boot: a start draws `idle_power_w` for `restart_s` without hashing. The booting share of
  step t is β_t = Σ_j b_j s_{t−j} (b_j: the part of step t+j inside the boot); the running
  share a_t = u_t − β_t ≥ 0 (a miner is never stopped mid-boot: exact when
  min_on_s ≥ restart_s);
- running power r_t (the step average of the power while running): ≤ max·a_t, ≥ idle·a_t
  (it ramps up from idle after the boot), ≥ min·(a_t − G_t) (G_t: the share of the step
  in the post-boot ramp from idle to min, (min − idle)/ramp s long);
- ramps: a running miner's power moves at most `ramp_w_per_s`, so step averages differ by
  at most ramp·dt (+ idle at the boot's end, + max at a stop);
- the stopping tail (power falling to 0 over `stop_s`) as a free variable up to max·stop_s/2
  of energy per stop;
- minimum on/off times on the commands (Rajan–Takriti: the starts in the last
  ceil(min_on_s/dt) steps ≤ u_t; the stops in the last ceil(min_off_s/dt) ≤ 1 − u_t);
- a miner whose API cannot pause (AxeOS) is always commanded on (held at min power);
- hash rate h_t ≤ a_t·Ĥ(r_t/a_t), Ĥ the concave majorant of the efficiency curve's
  hash rate P / j(P) (Jensen: within a step a concave curve gains most at a steady power).

Every relaxation above errs upward, so the optimum is a ceiling; each is tight for the
shipped miner profiles at 1-min steps.

Two objectives, solved separately:

- capture: the most surplus (PV the site would export or curtail without miners) the
  miners absorb, Σ min(miners, surplus), with no import they cause: miners ≤ surplus in
  every step, or ≤ what the never-off miners draw at min power where that is more (their
  unavoidable import). `allow_import=True` drops that rule (then it bounds every policy's
  capture, importing or not);
- value: the sim's net value (BTC value at the trace's hashprice or `[bitcoin]`, export
  revenue, import cost at the trace's prices, backup heat), minus `restart_cost` per start.

Rolling windows: the trace is cut at local mean solar midnight into about one day each.
Each window starts with a free history (a pre-roll as long as the longest lag, whose
commands are free and cost nothing), so each window's optimum bounds the whole-trace
optimum's part in it: the ceiling is the sum of the windows' proven upper bounds (HiGHS's
dual bound where the time limit cut the search: the gap is reported). The first window
starts from the plant's state (all miners off). The windows are independent, so they run
in parallel (`jobs`), and they are cut and solved as a streamed trace's chunks arrive:
memory is flat in the trace's length (`ceiling`, `WindowCutter`). The per-step powers are
the windows' best schedules stitched together; `boundary_mismatches` counts the cuts where
a window's free history disagrees with what the previous window did (usually none: the
cuts are at night).

Sites with a battery: the surplus is the one a miner-less run of the same battery leaves
(as `hearth sim` reports it); the value ceiling is not defined (the loose bound applies).
Sites with a tank: the capture ceiling ignores the tank's limit (looser), no value ceiling.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import highspy
import numpy as np
import numpy.typing as npt

from controller.config.models import MinerConfig, SiteConfig
from controller.outfile import PendingFile
from controller.plan.value import heat_cost_per_kwh, value_per_th
from controller.sim.plant.site import MinerlessSurplus
from controller.trace.reader import RowBuffer, Trace, TraceInput, trace_chunks

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
J_PER_KWH = 3.6e6
DAY_S = 86_400.0
OBJECTIVES = ("capture", "value")
def can_pause(m: MinerConfig) -> bool:
    """Whether Hearth can ever take this miner to 0 W: the drivers' one fact (AxeOS only
    with `use_pause`; a relay always can)."""
    from controller.miners.factory import can_pause as driver_can_pause

    return driver_can_pause(m)


# ----------------------------------------------------------------------------- miner facts

@dataclass(frozen=True)
class MinerFacts:
    """What the MILP needs of one miner, in the plant's terms (controller/sim/plant/miners.py)."""

    name: str
    min_w: float
    max_w: float
    idle_w: float
    ramp_w_per_s: float
    restart_s: float
    stop_s: float
    min_on_s: float
    min_off_s: float
    can_pause: bool
    hash_lines: tuple[tuple[float, float], ...]  # (TH/s at 0 W, TH/s per W): min of these ≥ H(P)

    def same_model(self, other: MinerFacts) -> bool:
        return (self.min_w, self.max_w, self.idle_w, self.ramp_w_per_s, self.restart_s,
                self.stop_s, self.min_on_s, self.min_off_s, self.can_pause, self.hash_lines) == (
            other.min_w, other.max_w, other.idle_w, other.ramp_w_per_s, other.restart_s,
            other.stop_s, other.min_on_s, other.min_off_s, other.can_pause, other.hash_lines)


def hash_majorant(m: MinerConfig, lines: int = 5, samples: int = 2001
                  ) -> tuple[tuple[float, float], ...]:
    """Affine functions whose minimum lies on or above the hash rate H(P) on [0, max].

    H(P) = P / j(P) is sampled finely, its upper concave hull taken, and `lines` of the
    hull's edges (spread over the power range) extended: each supports the hull, so their
    minimum is ≥ the hull ≥ H at every sample; a relative margin covers between samples."""
    p = np.linspace(0.0, m.max_power_w, samples)
    h = np.array([m.hashrate_ths_at(float(x)) for x in p])
    hull: list[int] = []
    for i in range(samples):  # monotone chain, upper hull
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (h[b] - h[a]) * (p[i] - p[a]) <= (h[i] - h[a]) * (p[b] - p[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    edges = list(itertools.pairwise(hull))
    pick = sorted({round(x) for x in np.linspace(0, len(edges) - 1, min(lines, len(edges)))})
    out: list[tuple[float, float]] = []
    for e in pick:
        a, b = edges[e]
        slope = (h[b] - h[a]) / (p[b] - p[a])
        icpt = h[a] - slope * p[a]
        out.append((float(icpt), float(slope)))
    # Margin: whatever H exceeds the lines by at the samples, plus a relative 1e-6.
    env = np.min([ic + sl * p for ic, sl in out], axis=0)
    lift = float(max(np.max(h - env), 0.0)) + 1e-6 * float(np.max(h))
    return tuple((ic + lift, sl) for ic, sl in out)


def miner_facts(m: MinerConfig) -> MinerFacts:
    return MinerFacts(m.name, m.min_power_w, m.max_power_w, m.idle_power_w, m.ramp_w_per_s,
                      m.restart_s, m.stop_s, m.min_on_s, m.min_off_s, can_pause(m),
                      hash_majorant(m))


def _share(a_s: float, b_s: float, dt: float) -> list[tuple[int, float]]:
    """(lag j, share of step t+j inside [a_s, b_s) seconds after a start at step t)."""
    out: list[tuple[int, float]] = []
    if b_s <= a_s:
        return out
    j = int(a_s // dt)
    while j * dt < b_s - 1e-9:
        lo, hi = max(a_s, j * dt), min(b_s, (j + 1) * dt)
        if hi > lo + 1e-12:
            out.append((j, (hi - lo) / dt))
        j += 1
    return out


def _tail_share(stop_s: float, dt: float) -> list[tuple[int, float]]:
    """(lag j, energy of a linear fall from 1 W to 0 over stop_s inside step t+j, per dt)."""
    out: list[tuple[int, float]] = []
    if stop_s <= 0:
        return out
    j = 0
    while j * dt < stop_s - 1e-9:
        lo, hi = j * dt, min(stop_s, (j + 1) * dt)
        e = (hi - lo) - (hi * hi - lo * lo) / (2 * stop_s)
        out.append((j, e / dt))
        j += 1
    return out


def _steps(seconds: float, dt: float) -> int:
    """Steps a duration spans on the command grid (a switch is allowed after ≥ seconds)."""
    return max(0, math.ceil(seconds / dt - 1e-9))


def _lags(f: MinerFacts, dt: float) -> int:
    w = (f.min_w - f.idle_w) / f.ramp_w_per_s
    return max(_steps(f.min_on_s, dt), _steps(f.min_off_s, dt),
               _steps(f.restart_s + w, dt) + 1, _steps(f.stop_s, dt) + 1) + 1


# ----------------------------------------------------------------------------- the model

class _Model:
    """Columns and rows as numpy blocks, turned into HiGHS's column-wise matrix once."""

    def __init__(self) -> None:
        self.ncols = 0
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.cost: list[FloatArray] = []
        self.integer: list[IntArray] = []
        self.nrows = 0
        self.r_lo: list[FloatArray] = []
        self.r_hi: list[FloatArray] = []
        self.rr: list[IntArray] = []
        self.cc: list[IntArray] = []
        self.vv: list[FloatArray] = []

    def var(self, count: int, lo: FloatArray | float, hi: FloatArray | float,
            cost: FloatArray | float = 0.0, integer: bool = False) -> IntArray:
        idx = np.arange(self.ncols, self.ncols + count, dtype=np.int64)
        self.ncols += count
        self.lo.append(np.broadcast_to(np.asarray(lo, np.float64), (count,)).copy())
        self.hi.append(np.broadcast_to(np.asarray(hi, np.float64), (count,)).copy())
        self.cost.append(np.broadcast_to(np.asarray(cost, np.float64), (count,)).copy())
        if integer:
            self.integer.append(idx)
        return idx

    def rows(self, terms: Sequence[tuple[IntArray, FloatArray | float]],
             lo: FloatArray | float, hi: FloatArray | float, count: int) -> None:
        """`count` rows; each term gives one column per row (−1: no term in that row)."""
        idx = np.arange(self.nrows, self.nrows + count, dtype=np.int64)
        self.nrows += count
        self.r_lo.append(np.broadcast_to(np.asarray(lo, np.float64), (count,)).copy())
        self.r_hi.append(np.broadcast_to(np.asarray(hi, np.float64), (count,)).copy())
        for col, val in terms:
            v = np.broadcast_to(np.asarray(val, np.float64), (count,))
            keep = (col >= 0) & (v != 0.0)
            self.rr.append(idx[keep])
            self.cc.append(col[keep])
            self.vv.append(v[keep].copy())

    def highs_lp(self) -> highspy.HighsLp:
        r = np.concatenate(self.rr)
        c = np.concatenate(self.cc)
        v = np.concatenate(self.vv)
        # The same column may appear twice in a row (a cumulative sum from two lagged
        # sums): add them up, and drop what cancels.
        key = c * max(self.nrows, 1) + r
        uniq, inv = np.unique(key, return_inverse=True)
        v = np.asarray(np.bincount(inv, weights=v, minlength=len(uniq)), np.float64)
        c, r = uniq // max(self.nrows, 1), uniq % max(self.nrows, 1)
        keep = v != 0.0
        r, c, v = r[keep], c[keep], v[keep]
        starts = np.zeros(self.ncols + 1, dtype=np.int64)
        np.cumsum(np.bincount(c, minlength=self.ncols), out=starts[1:])
        lp = highspy.HighsLp()
        lp.num_col_ = self.ncols
        lp.num_row_ = self.nrows
        lp.col_cost_ = np.concatenate(self.cost)
        lp.col_lower_ = np.concatenate(self.lo)
        lp.col_upper_ = np.concatenate(self.hi)
        lp.row_lower_ = np.concatenate(self.r_lo)
        lp.row_upper_ = np.concatenate(self.r_hi)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts.astype(np.int32)
        lp.a_matrix_.index_ = r.astype(np.int32)
        lp.a_matrix_.value_ = v
        lp.a_matrix_.num_col_ = self.ncols
        lp.a_matrix_.num_row_ = self.nrows
        integrality = np.zeros(self.ncols, dtype=np.int32)
        if self.integer:
            integrality[np.concatenate(self.integer)] = 1
        lp.integrality_ = [highspy.HighsVarType(int(x)) for x in integrality]
        return lp


@dataclass(frozen=True)
class WindowJob:
    """One window: the inputs for its real steps, and how much free history precedes it."""

    index: int
    objective: str
    dt: float
    facts: tuple[MinerFacts, ...]
    pre: int  # pre-roll steps (0: the trace's start, all miners off)
    surplus_w: FloatArray  # capture: what the miners may absorb
    net_w: FloatArray  # pv − load (value)
    import_price: FloatArray
    export_price: FloatArray
    value_per_th: FloatArray
    import_limit_w: float
    export_limit_w: float
    restart_cost: float
    allow_import: bool
    time_limit_s: float
    mip_rel_gap: float


@dataclass
class WindowResult:
    index: int
    objective: str
    steps: int
    primal: float  # the best schedule's objective (no constant offsets)
    bound: float  # proven upper bound on it
    status: str
    solve_s: float
    nodes: int
    miner_w: FloatArray  # (miners, steps)
    run: npt.NDArray[np.bool_]  # (miners, steps): commanded on
    starts: IntArray  # per miner, in the real steps
    pre_run: npt.NDArray[np.bool_]  # (miners, pre): the free history the window chose
    relaxed_bound: bool = False  # the bound is the LP relaxation's (no MIP bound in time)
    cpu_s: float = 0.0  # CPU time of the worker (the wall time lies on a busy machine)


Term = tuple[IntArray, FloatArray | float]


@dataclass
class _Cols:
    u: IntArray
    s: IntArray
    f: IntArray
    r: IntArray
    h: IntArray | None
    power: list[Term]  # the miner's power per real step
    tail: list[Term]  # the most its stopping tail may add per real step


def _lag(idx: IntArray, at: IntArray, j: int) -> IntArray:
    """Column idx[at − j], −1 where that is before the window (a term that is 0)."""
    src = at - j
    return np.where(src >= 0, idx[np.clip(src, 0, None)], -1)


def _lagged(s: IntArray, at: IntArray, terms: list[tuple[int, float]], scale: float
            ) -> list[Term]:
    """scale·Σ_j w_j s_{t−j} for t in `at`, one term per lag. (Not as differences of a
    cumulative sum: its chains make the simplex bases dense and the LP 50x slower.)"""
    return [(_lag(s, at, j), scale * w) for j, w in terms]


def _build(job: WindowJob) -> tuple[_Model, list[_Cols]]:
    md = _Model()
    n = len(job.surplus_w)
    pre = job.pre
    total = pre + n
    dt = job.dt
    k = np.arange(total, dtype=np.int64)
    real = k[pre:]
    cols: list[_Cols] = []
    first = pre == 0

    for f in job.facts:
        # u: command; forced on for a miner that cannot pause.
        u = md.var(total, 1.0 if not f.can_pause else 0.0, 1.0, integer=f.can_pause)
        restart_cost = np.zeros(total)
        if job.objective == "value":
            restart_cost[pre:] = -job.restart_cost
        s = md.var(total, 0.0, 1.0, restart_cost)
        stp = md.var(total, 0.0, 1.0)
        # start/stop from u, exact for binary u: s − f = u_t − u_{t−1}, s ≤ u_t,
        # f ≤ 1 − u_t (then s = max(Δu, 0), f = max(−Δu, 0)).
        k1 = k[1:]
        md.rows([(s[k1], 1.0), (stp[k1], -1.0), (u[k1], -1.0), (u[k1 - 1], 1.0)], 0.0, 0.0,
                total - 1)
        md.rows([(s, 1.0), (u, -1.0)], -np.inf, 0.0, total)
        md.rows([(stp, 1.0), (u, 1.0)], -np.inf, 1.0, total)
        if first:
            # The plant starts with every miner off: a start at step 0 is a start. A miner
            # that cannot pause may already run (the plant holds it on).
            if f.can_pause:
                md.rows([(s[:1], 1.0), (u[:1], -1.0)], 0.0, 0.0, 1)
            md.rows([(stp[:1], 1.0)], 0.0, 0.0, 1)
        at = real  # rows on the real steps only (the pre-roll is a free history)
        m_ = len(at)
        # minimum on / off
        up, down = _steps(f.min_on_s, dt), _steps(f.min_off_s, dt)
        if up > 1 and f.can_pause:
            md.rows([*_lagged(s, at, [(j, 1.0) for j in range(up)], 1.0), (u[at], -1.0)],
                    -np.inf, 0.0, m_)
        if down > 1 and f.can_pause:
            md.rows([*_lagged(stp, at, [(j, 1.0) for j in range(down)], 1.0), (u[at], 1.0)],
                    -np.inf, 1.0, m_)

        def shares(terms: list[tuple[int, float]], scale: float,
                   s: IntArray = s) -> list[Term]:
            return _lagged(s, real, terms, scale)

        boot = _share(0.0, f.restart_s, dt)
        ramp_in = _share(f.restart_s, f.restart_s + max(f.min_w - f.idle_w, 0.0)
                         / f.ramp_w_per_s, dt)
        # a = u − β ≥ 0
        md.rows([(u[at], 1.0), *shares(boot, -1.0)], 0.0, np.inf, m_)
        r = md.var(total, 0.0, f.max_w)
        # r ≤ max·a ; r ≥ idle·a ; r ≥ min·(a − G)
        md.rows([(r[at], 1.0), (u[at], -f.max_w), *shares(boot, f.max_w)], -np.inf, 0.0, m_)
        if f.idle_w > 0:
            md.rows([(r[at], 1.0), (u[at], -f.idle_w), *shares(boot, f.idle_w)],
                    0.0, np.inf, m_)
        md.rows([(r[at], 1.0), (u[at], -f.min_w), *shares(boot, f.min_w),
                 *shares(ramp_in, f.min_w)], 0.0, np.inf, m_)
        # ramps on the running power
        step_w = f.ramp_w_per_s * dt
        if step_w + f.idle_w < f.max_w:
            at1 = at[at >= 1]
            md.rows([(r[at1], 1.0), (r[at1 - 1], -1.0)], -np.inf, step_w + f.idle_w, len(at1))
            md.rows([(r[at1 - 1], 1.0), (r[at1], -1.0), (stp[at1], -f.max_w)],
                    -np.inf, step_w, len(at1))
            if first:
                md.rows([(r[:1], 1.0)], -np.inf, step_w + f.idle_w if f.can_pause else f.max_w,
                        1)
        # The stopping tail (≤ max·stop_s/2 per stop) only counts as absorbed surplus;
        # leaving it out of the power limits and the value is looser, hence valid.
        tail: list[Term] = [(_lag(stp, at, j), f.max_w * w) for j, w in _tail_share(f.stop_s, dt)]
        h = None
        if job.objective == "value":
            # hash rate ≤ a·Ĥ(r/a) = min over lines (c0·a + c1·r), valued on real steps
            h = md.var(total, 0.0, np.inf,
                       np.concatenate([np.zeros(pre), job.value_per_th * dt]))
            for c0, c1 in f.hash_lines:
                md.rows([(h[at], 1.0), (u[at], -c0), *shares(boot, c0), (r[at], -c1)],
                        -np.inf, 0.0, m_)
            if pre:
                md.rows([(h[:pre], 1.0)], 0.0, 0.0, pre)
        power: list[Term] = [(r[at], 1.0)]
        if f.idle_w > 0:
            power += shares(boot, f.idle_w)
        cols.append(_Cols(u, s, stp, r, h, power, tail))
    return md, cols


def _system(md: _Model, cols: list[_Cols], job: WindowJob) -> None:
    """The site's rows for the objective: what the miners may take, and what it is worth."""
    n = len(job.surplus_w)
    kwh = job.dt / J_PER_KWH
    terms = [t for c in cols for t in c.power]
    minus = [(c, -np.asarray(v)) for c, v in terms]
    if job.objective == "capture":
        absorbed = md.var(n, 0.0, job.surplus_w, kwh)
        tails = [(c, -np.asarray(v)) for cc in cols for c, v in cc.tail]
        md.rows([(absorbed, 1.0), *minus, *tails], -np.inf, 0.0, n)
        if not job.allow_import:
            forced = sum(f.min_w for f in job.facts if not f.can_pause)
            md.rows(terms, -np.inf, np.maximum(job.surplus_w, forced), n)
        return
    net = job.net_w
    most = sum(f.max_w for f in job.facts)
    imp = md.var(n, 0.0, np.maximum(job.import_limit_w, -net) + most,
                 -job.import_price * kwh)
    exp = md.var(n, 0.0, job.export_limit_w, job.export_price * kwh)
    # The inverter curtails only what the export limit refuses (at most this much).
    curt = md.var(n, 0.0, np.maximum(net - job.export_limit_w, 0.0))
    md.rows([(imp, 1.0), (exp, -1.0), (curt, -1.0), *minus], -net, -net, n)


def _eval(terms: Sequence[tuple[IntArray, FloatArray | float]], x: FloatArray, n: int
          ) -> FloatArray:
    out = np.zeros(n)
    for col, v in terms:
        vv = np.broadcast_to(np.asarray(v, np.float64), (n,))
        ok = col >= 0
        out[ok] += vv[ok] * x[col[ok]]
    return out


def _options(h: highspy.Highs, time_limit_s: float | None = None,
             gap: float | None = None) -> None:
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    if gap is not None:
        h.setOptionValue("mip_rel_gap", float(gap))
        # The warm start is the first incumbent; this heuristic took half of small solves.
        h.setOptionValue("mip_heuristic_run_feasibility_jump", False)


def _keep_min_times(on: npt.NDArray[np.bool_], up: int, down: int, start_on: bool
                    ) -> npt.NDArray[np.bool_]:
    """Drop the on-runs that are shorter than `up` steps or follow the last kept run by
    less than `down` (a run reaching the end of the window counts as long enough)."""
    out = np.zeros_like(on)
    n = len(on)
    last_end = -(10**9)
    i = 0
    while i < n:
        if not on[i]:
            i += 1
            continue
        j = i
        while j < n and on[j]:
            j += 1
        kept_from_start = start_on and i == 0
        if kept_from_start or ((j - i >= up or j == n) and i - last_end >= down):
            out[i:j] = True
            last_end = j
        i = j
    return out


def _warm_start(lp: highspy.HighsLp, x: FloatArray, cols: list[_Cols], job: WindowJob
                ) -> FloatArray | None:
    """A feasible schedule near the LP relaxation's: round its commands, keep the minimum
    on/off times, fix them and solve the rest as an LP. The best of a few thresholds."""
    best: tuple[float, FloatArray] | None = None
    lo0 = np.asarray(lp.col_lower_, np.float64).copy()
    hi0 = np.asarray(lp.col_upper_, np.float64).copy()
    for threshold in (0.5, 0.9, 0.99):
        lo, hi = lo0.copy(), hi0.copy()
        for c, f in zip(cols, job.facts, strict=True):
            if not f.can_pause:
                continue
            on = x[c.u] >= threshold
            if job.pre:
                on[: job.pre] = False  # a free history: say the miner was off
            on = _keep_min_times(on, _steps(f.min_on_s, job.dt), _steps(f.min_off_s, job.dt),
                                 start_on=False)
            lo[c.u] = hi[c.u] = on.astype(np.float64)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        _options(h)
        fixed = highspy.HighsLp()
        fixed.num_col_, fixed.num_row_ = lp.num_col_, lp.num_row_
        fixed.col_cost_, fixed.col_lower_, fixed.col_upper_ = lp.col_cost_, lo, hi
        fixed.row_lower_, fixed.row_upper_ = lp.row_lower_, lp.row_upper_
        fixed.sense_, fixed.a_matrix_ = lp.sense_, lp.a_matrix_
        h.passModel(fixed)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            continue
        obj = float(h.getInfo().objective_function_value)
        if best is None or obj > best[0]:
            xs = np.asarray(h.getSolution().col_value, dtype=np.float64)
            xs[np.concatenate([c.u for c in cols])] = np.round(
                xs[np.concatenate([c.u for c in cols])])
            best = (obj, xs)
    return None if best is None else best[1]


def _mip(lp: highspy.HighsLp, job: WindowJob, start: FloatArray | None
         ) -> tuple[highspy.Highs, FloatArray | None, float]:
    """The MILP within the time limit: (solver, its schedule, that schedule's objective
    computed from the columns)."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    _options(h, job.time_limit_s, job.mip_rel_gap)
    h.passModel(lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = start.tolist()
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    if int(h.getInfo().primal_solution_status) != 2:  # kSolutionStatusFeasible
        return h, None, -math.inf
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    return h, x, float(np.dot(np.asarray(lp.col_cost_, np.float64), x))


def solve_window(job: WindowJob) -> WindowResult:
    """Build and solve one window. The LP relaxation first (its optimum bounds the MILP;
    rounded, it gives the MIP a warm start), then the MILP within the time limit; the
    bound is the MIP's proven dual bound, or the LP's if the MIP had none in time."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    n, pre, m = len(job.surplus_w), job.pre, len(job.facts)
    if job.objective == "capture" and not np.any(job.surplus_w > 0):
        # Nothing to absorb: 0 is the optimum; the never-off miners hold their minimum.
        held = np.array([0.0 if f.can_pause else f.min_w for f in job.facts])
        return WindowResult(job.index, job.objective, n, 0.0, 0.0, "Optimal", 0.0, 0,
                            np.repeat(held[:, None], n, axis=1),
                            np.repeat((held > 0)[:, None], n, axis=1),
                            np.zeros(m, dtype=np.int64),
                            np.repeat((held > 0)[:, None], pre, axis=1))
    md, cols = _build(job)
    _system(md, cols, job)
    lp = md.highs_lp()
    integrality = lp.integrality_
    lp.integrality_ = []
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    _options(h)
    h.passModel(lp)
    h.run()
    lp_bound = math.inf
    start = None
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        lp_bound = float(h.getInfo().objective_function_value)
        start = _warm_start(lp, np.asarray(h.getSolution().col_value, np.float64), cols, job)
    lp.integrality_ = integrality
    if start is not None and math.isfinite(lp_bound):
        ws = float(np.dot(np.asarray(lp.col_cost_, np.float64), start))
        if lp_bound - ws <= job.mip_rel_gap * max(abs(lp_bound), 1e-9):
            # The warm start is already within the gap of the LP bound: no MILP needed.
            return _result(job, cols, start, ws, lp_bound, "Optimal", t0, c0, 0, False)
    h, x, primal = _mip(lp, job, start)
    if x is not None and float(h.getInfo().objective_function_value) > primal + 1e-7 * max(
            1.0, abs(primal)):
        # HiGHS 1.16 may report a better objective than the solution it hands back (seen
        # with a user solution when presolve finishes the MIP): solve again without it.
        h2, x2, primal2 = _mip(lp, job, None)
        if x2 is not None and primal2 > primal:
            h, x, primal = h2, x2, primal2
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    bound = float(info.mip_dual_bound)
    relaxed = False
    if not math.isfinite(bound):
        relaxed = math.isfinite(lp_bound)
    bound = max(min(bound, lp_bound), primal)  # a schedule reaches it: within tolerances
    return _result(job, cols, x, primal, bound, status, t0, c0, int(info.mip_node_count),
                   relaxed)


def _result(job: WindowJob, cols: list[_Cols], x: FloatArray | None, primal: float,
            bound: float, status: str, t0: float, c0: float, nodes: int, relaxed: bool
            ) -> WindowResult:
    n, pre, m = len(job.surplus_w), job.pre, len(job.facts)
    miner_w = np.zeros((m, n))
    run = np.zeros((m, n), dtype=bool)
    pre_run = np.zeros((m, pre), dtype=bool)
    starts = np.zeros(m, dtype=np.int64)
    if x is not None:
        for i, c in enumerate(cols):
            miner_w[i] = _eval(c.power, x, n)
            uu = x[c.u] > 0.5
            run[i] = uu[pre:]
            pre_run[i] = uu[:pre]
            starts[i] = round(float(x[c.s[pre:]].sum()))
    return WindowResult(job.index, job.objective, n, primal, bound, status,
                        time.perf_counter() - t0, nodes, miner_w, run, starts, pre_run,
                        relaxed, time.process_time() - c0)


# ----------------------------------------------------------------------------- the trace, streamed

MAX_WINDOW_STEPS = 240


class WindowCutter:
    """The windows' (first, end) rows as the trace's rows arrive: local mean solar
    midnights (about one day each, cut into pieces of at most `MAX_WINDOW_STEPS`), or every
    `window_steps` from the start.

    A midnight less than a quarter day from either end of the trace is no cut, so a cut
    is final once a quarter day of rows follows it, and a day's pieces are known once its
    end is: at most about a day and a quarter of rows wait for their windows, whatever
    the trace's length."""

    def __init__(self, longitude_deg: float, step_s: float, window_steps: int | None) -> None:
        if window_steps is not None and window_steps < 1:
            raise ValueError(f"window_steps must be at least 1, got {window_steps}")
        self.longitude_deg = longitude_deg
        self.step_s = step_s
        self.window_steps = window_steps
        self.quarter_day = round(DAY_S / step_s) // 4
        self.rows = 0  # rows fed so far
        self.start = 0  # first row not yet in a window handed out
        self._cuts: list[int] = []  # solar midnights not yet known to be cuts

    def feed(self, time_s: FloatArray) -> list[tuple[int, int]]:
        """The windows these next rows complete."""
        first = self.rows
        self.rows += len(time_s)
        out: list[tuple[int, int]] = []
        if self.window_steps is not None:
            while self.start + self.window_steps <= self.rows:
                out.append((self.start, self.start + self.window_steps))
                self.start += self.window_steps
            return out
        solar = (time_s + self.longitude_deg / 360.0 * DAY_S) % DAY_S
        self._cuts += [first + int(i) for i in np.flatnonzero(solar < self.step_s)
                       if first + int(i) > 0 and first + int(i) >= self.quarter_day]
        while self._cuts and self.rows - self._cuts[0] >= self.quarter_day:
            cut = self._cuts.pop(0)
            out += self._pieces(self.start, cut)
            self.start = cut
        return out

    def close(self) -> list[tuple[int, int]]:
        """The last windows, up to the trace's end."""
        out = [] if self.start >= self.rows else (
            [(self.start, self.rows)] if self.window_steps is not None
            else self._pieces(self.start, self.rows))
        self._cuts.clear()
        self.start = self.rows
        return out

    @staticmethod
    def _pieces(a: int, b: int) -> list[tuple[int, int]]:
        parts = max(1, math.ceil((b - a) / MAX_WINDOW_STEPS))
        cuts = [a + (b - a) * p // parts for p in range(parts)]
        return list(zip(cuts, [*cuts[1:], b], strict=True))


def window_starts(trace: Trace, longitude_deg: float, window_steps: int | None) -> list[int]:
    """First step of each window of the whole trace (see `WindowCutter`)."""
    cutter = WindowCutter(longitude_deg, trace.step_s, window_steps)
    return [a for a, _ in [*cutter.feed(trace.time_s), *cutter.close()]]


@dataclass
class Ceiling:
    """One objective's ceiling over the whole trace."""

    objective: str
    bound: float  # proven upper bound (kWh for capture, site currency for value)
    schedule: float  # what the stitched best schedule achieves
    miner_w: dict[str, FloatArray]  # the schedule, per miner and step ({}: not kept)
    starts: dict[str, int]
    windows: int
    optimal_windows: int
    time_limited_windows: int
    relaxed_windows: int  # windows bounded by their LP relaxation (no MIP bound in time)
    boundary_mismatches: int
    solve_s: float  # summed over windows (wall)
    max_window_s: float
    cpu_s: float  # summed over windows
    nodes: int

    @property
    def gap(self) -> float:
        """(bound − schedule) / |bound|: how far the schedule may be from the optimum."""
        if not math.isfinite(self.schedule):
            return math.inf
        return (self.bound - self.schedule) / abs(self.bound) if self.bound else 0.0


@dataclass
class CeilingResult:
    site: str
    trace: str
    steps: int
    step_s: float
    currency: str
    surplus_kwh: float
    capture: Ceiling
    value: Ceiling | None  # None: a site with battery or tank (the loose bound applies)
    baseline_value: float  # net value with no miners at all
    allow_import: bool
    restart_cost: float
    wall_s: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-ready figures (what `hearth bound` prints)."""
        def one(c: Ceiling | None, digits: int) -> dict[str, object] | None:
            if c is None:
                return None
            return {
                "ceiling": round(c.bound, digits), "schedule": round(c.schedule, digits),
                "gap": round(c.gap, 6), "starts": c.starts, "windows": c.windows,
                "optimal_windows": c.optimal_windows,
                "time_limited_windows": c.time_limited_windows,
                "lp_bounded_windows": c.relaxed_windows,
                "boundary_mismatches": c.boundary_mismatches,
                "solve_s": round(c.solve_s, 2), "max_window_s": round(c.max_window_s, 2),
                "cpu_s": round(c.cpu_s, 2),
                "nodes": c.nodes,
            }
        cap = one(self.capture, 3)
        assert cap is not None
        cap["unit"] = "kWh"
        if self.surplus_kwh > 0:
            cap["of_surplus"] = round(self.capture.bound / self.surplus_kwh, 4)
        val = one(self.value, 2)
        if val is not None:
            val["unit"] = self.currency
            val["baseline_no_miners"] = round(self.baseline_value, 2)
        return {
            "site": self.site, "trace": self.trace, "steps": self.steps, "step_s": self.step_s,
            "surplus_kwh": round(self.surplus_kwh, 3), "capture_ceiling": cap,
            "value_ceiling": val, "allow_import": self.allow_import,
            "restart_cost": self.restart_cost, "wall_s": round(self.wall_s, 2),
            "notes": self.notes,
        }


class _SiteSums:
    """Running sums over the trace: the surplus, the heat demand and the no-miner value."""

    def __init__(self, cfg: SiteConfig) -> None:
        self.cfg = cfg
        self.surplus_w = 0.0  # W·rows
        self.heat_w = 0.0  # W·rows
        self.money = 0.0  # currency/kWh·W·rows: export revenue − import cost
        self.export_above_import = False

    def feed(self, trace: Trace, surplus: FloatArray | None = None) -> None:
        net = np.asarray(trace.pv_w - trace.load_w)
        imp = np.maximum(-net, 0.0)
        exp = np.minimum(np.maximum(net, 0.0), self.cfg.site.grid_export_limit_w)
        self.money += float(np.sum(exp * trace.export_price - imp * trace.import_price))
        self.heat_w += float(np.sum(trace.heat_demand_w))
        if surplus is not None:
            self.surplus_w += float(surplus.sum())
        self.export_above_import |= bool(np.any(trace.export_price > trace.import_price))

    def heat_cost(self, step_s: float) -> float:
        """What the backup heater costs for the whole heat demand."""
        return heat_cost_per_kwh(self.cfg) * step_s / J_PER_KWH * self.heat_w

    def baseline_value(self, step_s: float) -> float:
        return self.money * step_s / J_PER_KWH - self.heat_cost(step_s)


def baseline_value(cfg: SiteConfig, trace: TraceInput) -> float:
    """The sim's net value with no miners: the house alone against the grid."""
    sums = _SiteSums(cfg)
    step_s = math.nan
    for chunk in trace_chunks(trace):
        sums.feed(chunk)
        step_s = chunk.step_s
    return sums.baseline_value(step_s)


class _Objective:
    """One objective's running figures over the windows solved so far (in window order)."""

    def __init__(self, objective: str, miners: int, pre: int, keep: bool) -> None:
        self.objective = objective
        self.pre = pre
        self.bound = 0.0
        self.schedule = 0.0
        self.starts = np.zeros(miners, dtype=np.int64)
        self.windows = self.optimal = self.time_limited = self.relaxed = 0
        self.mismatches = self.nodes = 0
        self.solve_s = self.cpu_s = 0.0
        self.max_window_s = -math.inf
        # The last `pre` commands of the stitched schedule (a window's free history must
        # agree with them) and, if kept, every window's miner powers.
        self.last_run = np.zeros((miners, 0), dtype=bool)
        self.kept: list[FloatArray] | None = [] if keep else None

    def add(self, r: WindowResult) -> None:
        have = min(self.last_run.shape[1], r.pre_run.shape[1])
        if have and not np.array_equal(self.last_run[:, -have:], r.pre_run[:, -have:]):
            self.mismatches += 1
        self.last_run = np.concatenate([self.last_run, r.run], axis=1)[:, -self.pre:]
        self.bound += r.bound
        self.schedule += r.primal
        self.starts += r.starts
        self.windows += 1
        self.optimal += r.status == "Optimal"
        self.time_limited += r.status == "Time limit reached"
        self.relaxed += r.relaxed_bound
        self.solve_s += r.solve_s
        self.max_window_s = max(self.max_window_s, r.solve_s)
        self.cpu_s += r.cpu_s
        self.nodes += r.nodes
        if self.kept is not None:
            self.kept.append(r.miner_w)

    def ceiling(self, names: list[str], offset: float) -> Ceiling:
        """The figures, `offset` added to the objective (the value's heat cost)."""
        miner_w = np.concatenate(self.kept, axis=1) if self.kept else None
        return Ceiling(
            objective=self.objective, bound=self.bound + offset,
            schedule=self.schedule + offset,
            miner_w={} if miner_w is None else {nm: miner_w[i] for i, nm in enumerate(names)},
            starts={nm: int(self.starts[i]) for i, nm in enumerate(names)},
            windows=self.windows, optimal_windows=self.optimal,
            time_limited_windows=self.time_limited, relaxed_windows=self.relaxed,
            boundary_mismatches=self.mismatches, solve_s=self.solve_s,
            max_window_s=self.max_window_s, cpu_s=self.cpu_s, nodes=self.nodes)


def _solved(x: Future[WindowResult] | WindowResult) -> WindowResult:
    return x.result() if isinstance(x, Future) else x


class _Pipeline:
    """Solves the windows `workers` at a time and hands their results on in window order.
    At most `2 × workers` windows are in flight (submitted, or solved and waiting for an
    earlier one), so memory does not grow with the number of windows."""

    def __init__(self, workers: int, done: Callable[[FloatArray, list[WindowResult]], None]
                 ) -> None:
        self.workers = workers
        self.done = done
        self.pool: ProcessPoolExecutor | None = None
        self.queue: deque[tuple[FloatArray, list[Future[WindowResult] | WindowResult]]] = \
            deque()

    def submit(self, time_s: FloatArray, jobs: list[WindowJob]) -> None:
        if self.workers <= 1:
            self.done(time_s, [solve_window(j) for j in jobs])
            return
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=self.workers)
        self.queue.append((time_s, [self.pool.submit(solve_window, j) for j in jobs]))
        while len(self.queue) > 2 * self.workers:
            self._next()

    def drain(self) -> None:
        while self.queue:
            self._next()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _next(self) -> None:
        time_s, futures = self.queue.popleft()
        self.done(time_s, [_solved(f) for f in futures])


def _format_rows(time_s: FloatArray, arrays: Sequence[FloatArray]) -> str:
    """Schedule CSV lines: the time, then each array's value at 0.1 W."""
    times = np.datetime_as_string(time_s.astype("datetime64[s]"), unit="s")
    cols = [[f"{t}Z" for t in times.tolist()]] + [np.char.mod("%.1f", a).tolist()
                                                  for a in arrays]
    return "".join(",".join(row) + "\n" for row in zip(*cols, strict=True))


class ScheduleWriter:
    """The per-step miner powers of each objective's schedule (CSV), written window by
    window. The file appears under its name only when the whole trace is done (`close`):
    a failed run leaves no half schedule behind."""

    def __init__(self, path: str | Path, objectives: Sequence[str], names: Sequence[str]
                 ) -> None:
        self._file = PendingFile(path)
        self._file.write(",".join(["time", *(f"{o}_{nm}_w" for o in objectives
                                             for nm in names)]) + "\n")

    def rows(self, time_s: FloatArray, miner_w: Sequence[FloatArray]) -> None:
        """One window: its times and each objective's (miners, steps) powers."""
        self._file.write(_format_rows(time_s, [row for m in miner_w for row in m]))

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.abort()


def ceiling(cfg: SiteConfig, trace: TraceInput, window_steps: int | None = None,
            time_limit_s: float = 10.0, objectives: Sequence[str] = OBJECTIVES,
            allow_import: bool = False, restart_cost: float = 0.0, jobs: int | None = None,
            mip_rel_gap: float = 1e-3, *, schedule_path: str | Path | None = None,
            keep_schedule: bool | None = None) -> CeilingResult:
    """The capture and value ceilings of `trace` on `cfg` (see the module docstring).

    `trace` is a whole `Trace` or its consecutive chunks (`iter_trace`): the windows are
    cut as the rows arrive and solved at once, and only running sums are kept, so memory
    is flat in the trace's length (up to a day and a quarter of rows wait for their
    window's end, see `WindowCutter`). `time_limit_s` is per window and objective; `jobs`
    windows are solved at once (default: the CPUs this process may use, at most 2), with
    at most 2 × `jobs` in flight. `schedule_path`: write the per-step miner powers there
    (CSV), window by window; `keep_schedule` (default: for a whole `Trace`) also keeps
    them in `Ceiling.miner_w`."""
    t0 = time.perf_counter()
    for o in objectives:
        if o not in OBJECTIVES:
            raise ValueError(f"unknown objective {o!r}; one of {OBJECTIVES}")
    if restart_cost < 0:
        raise ValueError(f"restart_cost must be ≥ 0, got {restart_cost}")
    if window_steps is not None and window_steps < 1:
        raise ValueError(f"window_steps must be at least 1, got {window_steps}")
    keep = isinstance(trace, Trace) if keep_schedule is None else keep_schedule
    facts = tuple(miner_facts(m) for m in cfg.miners)
    names = [m.name for m in cfg.miners]
    value_ok = cfg.battery is None and cfg.tank is None
    todo = [o for o in OBJECTIVES if o in objectives and (o == "capture" or value_ok)]
    if "capture" not in todo:
        raise ValueError("the capture objective is always solved")
    workers = jobs if jobs is not None else min(2, len(os.sched_getaffinity(0)))
    sums = _SiteSums(cfg)
    surplus: MinerlessSurplus | None = None
    rows = RowBuffer()
    writer = ScheduleWriter(schedule_path, todo, names) if schedule_path else None
    acc: dict[str, _Objective] = {}
    cutter: WindowCutter | None = None
    dt, source, pre, windows = math.nan, "<trace>", 0, 0

    def done(time_s: FloatArray, results: list[WindowResult]) -> None:
        for r in results:
            acc[r.objective].add(r)
        if writer is not None:
            writer.rows(time_s, [r.miner_w for r in results])

    def window(a: int, b: int) -> None:
        nonlocal windows
        w = rows.take(a, b)
        pipeline.submit(w["time_s"], [
            WindowJob(index=windows, objective=o, dt=dt, facts=facts, pre=0 if a == 0 else pre,
                      surplus_w=w["surplus_w"], net_w=w["net_w"],
                      import_price=w["import_price"], export_price=w["export_price"],
                      value_per_th=w["value_per_th"], import_limit_w=cfg.site.import_limit_w,
                      export_limit_w=cfg.site.grid_export_limit_w, restart_cost=restart_cost,
                      allow_import=allow_import, time_limit_s=time_limit_s,
                      mip_rel_gap=mip_rel_gap)
            for o in todo])
        windows += 1

    pipeline = _Pipeline(workers, done)
    try:
        for chunk in trace_chunks(trace):
            if cutter is None:
                dt, source = chunk.step_s, chunk.source
                pre = max(_lags(f, dt) for f in facts)
                cutter = WindowCutter(cfg.site.longitude_deg, dt, window_steps)
                # What a miner-less run exports or curtails (`hearth sim`'s surplus_w), the
                # battery's state of charge carried from chunk to chunk.
                surplus = MinerlessSurplus(cfg, dt)
                acc = {o: _Objective(o, len(facts), pre, keep) for o in todo}
            assert surplus is not None
            sur = np.asarray(surplus.run(chunk.pv_w.tolist(), chunk.load_w.tolist()),
                             dtype=np.float64)
            sums.feed(chunk, sur)
            rows.append(time_s=np.asarray(chunk.time_s, np.float64), surplus_w=sur,
                        net_w=np.asarray(chunk.pv_w - chunk.load_w, dtype=np.float64),
                        import_price=np.asarray(chunk.import_price, np.float64),
                        export_price=np.asarray(chunk.export_price, np.float64),
                        value_per_th=np.asarray(value_per_th(cfg, chunk), np.float64))
            for a, b in cutter.feed(chunk.time_s):
                window(a, b)
        if cutter is None:
            raise ValueError("the trace has no rows")
        for a, b in cutter.close():
            window(a, b)
        pipeline.drain()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        pipeline.close()
    if writer is not None:
        writer.close()
    notes: list[str] = []
    if not value_ok:
        notes.append("value ceiling not defined for a site with a battery or tank: the "
                     "loose bound (LP) applies")
    if cfg.tank is not None:
        notes.append("capture ceiling ignores the tank's temperature limit (looser)")
    if sums.export_above_import:
        notes.append("some steps pay more for export than import costs: the value model "
                     "may import and export at once there (a looser ceiling)")
    heat = sums.heat_cost(dt)
    return CeilingResult(
        site=cfg.site.id, trace=source, steps=cutter.rows, step_s=dt,
        currency=cfg.site.currency, surplus_kwh=sums.surplus_w * dt / J_PER_KWH,
        capture=acc["capture"].ceiling(names, 0.0),
        value=acc["value"].ceiling(names, -heat) if "value" in acc else None,
        baseline_value=sums.baseline_value(dt), allow_import=allow_import,
        restart_cost=restart_cost, wall_s=time.perf_counter() - t0, notes=notes)


def render_ceiling(summary: dict[str, object]) -> str:
    """The figures in words, for `hearth bound`."""
    lines = [f"site {summary['site']} · trace {summary['trace']} · {summary['steps']} steps "
             f"of {summary['step_s']:.0f} s · surplus {summary['surplus_kwh']:.1f} kWh"]

    def block(title: str, c: object, unit: str) -> None:
        if not isinstance(c, dict):
            return
        lines.append(f"{title}: {c['ceiling']:,.3f} {unit} (a schedule reaching "
                     f"{c['schedule']:,.3f}: gap {c['gap']:.2%})")
        lines.append(f"  windows {c['windows']}: {c['optimal_windows']} optimal, "
                     f"{c['time_limited_windows']} at the time limit "
                     f"({c['lp_bounded_windows']} bounded by their LP relaxation); "
                     f"{c['boundary_mismatches']} stitching mismatches; solver "
                     f"{c['solve_s']:.1f} s, {c['cpu_s']:.1f} s CPU (slowest window "
                     f"{c['max_window_s']:.1f} s)")
        lines.append(f"  starts: {c['starts']}")

    cap = summary["capture_ceiling"]
    block("capture ceiling" + (" (import allowed)" if summary["allow_import"] else
                               " (no miner-caused import)"), cap, "kWh")
    if isinstance(cap, dict) and "of_surplus" in cap:
        lines.append(f"  = {cap['of_surplus']:.1%} of the surplus")
    val = summary["value_ceiling"]
    if isinstance(val, dict):
        block("value ceiling (net value)", val, str(val["unit"]))
        lines.append(f"  without miners: {val['baseline_no_miners']:,.2f} {val['unit']}")
    if "loose_bound_value" in summary:
        lines.append(f"loose bound (relaxed LP, miners from 0 W, no on/off): net value "
                     f"{summary['loose_bound_value']:,.2f}")
    notes = summary.get("notes")
    if isinstance(notes, list):
        lines += [f"note: {x}" for x in notes]
    lines.append(f"wall time {summary['wall_s']:.1f} s")
    return "\n".join(lines)


def write_schedule(res: CeilingResult, trace: Trace, path: str | Path) -> None:
    """Per step: each miner's power in the kept capture (and value) schedule, CSV (the
    whole-trace twin of `ceiling(..., schedule_path=...)`)."""
    kept = [res.capture] + ([res.value] if res.value is not None else [])
    w = ScheduleWriter(path, [c.objective for c in kept], list(res.capture.miner_w))
    w.rows(trace.time_s, [np.array(list(c.miner_w.values())) for c in kept])
    w.close()
