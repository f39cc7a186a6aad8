"""Benchmarks of the foundation. Prints figures; asserts nothing (targets are shown beside).

1. Simulation speed on a year of 1-minute data (the shipped 15-minute real-data year,
   interpolated to 1 minute), for the Hearth controller and, as the in-run baseline, the
   threshold controller and the plant alone (no controller at all). Target: the year in
   <= 20 s for Hearth.
2. `Controller.step()` cost on snapshots recorded from that year: median and p99.
   Target: median <= 1 ms (it runs once a second on a Raspberry Pi).
3. Surplus capture on the real year (miner energy from PV surplus / sum of
   min(surplus, miner capacity)), Hearth against the evcc peer (evcc's PV mode,
   controller/control/evcc.py) and the threshold baseline, plus the safety counters that
   must stay at zero (the peers ignore minimum on/off times: their violations are shown).

Run: `make bench` (or `.venv/bin/python bench/run.py [--quick]`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.devtraces import to_one_minute  # noqa: E402
from controller.config import load_site  # noqa: E402
from controller.control.controller import Controller  # noqa: E402
from controller.control.types import Measurements  # noqa: E402
from controller.sim.plant import Plant  # noqa: E402
from controller.sim.report import summarize  # noqa: E402
from controller.sim.runner import simulate  # noqa: E402
from controller.trace.reader import NUMBER_COLUMNS, Trace, read_trace  # noqa: E402

SITE = ROOT / "hil" / "sites" / "house-10kwp.toml"
YEAR = ROOT / "hil" / "traces" / "house-year.csv.gz"


def plant_only(cfg: object, tr: Trace) -> float:
    """The floor: the plant stepped with no controller, same loop shape."""
    plant = Plant(cfg)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    pv, load, heat, tm = (tr.pv_w.tolist(), tr.load_w.tolist(), tr.heat_demand_w.tolist(),
                          tr.time_s.tolist())
    for i in range(len(pv)):
        plant.measure(tm[i], pv[i], load[i])
        plant.step(None, tr.step_s, pv[i], load[i], heat[i])
    return time.perf_counter() - t0


def step_cost(cfg: object, tr: Trace, samples: int) -> list[float]:
    """Record real snapshots from a simulation, then time step() on each, one by one."""
    plant = Plant(cfg)  # type: ignore[arg-type]
    ctrl = Controller(cfg, tick_s=tr.step_s)  # type: ignore[arg-type]
    snaps: list[tuple[Measurements, float]] = []
    stride = max(len(tr.time_s) // samples, 1)
    for i in range(0, len(tr.time_s)):
        now = float(tr.time_s[i])
        m = plant.measure(now, float(tr.pv_w[i]), float(tr.load_w[i]))
        cmds = ctrl.step(m, now)
        plant.step(cmds, tr.step_s, float(tr.pv_w[i]), float(tr.load_w[i]),
                   float(tr.heat_demand_w[i]))
        if i % stride == 0:
            snaps.append((m, now))
        if len(snaps) >= samples:
            break
    timed = Controller(cfg, tick_s=tr.step_s)  # type: ignore[arg-type]
    costs = []
    for m, now in snaps:
        t0 = time.perf_counter_ns()
        timed.step(m, now)
        costs.append((time.perf_counter_ns() - t0) / 1e3)
    return costs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one month instead of a year")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    cfg = load_site(SITE)
    t0 = time.perf_counter()
    year15 = read_trace(YEAR, cfg)
    read_s = time.perf_counter() - t0
    year = to_one_minute(year15)
    if args.quick:
        year = Trace(**{**year.__dict__, **{
            k: getattr(year, k)[: 31 * 1440] for k in ("time_s", *NUMBER_COLUMNS)}})
    n = len(year.time_s)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"{n:,} one-minute steps ({n / 1440:.0f} days) from {YEAR.name} "
          f"(read in {read_s:.2f} s)")

    figures: dict[str, object] = {"steps": n}
    print("\n1. simulation speed (virtual time, same trace)")
    floor_s = plant_only(cfg, year)
    results = {}
    for policy in ("hearth", "evcc", "threshold"):
        r = simulate(cfg, year, policy, progress=False)
        results[policy] = r
        figures[f"sim_{policy}_s"] = r.wall_s
        print(f"   {policy:<10} {r.wall_s:7.2f} s  {n / r.wall_s:10,.0f} steps/s"
              + ("   target: year <= 20 s" if policy == "hearth" else ""))
    print(f"   {'plant only':<10} {floor_s:7.2f} s  {n / floor_s:10,.0f} steps/s   (floor)")
    if not args.quick:
        verdict = "met" if results["hearth"].wall_s <= 20 else "NOT met"
        print(f"   -> year of 1-min data with Hearth: {results['hearth'].wall_s:.1f} s ({verdict})")
    figures["sim_plant_only_s"] = floor_s

    print("\n2. Controller.step() cost on recorded snapshots")
    costs = step_cost(cfg, year, 20_000)
    med = statistics.median(costs)
    p99 = float(np.percentile(costs, 99))
    figures.update(step_median_us=med, step_p99_us=p99)
    print(f"   median {med:.1f} µs, p99 {p99:.1f} µs over {len(costs):,} steps "
          f"(target: median <= 1000 µs) -> {'met' if med <= 1000 else 'NOT met'}")

    print("\n3. surplus capture on the real year (1-min)")
    print(f"   {'':<10} {'capture':>8} {'miner kWh':>10} {'from PV':>8} {'from bat':>9} "
          f"{'from grid':>9} {'starts':>7} {'import viol':>11} {'min on/off viol':>15}")
    for policy, r in results.items():
        s = summarize(r)
        figures[f"{policy}_summary"] = s
        print(f"   {policy:<10} {s['surplus_capture']:8.1%} {s['miner_kwh']:10.0f} "
              f"{s['miner_from_pv_kwh']:8.0f} {s['miner_from_battery_kwh']:9.0f} "
              f"{s['miner_from_grid_kwh']:9.0f} {sum(s['miner_starts'].values()):7d} "
              f"{s['import_limit_violations']:11d} {s['min_on_off_violations']:15d}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
