"""Peak RSS of `hearth bound` on a trace and on one 10x longer. Prints figures; asserts
nothing.

`hearth bound` streams (issue 20 item 2): the ceiling's windows are cut and solved as the
trace's chunks arrive, the schedule is written window by window and the loose bound (a site
without battery and tank) is solved in blocks, so its peak RSS should not grow with the
trace. Both ceilings, the loose bound and the schedule, on surplus-10kwp (no battery or
tank: with one the loose bound is one LP over the whole trace, see
`controller.plan.bound.loose_bound`). Quick on purpose: the shipped spring day repeated,
short solver time limits, one process (`--jobs 1`: the solver's memory is in the measured
process, not in workers). The RSS is the child's own high-water mark (`VmHWM`,
bench/sim_speed.py's `peak_rss_mb`).

A few days are less than the trace reader's chunk (16,384 rows, ~11 days of 1-min steps),
so part of the difference is that chunk filling up (~15 MB), not growth with the length;
`--days 12` starts in the steady state (and takes ~10x longer).

Run: `.venv/bin/python bench/bound_memory.py [--days 2] [--times 10] [--time-limit 0.2]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sim_speed import peak_rss_mb, write_repeated  # noqa: E402

from controller.config import load_site  # noqa: E402
from controller.trace.reader import read_trace  # noqa: E402

SITE = ROOT / "hil" / "sites" / "surplus-10kwp.toml"
DAY = ROOT / "hil" / "traces" / "house-spring-day.csv"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=2, help="days of the short trace (default 2)")
    ap.add_argument("--times", type=int, default=10,
                    help="the long trace is this many times the short one (default 10)")
    ap.add_argument("--time-limit", type=float, default=0.2, metavar="S",
                    help="solver time per window and objective (default 0.2)")
    args = ap.parse_args()
    if args.days < 1 or args.times < 1 or not args.time_limit > 0:
        ap.error("--days and --times must be at least 1, --time-limit above 0")
    day = read_trace(DAY, load_site(SITE))
    print(f"`hearth bound` on {SITE.name}: both ceilings (default windows, "
          f"--time-limit {args.time_limit:g}), the loose bound and --schedule, --jobs 1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        figures = []
        for times, label in ((args.days, f"{args.days} days"),
                             (args.days * args.times, f"{args.times}x longer")):
            path = tmp / f"trace-{times}.csv.gz"
            rows = write_repeated(day, times, path)
            rss, wall = peak_rss_mb(["bound", "--config", str(SITE), "--trace", str(path),
                                     "--time-limit", f"{args.time_limit:g}", "--jobs", "1",
                                     "--schedule", str(tmp / "schedule.csv"),
                                     "--summary", str(tmp / "summary.json")])
            figures.append(rss)
            print(f"   {label:<12} {rows:>9,} rows  peak RSS {rss:7.1f} MB  wall {wall:6.1f} s")
        print(f"   -> the longer trace peaks at {figures[1] / figures[0]:.2f}x the shorter's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
