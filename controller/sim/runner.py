"""`hearth sim`: the real controller against the plant model, in virtual time.

Each trace row is one control tick: the plant is measured at the row's time (with that
row's PV and load), the policy steps on that frozen snapshot, and the plant integrates the
commands over the row's step. A miner-less counterfactual of the same site gives what would
have been exported or curtailed without miners (the surplus the miners could capture).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.control.controller import Controller
from controller.control.evcc import EvccController
from controller.control.overrides import NO_OVERRIDES, Overrides
from controller.control.threshold import ThresholdController
from controller.control.types import Commands, Policy
from controller.economics.hashprice import BtcTerms, RowTerms
from controller.sim.plant.site import MinerlessSurplus, Plant, StepFlows
from controller.sim.stream import (
    BLOCK_ROWS,
    TIMELINE_COLUMNS,
    Block,
    ColumnKeeper,
    SimConsumer,
    Totals,
)
from controller.trace.reader import (
    NUMBER_COLUMNS,
    Trace,
    TraceInput,
    concat_traces,
    trace_chunks,
)

if TYPE_CHECKING:
    from controller.plan.planner import Planner

__all__ = ["POLICIES", "TIMELINE_COLUMNS", "Block", "SimConsumer", "SimResult", "simulate"]

FloatArray = npt.NDArray[np.float64]

POLICIES: dict[str, Callable[[SiteConfig, float], Policy]] = {
    "hearth": lambda cfg, tick: Controller(cfg, tick_s=tick),
    "threshold": lambda cfg, tick: ThresholdController(cfg),
    "evcc": lambda cfg, tick: EvccController(cfg),
    "evcc-all": lambda cfg, tick: EvccController(cfg, round_robin=False),
}



@dataclass
class SimResult:
    """What a run produced. Always: the summary's running sums (`totals`), starts, trips
    and forced stops (events, few). With `keep_columns` (the default for in-memory
    traces): the whole trace and per-row arrays (step averages; soc and tank at end of
    step), modes and limiters; without it those stay empty and `trace` is None."""

    cfg: SiteConfig
    trace: Trace | None
    policy: str  # "hearth", "threshold", "hearth+plan"
    columns: dict[str, FloatArray]
    mode: list[str]
    limiter: list[str]  # what set the miners' total in each row
    miner_run: dict[str, npt.NDArray[np.bool_]]  # commanded run flag per miner and row
    miner_energy_j: dict[str, FloatArray]
    starts: dict[str, int]
    forced_off: dict[str, list[int]]  # rows where a hard limit stopped the miner
    trips: dict[str, int]  # trip code -> rows it was active
    totals: Totals
    source: str = "<trace>"
    steps: int = 0
    step_s: float = 0.0
    start_s: float = 0.0
    end_s: float = 0.0
    trip_log: list[tuple[int, str, str]] = field(default_factory=list)  # (row, code, reason)
    terahashes: float = 0.0
    wall_s: float = 0.0
    plan: dict[str, object] | None = None  # the planner's figures (forecast, replans, ...)
    # Miners whose firmware cannot pause: stop commands the plant held at minimum instead.
    stops_held_at_min: dict[str, int] = field(default_factory=dict)

    def kept_trace(self) -> Trace:
        """The whole trace; only for runs that kept their columns."""
        if self.trace is None:
            raise ValueError("this simulation streamed its rows (keep_columns=False): "
                             "per-row arrays were not kept")
        return self.trace

    def as_block(self) -> Block:
        """A kept run as one block, for code written for blocks (checks, timeline, ...)."""
        return Block(start=0, trace=self.kept_trace(), columns=self.columns, mode=self.mode,
                     limiter=self.limiter, miner_run=self.miner_run,
                     miner_energy_j=self.miner_energy_j, forced_off=self.forced_off)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The sim loop keeps a block of small records alive at a time; none form cycles (they
    go by reference counting), but the cyclic GC would scan them again and again."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Progress:
    """A plain progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._next = 0

    def update(self, i: int) -> None:
        if not self.enabled or i < self._next:
            return
        if not self.total:  # a streamed trace: its length is not known in advance
            self._next = i + 1
            sys.stderr.write(f"\r  sim {i:,} rows")
            sys.stderr.flush()
            return
        self._next = i + max(self.total // 200, 1)
        frac = i / max(self.total, 1)
        bar = "#" * int(frac * 40)
        sys.stderr.write(f"\r  sim [{bar:<40}] {frac:6.1%}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _blocks(trace: TraceInput, block_rows: int) -> Iterator[Trace]:
    """The trace (or its chunks) cut into slices of at most `block_rows` rows (views)."""
    for ch in trace_chunks(trace):
        n = len(ch)
        if n <= block_rows:
            yield ch
            continue
        for a in range(0, n, block_rows):
            yield Trace(step_s=ch.step_s, source=ch.source, columns=ch.columns,
                        **{k: getattr(ch, k)[a:a + block_rows] for k in _TRACE_ARRAYS})


_TRACE_ARRAYS = ("time_s", *NUMBER_COLUMNS)


def simulate(
    cfg: SiteConfig,
    trace: TraceInput,
    policy: str = "hearth",
    progress: bool | None = None,
    plan: str | None = None,
    *,
    consumers: Sequence[SimConsumer] = (),
    keep_columns: bool | None = None,
    block_rows: int = BLOCK_ROWS,
) -> SimResult:
    """Run `policy` over `trace`, a whole `Trace` or its consecutive chunks (`iter_trace`:
    memory then stays flat in the trace's length).

    Each block of rows goes to every consumer in `consumers` (a `TimelineWriter`, a
    ledger sink, ...) as soon as it is simulated. `keep_columns` (default: only for a
    whole `Trace`) also keeps per-row arrays in the result. `plan` ("persistence" or
    "perfect"): the day-ahead planner feeds the hearth controller's overrides (tank
    target, buy floor), re-planning as `[plan]` says; it needs the whole trace.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown controller {policy!r}; choose from {sorted(POLICIES)}")
    if plan is not None and policy != "hearth":
        raise ValueError("a day-ahead plan drives the hearth controller only")
    whole = isinstance(trace, Trace)
    if plan is not None and not isinstance(trace, Trace):
        trace = concat_traces(trace)  # the forecast looks at the whole trace
    keep = whole if keep_columns is None else keep_columns
    t0 = time.perf_counter()
    keeper = ColumnKeeper() if keep else None
    sinks: list[SimConsumer] = [*consumers, *([keeper] if keeper is not None else [])]
    bar = _Progress(len(trace) if isinstance(trace, Trace) else 0, progress)
    run = _Run(cfg, policy, plan, trace if isinstance(trace, Trace) else None)
    try:
        with _gc_paused():
            for piece in _blocks(trace, block_rows):
                b = run.block(piece)
                for c in sinks:
                    c.block(b)
                bar.update(run.rows)
    except BaseException:
        for c in sinks:
            abort = getattr(c, "abort", None)
            if abort is not None:
                abort()
        raise
    finally:
        bar.close()
    for c in sinks:
        c.close()
    if run.totals is None:
        raise ValueError("the trace has no rows")
    full: Trace | None = None
    if keeper is not None:
        full = trace if isinstance(trace, Trace) else concat_traces(keeper.traces)
    return SimResult(
        cfg=cfg, trace=full, policy=policy if plan is None else "hearth+plan",
        columns=keeper.columns if keeper else {}, mode=keeper.mode if keeper else [],
        limiter=keeper.limiter if keeper else [],
        miner_run=keeper.miner_run if keeper else {},
        miner_energy_j=keeper.miner_energy_j if keeper else {},
        starts=dict(zip(run.names, run.started.tolist(), strict=True)),
        forced_off=run.forced, trips=run.trips, totals=run.totals, source=run.source,
        steps=run.rows, step_s=run.dt, start_s=run.start_s, end_s=run.end_s,
        trip_log=run.trip_log, terahashes=run.terahashes, wall_s=time.perf_counter() - t0,
        plan=run.plan_figures(),
        stops_held_at_min={mm.cfg.name: mm.stops_held_at_min for mm in run.plant.miners
                           if not mm.can_pause},
    )


class _Run:
    """The state of one run between blocks: plant, policy, planner, event counters."""

    def __init__(self, cfg: SiteConfig, policy: str, plan: str | None,
                 whole: Trace | None) -> None:
        self.cfg = cfg
        self.policy = policy
        self.plan = plan
        self.whole = whole
        self.names = [m.name for m in cfg.miners]
        self.plant = Plant(cfg)
        self.rows = 0
        self.dt = 0.0
        self.source = "<trace>"
        self.start_s = self.end_s = 0.0
        self.trips: dict[str, int] = {}
        self.trip_log: list[tuple[int, str, str]] = []
        self.forced: dict[str, list[int]] = {nm: [] for nm in self.names}
        self.prev_codes: frozenset[str] = frozenset()
        self.started = np.zeros(len(self.names), dtype=np.int64)
        self.terahashes = 0.0
        self.totals: Totals | None = None
        self.ctrl: Policy | None = None
        self.planner: Planner | None = None
        self.surplus: MinerlessSurplus | None = None
        self.overrides: Overrides = NO_OVERRIDES
        self.last_out: object = None
        self.prev_surplus: float | None = None
        self.prev_heat: float | None = None
        self.row_terms = RowTerms(cfg.bitcoin)

    def _start(self, first: Trace) -> None:
        cfg, dt = self.cfg, first.step_s
        self.dt, self.source, self.start_s = dt, first.source, first.start_s
        self.ctrl = POLICIES[self.policy](cfg, dt)
        self.totals = Totals(cfg, dt)
        self.surplus = MinerlessSurplus(cfg, dt)
        if self.plan is not None:
            from controller.plan.forecast import TraceForecast
            from controller.plan.planner import Planner

            assert self.whole is not None
            pc = cfg.plan
            self.planner = Planner(
                cfg, TraceForecast(cfg, self.whole, self.plan, float(pc.step_s), pc.horizon_h,
                                   pc.prices_published_hour_local),
                pc.deviation_kwh, min_replan_interval_s=pc.min_replan_interval_s)

    def block(self, tr: Trace) -> Block:
        """Simulate the rows of `tr` (the next rows of the run)."""
        if self.ctrl is None:
            self._start(tr)
        assert self.ctrl is not None and self.totals is not None and self.surplus is not None
        if tr.step_s != self.dt:
            raise ValueError(f"trace chunk step {tr.step_s} s differs from {self.dt} s")
        dt, plant, ctrl, planner = self.dt, self.plant, self.ctrl, self.planner
        step_o = ctrl.step if planner is None else None
        base = self.rows
        n = len(tr)
        pv_arr, load_arr = tr.pv_w.tolist(), tr.load_w.tolist()
        heat_arr = tr.heat_demand_w.tolist()
        imp_arr, exp_arr = tr.import_price.tolist(), tr.export_price.tolist()
        dr_arr, time_arr = tr.dr_limit_w.tolist(), tr.time_s.tolist()
        # The bitcoin terms of each step (issue 16): None where the trace gives none (the
        # controller's static `[bitcoin]`), else one object per distinct row.
        row_terms = self.row_terms
        hv, btc, hp = tr.hashvalue_sats_per_th_day, tr.btc_price, tr.hashprice
        terms_arr: list[BtcTerms | None] = (
            [None] * n if row_terms.is_static(hv, btc, hp) else _row_terms(row_terms, hv, btc, hp))
        nan = float("nan")
        flows: list[StepFlows] = []
        seen: list[tuple[float, float, float, float, float]] = []  # what the controller saw
        decided: list[Commands] = []
        trips, trip_log = self.trips, self.trip_log
        forced: dict[str, list[int]] = {nm: [] for nm in self.names}
        prev_codes = self.prev_codes
        for i in range(n):
            now, pv, load = time_arr[i], pv_arr[i], load_arr[i]
            dr = dr_arr[i]
            meas = plant.measure(now, pv, load, imp_arr[i], exp_arr[i],
                                 None if dr != dr else dr,  # nan = no cap
                                 btc_terms=terms_arr[i])
            if step_o is not None:
                cmds: Commands = step_o(meas, now)
            else:
                assert planner is not None
                tk, sc = meas.tank_temp_c, meas.soc_pct
                out = planner.update(now, None if tk is None else tk.value,
                                     None if sc is None else sc.value, self.prev_surplus,
                                     self.prev_heat, dt)
                if out is not self.last_out:
                    self.last_out = out
                    self.overrides = Overrides(plan_tank_target_c=out.tank_target_c,
                                               plan_min_w=out.plan_min_w)
                cmds = ctrl.step(meas, now, self.overrides)  # type: ignore[call-arg]
                self.prev_surplus, self.prev_heat = pv - load, heat_arr[i]
            flows.append(plant.step(cmds, dt, pv, load, heat_arr[i]))
            decided.append(cmds)
            g, b, soc = meas.grid_power_w, meas.battery_power_w, meas.soc_pct
            seen.append((
                nan if g is None else g.value,
                nan if b is None else b.value,
                nan if soc is None else soc.value,
                plant.measured_miner_w,
                cmds.total_target_w,
            ))
            if cmds.trips or prev_codes:
                codes = frozenset(t.code for t in cmds.trips)
                for t in cmds.trips:
                    trips[t.code] = trips.get(t.code, 0) + 1
                    if t.code == "forced_off" and t.miner is not None:
                        forced[t.miner].append(base + i)
                    if t.code not in prev_codes or t.code == "forced_off":
                        trip_log.append((base + i, t.code, t.reason))
                prev_codes = codes
        self.prev_codes = prev_codes
        for nm, rows in forced.items():
            self.forced[nm].extend(rows)

        cols = _columns(flows, seen, tr, dt)
        cols["surplus_w"] = np.asarray(self.surplus.run(pv_arr, load_arr), dtype=np.float64)
        k = len(self.names)
        col = {nm: j for j, nm in enumerate(self.names)}
        flags = np.zeros(n * k, dtype=bool)
        flags[[i * k + col[cmd.name] for i, cmds in enumerate(decided)
               for cmd in cmds.miners if cmd.run]] = True
        run = {nm: flags[j::k] for j, nm in enumerate(self.names)}
        per_miner = np.asarray([f.miner_energy_j for f in flows], dtype=np.float64).reshape(n, k)
        energy = {nm: per_miner[:, j] for j, nm in enumerate(self.names)}
        self.started += np.asarray([f.starts for f in flows], dtype=np.int64) \
            .reshape(n, k).sum(axis=0)
        self.terahashes += float(sum(f.terahashes for f in flows))
        self.rows += n
        self.end_s = tr.end_s
        blk = Block(start=base, trace=tr, columns=cols, mode=[c.mode for c in decided],
                    limiter=[c.limiter for c in decided], miner_run=run,
                    miner_energy_j=energy, forced_off=forced)
        self.totals.block(blk)
        return blk

    def plan_figures(self) -> dict[str, object] | None:
        planner = self.planner
        if planner is None:
            return None
        solves = sorted(planner.solve_s)
        return {
            "forecast": self.plan, "replans": planner.replans, "reasons": dict(planner.reasons),
            "failures": planner.failures,
            "solve_ms_median": round(solves[len(solves) // 2] * 1e3, 2) if solves else None,
            "solve_ms_max": round(solves[-1] * 1e3, 2) if solves else None,
        }


def _row_terms(row_terms: RowTerms, hv: FloatArray, btc: FloatArray,
               hp: FloatArray) -> list[BtcTerms | None]:
    """Each row's terms, resolved once per run of equal rows (a year's terms change daily:
    a few hundred runs for half a million rows)."""
    n = len(hv)
    if n == 0:
        return []
    keys = np.column_stack([np.where(np.isnan(a), -1.0, a) for a in (hv, btc, hp)])
    starts = np.flatnonzero(np.concatenate(([True], np.any(keys[1:] != keys[:-1], axis=1))))
    out: list[BtcTerms | None] = []
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True):
        out.extend([row_terms(float(hv[a]), float(btc[a]), float(hp[a]))] * (b - a))
    return out


_FIELD = {name: i for i, name in enumerate(StepFlows._fields)}
_FLOW_COLUMNS = ("pv_w", "curtailed_w", "load_w", "miner_w", "battery_w", "soc_pct", "grid_w",
                 "tank_c", "heat_to_tank_w", "heat_demand_w", "heat_from_tank_w",
                 "backup_heat_w", "unserved_w")


def _columns(flows: list[StepFlows], seen: list[tuple[float, float, float, float, float]],
             trace: Trace, dt: float) -> dict[str, FloatArray]:
    n = len(flows)
    cols: dict[str, FloatArray] = {}
    by_field = list(zip(*flows, strict=True)) if flows else [()] * len(StepFlows._fields)
    for name in _FLOW_COLUMNS:
        cols[name] = np.array(by_field[_FIELD[name]], dtype=np.float64)
    th = np.array(by_field[_FIELD["terahashes"]], dtype=np.float64)
    cols["hashrate_ths"] = th / dt
    seen_arr = np.asarray(seen, dtype=np.float64).reshape(n, 5)
    for j, name in enumerate(("meas_grid_w", "meas_battery_w", "meas_soc_pct", "meas_miner_w",
                              "miner_target_w")):
        cols[name] = seen_arr[:, j]
    cols["import_price"] = np.asarray(trace.import_price, dtype=np.float64)
    cols["export_price"] = np.asarray(trace.export_price, dtype=np.float64)
    # Attribution: PV serves the house first, then the miners; then the battery's
    # discharge (house first); the grid supplies the rest.
    miner, pv, load = cols["miner_w"], cols["pv_w"], cols["load_w"]
    from_pv = np.minimum(miner, np.maximum(pv - load, 0.0))
    rest = miner - from_pv
    discharge = np.maximum(-cols["battery_w"], 0.0)
    from_bat = np.minimum(rest, np.maximum(discharge - np.maximum(load - pv, 0.0), 0.0))
    cols["miner_from_pv_w"] = from_pv
    cols["miner_from_battery_w"] = from_bat
    cols["miner_from_grid_w"] = rest - from_bat
    return cols
