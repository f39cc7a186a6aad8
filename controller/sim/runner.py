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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.control.controller import Controller
from controller.control.overrides import NO_OVERRIDES, Overrides
from controller.control.threshold import ThresholdController
from controller.control.types import Commands, Policy
from controller.trace.reader import Trace
from hil.plant.site import Plant, StepFlows, surplus_without_miners

FloatArray = npt.NDArray[np.float64]

POLICIES: dict[str, Callable[[SiteConfig, float], Policy]] = {
    "hearth": lambda cfg, tick: Controller(cfg, tick_s=tick),
    "threshold": lambda cfg, tick: ThresholdController(cfg),
}

TIMELINE_COLUMNS = (
    "time", "pv_w", "load_w", "miner_w", "miner_target_w", "battery_w", "soc_pct", "grid_w",
    "tank_c", "heat_to_tank_w", "heat_demand_w", "backup_heat_w", "import_price",
    "export_price", "mode",
)


@dataclass
class SimResult:
    """Per-row arrays (step averages; soc and tank at end of step) and per-row events."""

    cfg: SiteConfig
    trace: Trace
    policy: str  # "hearth", "threshold", "hearth+plan"
    columns: dict[str, FloatArray]
    mode: list[str]
    limiter: list[str]  # what set the miners' total in each row
    miner_run: dict[str, npt.NDArray[np.bool_]]  # commanded run flag per miner and row
    miner_energy_j: dict[str, FloatArray]
    starts: dict[str, int]
    forced_off: dict[str, list[int]]  # rows where a hard limit stopped the miner
    trips: dict[str, int]  # trip code -> rows it was active
    trip_log: list[tuple[int, str, str]] = field(default_factory=list)  # (row, code, reason)
    terahashes: float = 0.0
    wall_s: float = 0.0
    plan: dict[str, object] | None = None  # the planner's figures (forecast, replans, ...)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The sim loop keeps millions of small records alive; none form cycles, but the cyclic
    GC would re-scan them again and again (about a tenth of a year's run time)."""
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
        self._next = i + max(self.total // 200, 1)
        frac = i / max(self.total, 1)
        bar = "#" * int(frac * 40)
        sys.stderr.write(f"\r  sim [{bar:<40}] {frac:6.1%}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def simulate(
    cfg: SiteConfig,
    trace: Trace,
    policy: str = "hearth",
    progress: bool | None = None,
    plan: str | None = None,
) -> SimResult:
    """`plan` ("persistence" or "perfect"): the day-ahead planner feeds the hearth
    controller's overrides (tank target, buy floor), re-planning as `[plan]` says."""
    if policy not in POLICIES:
        raise ValueError(f"unknown controller {policy!r}; choose from {sorted(POLICIES)}")
    if plan is not None and policy != "hearth":
        raise ValueError("a day-ahead plan drives the hearth controller only")
    t0 = time.perf_counter()
    dt = trace.step_s
    ctrl = POLICIES[policy](cfg, dt)
    planner = None
    if plan is not None:
        from controller.plan.forecast import TraceForecast
        from controller.plan.planner import Planner

        pc = cfg.plan
        planner = Planner(cfg, TraceForecast(cfg, trace, plan, float(pc.step_s), pc.horizon_h,
                                             pc.prices_published_hour_local),
                          pc.deviation_kwh, min_replan_interval_s=pc.min_replan_interval_s)
    step_o = ctrl.step if planner is None else None
    overrides: Overrides = NO_OVERRIDES
    last_out: object = None
    prev_surplus: float | None = None
    prev_heat: float | None = None
    plant = Plant(cfg)
    n = len(trace.time_s)
    names = [m.name for m in cfg.miners]

    pv_arr, load_arr = trace.pv_w.tolist(), trace.load_w.tolist()
    heat_arr = trace.heat_demand_w.tolist()
    imp_arr, exp_arr = trace.import_price.tolist(), trace.export_price.tolist()
    dr_arr, time_arr = trace.dr_limit_w.tolist(), trace.time_s.tolist()
    bar = _Progress(n, progress)
    nan = float("nan")

    # The hot loop only collects; columns are built with numpy afterwards.
    flows: list[StepFlows] = []
    seen: list[tuple[float, float, float, float, float]] = []  # what the controller saw
    decided: list[Commands] = []
    trips: dict[str, int] = {}
    trip_log: list[tuple[int, str, str]] = []
    forced: dict[str, list[int]] = {nm: [] for nm in names}
    prev_codes: frozenset[str] = frozenset()
    with _gc_paused():
        for i in range(n):
            now, pv, load = time_arr[i], pv_arr[i], load_arr[i]
            dr = dr_arr[i]
            meas = plant.measure(now, pv, load, imp_arr[i], exp_arr[i],
                                 None if dr != dr else dr)  # nan = no cap
            if step_o is not None:
                cmds: Commands = step_o(meas, now)
            else:
                assert planner is not None
                tk, sc = meas.tank_temp_c, meas.soc_pct
                out = planner.update(now, None if tk is None else tk.value,
                                     None if sc is None else sc.value, prev_surplus,
                                     prev_heat, dt)
                if out is not last_out:
                    last_out = out
                    overrides = Overrides(plan_tank_target_c=out.tank_target_c,
                                          plan_min_w=out.plan_min_w)
                cmds = ctrl.step(meas, now, overrides)  # type: ignore[call-arg]
                prev_surplus, prev_heat = pv - load, heat_arr[i]
            flows.append(plant.step(cmds, dt, pv, load, heat_arr[i]))
            decided.append(cmds)
            g, b, soc = meas.grid_power_w, meas.battery_power_w, meas.soc_pct
            seen.append((
                nan if g is None else g.value,
                nan if b is None else b.value,
                nan if soc is None else soc.value,
                sum(r.power_w for r in meas.miners.values()),
                cmds.total_target_w,
            ))
            if cmds.trips or prev_codes:
                codes = frozenset(t.code for t in cmds.trips)
                for t in cmds.trips:
                    trips[t.code] = trips.get(t.code, 0) + 1
                    if t.code == "forced_off" and t.miner is not None:
                        forced[t.miner].append(i)
                    if t.code not in prev_codes or t.code == "forced_off":
                        trip_log.append((i, t.code, t.reason))
                prev_codes = codes
            bar.update(i)
    bar.close()

    cols = _columns(flows, seen, trace, dt)
    cols["surplus_w"] = np.asarray(surplus_without_miners(cfg, pv_arr, load_arr, dt))
    run = {nm: np.zeros(n, dtype=bool) for nm in names}
    for i, cmds in enumerate(decided):
        for cmd in cmds.miners:
            if cmd.run:
                run[cmd.name][i] = True
    per_miner = np.asarray([f.miner_energy_j for f in flows], dtype=np.float64).reshape(n, -1)
    energy = {nm: per_miner[:, j] for j, nm in enumerate(names)}
    started = np.asarray([f.starts for f in flows], dtype=np.int64).reshape(n, -1).sum(axis=0)
    starts = {nm: int(started[j]) for j, nm in enumerate(names)}
    th_total = float(sum(f.terahashes for f in flows))

    plan_figures: dict[str, object] | None = None
    if planner is not None:
        solves = sorted(planner.solve_s)
        plan_figures = {
            "forecast": plan, "replans": planner.replans, "reasons": dict(planner.reasons),
            "failures": planner.failures,
            "solve_ms_median": round(solves[len(solves) // 2] * 1e3, 2) if solves else None,
            "solve_ms_max": round(solves[-1] * 1e3, 2) if solves else None,
        }
    return SimResult(
        cfg=cfg, trace=trace, policy=policy if plan is None else "hearth+plan",
        columns=cols, mode=[c.mode for c in decided], limiter=[c.limiter for c in decided],
        miner_run=run, miner_energy_j=energy, starts=starts, forced_off=forced, trips=trips,
        trip_log=trip_log, terahashes=th_total, wall_s=time.perf_counter() - t0,
        plan=plan_figures,
    )



_FLOW_COLUMNS = ("pv_w", "curtailed_w", "load_w", "miner_w", "battery_w", "soc_pct", "grid_w",
                 "tank_c", "heat_to_tank_w", "heat_demand_w", "heat_from_tank_w",
                 "backup_heat_w", "unserved_w")


def _columns(flows: list[StepFlows], seen: list[tuple[float, float, float, float, float]],
             trace: Trace, dt: float) -> dict[str, FloatArray]:
    n = len(flows)
    cols: dict[str, FloatArray] = {}
    for name in _FLOW_COLUMNS:
        cols[name] = np.fromiter((getattr(f, name) for f in flows), np.float64, n)
    th = np.fromiter((f.terahashes for f in flows), np.float64, n)
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
