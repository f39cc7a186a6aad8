"""Benchmark of the day-ahead plan's LP (issue 11: 48 h at 15-min steps, target <= 1 s on a
Pi-class CPU). Prints figures; asserts nothing.

Inputs are cut from the real year (hil/traces/house-year.csv.gz on
hil/sites/house-10kwp.toml) at varied start days, so every solve sees different PV, load,
heat and prices. Model build (numpy → HiGHS column-wise matrix) and solve are timed
separately; the 24 h solve is the in-run baseline.

Run: `make bench` (or `.venv/bin/python bench/plan_bench.py [--repeats N]`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.config import load_site  # noqa: E402
from controller.plan.forecast import TraceForecast  # noqa: E402
from controller.plan.lp import PlanInputs, build_lp, solve_plan  # noqa: E402
from controller.trace.reader import read_trace  # noqa: E402

SITE = ROOT / "hil" / "sites" / "house-10kwp.toml"
YEAR = ROOT / "hil" / "traces" / "house-year.csv.gz"


def _cut(fc: TraceForecast, start: int, n: int) -> PlanInputs:
    w = fc.whole()
    s = slice(start, start + n)
    return PlanInputs(w.start_s + start * w.step_s, w.step_s, w.pv_w[s], w.load_w[s],
                      w.heat_demand_w[s], w.import_price[s], w.export_price[s],
                      w.value_per_th[s], tank_start_c=45.0 + start % 20, soc_start_pct=50.0)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=60)
    args = ap.parse_args()
    cfg = load_site(SITE)
    fc = TraceForecast(cfg, read_trace(YEAR, cfg), "perfect")
    print(f"plan LP bench · {platform.machine()} {platform.python_version()} · "
          f"highspy {version('highspy')} · "
          f"{args.repeats} solves per horizon, start days spread over the year")
    rows = []
    for hours in (24, 48):
        n = hours * 4
        builds, solves = [], []
        for r in range(args.repeats):
            start = (r * 6151) % (fc.n - n)  # varied days and times of day
            inp = _cut(fc, start, n)
            t0 = time.perf_counter()
            build_lp(cfg, inp)
            builds.append(time.perf_counter() - t0)
            plan = solve_plan(cfg, inp)
            solves.append(plan.solve_s)
        lp, _, _ = build_lp(cfg, _cut(fc, 0, n))
        rows.append((hours, n, lp.num_col_, lp.num_row_, builds, solves))
    base = statistics.median(rows[0][5])
    print(f"{'horizon':>8} {'slots':>6} {'cols':>6} {'rows':>6} {'build p50':>10} "
          f"{'solve p50':>10} {'solve p95':>10} {'vs 24 h':>8}")
    for hours, n, ncol, nrow, b, s in rows:
        med = statistics.median(s)
        print(f"{hours:>6} h {n:>6} {ncol:>6} {nrow:>6} {statistics.median(b) * 1e3:>8.2f} ms "
              f"{med * 1e3:>7.2f} ms {_pct(s, 0.95) * 1e3:>7.2f} ms {med / base:>7.2f}x")
    print("target: 48 h solve <= 1000 ms on a Pi-class CPU (a Pi 4 is roughly 3-5x slower "
          "than this machine's cores)")


if __name__ == "__main__":
    main()
