"""Simulation speed and memory against an in-run baseline. Prints figures; asserts nothing.

1. Wall time of the 1-min year (the shipped 15-min year interpolated to 1 minute, as
   bench/run.py does) for the plant alone (no controller: the floor), the threshold
   baseline, `evcc` (when that policy exists) and Hearth, each as a ratio to the plant
   alone. Target: Hearth <= 2.5x the plant alone.
2. Peak RSS of `hearth sim --timeline` (streamed from a file, in a subprocess of its own)
   on that year and on a trace 10x longer. Target: <= 250 MB whatever the length.

Run: `make bench` (or `.venv/bin/python bench/sim_speed.py [--quick]`; --quick: a month,
and a trace 10x a month).
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import SITE, YEAR, plant_only, to_one_minute  # noqa: E402

from controller.config import load_site  # noqa: E402
from controller.sim.runner import POLICIES, simulate  # noqa: E402
from controller.trace.reader import NUMBER_COLUMNS, Trace, read_trace  # noqa: E402

TARGET_RATIO = 2.5
TARGET_RSS_MB = 250.0


def head(tr: Trace, rows: int) -> Trace:
    return Trace(step_s=tr.step_s, source=tr.source, columns=tr.columns,
                 **{k: getattr(tr, k)[:rows] for k in ("time_s", *NUMBER_COLUMNS)})


def write_repeated(tr: Trace, times: int, path: Path) -> int:
    """`tr` repeated `times` times back to back as a trace CSV.gz (written in pieces)."""
    cols = ("pv_w", "load_w", "heat_demand_w", "outdoor_c", "import_price", "export_price",
            "hashprice")
    span = tr.duration_s
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        f.write("time," + ",".join(cols) + "\n")
        for k in range(times):
            stamps = np.datetime_as_string((tr.time_s + k * span).astype("datetime64[s]"),
                                           unit="s")
            fmt = [np.char.mod("%.6g", getattr(tr, c)).tolist() for c in cols]
            rows = zip([f"{s}Z" for s in stamps.tolist()], *fmt, strict=True)
            f.writelines(",".join(r) + "\n" for r in rows)
    return len(tr) * times


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall s) of a command run as a child process of its own."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: the summary found a violation (still ran)
        raise SystemExit(f"{' '.join(args)} failed with {proc.returncode}")
    return usage.ru_maxrss / 1024.0, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a month instead of a year")
    args = ap.parse_args()
    cfg = load_site(SITE)
    year = to_one_minute(read_trace(YEAR, cfg))
    if args.quick:
        year = head(year, 31 * 1440)
    n = len(year)
    print(f"{n:,} one-minute steps ({n / 1440:.0f} days) from {YEAR.name}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    print("\n1. wall time of the year (in process, nothing kept per row)")
    c0 = time.process_time()
    floor_s = plant_only(cfg, year)
    floor_cpu = time.process_time() - c0
    print(f"   {'plant alone':<12} {floor_s:7.2f} s   1.00x  (CPU {floor_cpu:.2f} s)")
    policies = [p for p in ("threshold", "evcc", "hearth") if p in POLICIES]
    ratios = {}
    for policy in policies:
        c0 = time.process_time()
        r = simulate(cfg, year, policy, progress=False, keep_columns=False)
        cpu = time.process_time() - c0
        ratios[policy] = r.wall_s / floor_s
        target = f"   target <= {TARGET_RATIO}x: " \
            f"{'met' if ratios[policy] <= TARGET_RATIO else 'NOT met'}" if policy == "hearth" \
            else ""
        print(f"   {policy:<12} {r.wall_s:7.2f} s {ratios[policy]:6.2f}x  (CPU {cpu:.2f} s)"
              f"{target}")
    if "evcc" not in POLICIES:
        print("   (no `evcc` policy in this build)")

    print("\n2. peak RSS of `hearth sim --timeline` on a file (own process)")
    hearth = [sys.executable, "-m", "controller.cli", "sim", "--config", str(SITE)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        worst = 0.0
        for times, label in ((1, "the year" if not args.quick else "a month"),
                             (10, "10x longer")):
            path = tmp / f"trace-{times}.csv.gz"
            t0 = time.perf_counter()
            rows = write_repeated(year, times, path)
            made = time.perf_counter() - t0
            rss, wall = peak_rss_mb([*hearth, "--trace", str(path), "--timeline",
                                     str(tmp / "timeline.csv.gz"), "--summary",
                                     str(tmp / "summary.json")])
            worst = max(worst, rss)
            print(f"   {label:<12} {rows:>10,} rows  peak RSS {rss:7.1f} MB  wall {wall:7.1f} s"
                  f"  (trace written in {made:.0f} s)")
        print(f"   -> target <= {TARGET_RSS_MB:.0f} MB for any length: "
              f"{'met' if worst <= TARGET_RSS_MB else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
