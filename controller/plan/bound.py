"""The perfect-foresight optimum: the plan LP solved once on the whole actual trace.

It knows every PV, load, heat and price value in advance, runs miners at any power from
0 W, has no minimum on/off times, may use the battery for the miners and lets the tank
cool below min_c as the plant's can, so no real controller can beat it (up to the LP's
Euler tank loss against the plant's exact one): the regret of a run is this minus its
`net_value`. Solved at the trace's own step, so it is compared like with like.

`loose_bound` is its value for a trace read in chunks (`hearth bound`, `hearth compare`):
see there for what it keeps in memory.
"""

from __future__ import annotations

import numpy as np

from controller.config.models import SiteConfig
from controller.plan.forecast import TraceForecast
from controller.plan.lp import FloatArray, Plan, PlanInputs, solve_plan
from controller.plan.value import value_per_th
from controller.trace.reader import RowBuffer, Trace, TraceInput, trace_chunks

LOOSE_BLOCK_ROWS = 1024
"""Rows per LP where the loose bound splits (a site without battery and tank): on the
shipped year (surplus-10kwp) 1,024 was the fastest of 512-4,096 and needs ~7 MB of solver
memory (4,096: ~40 MB)."""

LOOSE_WHOLE_MAX_ROWS = 50_000
"""Longest trace whose loose bound is one LP over the whole horizon (a site with a battery
or a tank): ~1 GB of solver memory at ~20 kB a step; the shipped 15-min year fits."""


class LooseBoundTooLong(ValueError):
    """The loose bound of a battery or tank site would need the whole trace in one LP and
    the trace is longer than `LOOSE_WHOLE_MAX_ROWS`."""



def perfect_foresight(cfg: SiteConfig, trace: Trace) -> Plan:
    fc = TraceForecast(cfg, trace, "perfect", trace.step_s)
    return solve_plan(cfg, fc.whole(), bound=True)


def separable(cfg: SiteConfig) -> bool:
    """Whether the loose bound's LP falls apart into one LP per step: without a battery
    and a tank no variable links a step to the next (miner power, import, export and
    curtailment are each the step's own; the heat demand is all backup heat, a constant)."""
    return cfg.battery is None and cfg.tank is None


def loose_bound(cfg: SiteConfig, trace: TraceInput) -> float:
    """`perfect_foresight(cfg, trace).value` of a whole `Trace` or of its consecutive
    chunks (`iter_trace`).

    A `separable` site (no battery, no tank): the LP over the whole trace is the sum of
    the LPs over blocks of `LOOSE_BLOCK_ROWS`, solved as the rows arrive, so memory is
    flat in the trace's length (the same optimum: on the shipped 15-min year the sum
    differs from the one LP's value by 3e-16 relative, in 1.5 s instead of 7 s).

    A site with a battery or a tank: the state of charge and the tank's temperature link
    every step to the next, and an exact split would need the value of that state at each
    cut (a bound per window with a free state at its start would be valid but looser), so
    the LP stays one over the whole horizon. Only its inputs are collected from the chunks
    (6 floats, 48 bytes a row), but HiGHS needs ~20 kB a step for the model, its presolved
    copy and the factorisation (measured on house-10kwp: the 15-min year, 35,040 steps,
    peaks at 0.74 GB; a 1-min year would need ~10 GB). So such a trace longer than
    `LOOSE_WHOLE_MAX_ROWS` raises `LooseBoundTooLong` as soon as the chunks pass that
    length, before anything is solved: memory stays under ~1 GB."""
    split = separable(cfg)
    total = 0.0
    held = RowBuffer()
    start_s = dt = float("nan")
    for chunk in trace_chunks(trace):
        if held.first == held.end:
            start_s = float(chunk.time_s[0])
        dt = chunk.step_s
        held.append(**{k: np.asarray(v, dtype=np.float64) for k, v in (
            ("pv_w", chunk.pv_w), ("load_w", chunk.load_w),
            ("heat_demand_w", chunk.heat_demand_w), ("import_price", chunk.import_price),
            ("export_price", chunk.export_price), ("value_per_th", value_per_th(cfg, chunk)))})
        if not split and held.end > LOOSE_WHOLE_MAX_ROWS:
            raise LooseBoundTooLong(
                f"loose bound skipped: with a battery or a tank it is one LP over the whole "
                f"trace, and this trace has more than {LOOSE_WHOLE_MAX_ROWS:,} rows (~20 kB "
                f"of solver memory each)")
        while split and held.end - held.first >= LOOSE_BLOCK_ROWS:
            total += _value(cfg, start_s, dt, held.take(held.first,
                                                        held.first + LOOSE_BLOCK_ROWS))
            start_s += LOOSE_BLOCK_ROWS * dt
    if not held.end:
        raise ValueError("the trace has no rows")
    if held.end > held.first:
        total += _value(cfg, start_s, dt, held.take(held.first, held.end))
    return total


def _value(cfg: SiteConfig, start_s: float, step_s: float, c: dict[str, FloatArray]) -> float:
    inp = PlanInputs(start_s, step_s, c["pv_w"], c["load_w"], c["heat_demand_w"],
                     c["import_price"], c["export_price"], c["value_per_th"])
    return solve_plan(cfg, inp, bound=True).value
