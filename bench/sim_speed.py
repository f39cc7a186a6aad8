"""Simulation speed and memory against an in-run baseline. Prints figures; asserts nothing.

1. Wall time of the 1-min year (the shipped 15-min year interpolated to 1 minute, as
   bench/run.py does) for the plant alone (no controller: the floor), the threshold
   baseline, `evcc` (when that policy exists) and Hearth, each as a ratio to the plant
   alone. Target: Hearth <= 2.5x the plant alone.
2. Peak RSS of `hearth sim --timeline` (streamed from a file, in a subprocess of its own)
   on that year and on a trace 10x longer. Target: <= 250 MB whatever the length.
The control core runs compiled when `make native` built it for these sources (`make bench`
does; controller/native.py), else interpreted: the header says which. With the compiled
core, part 1 also runs Hearth on the interpreted core in a process of its own
(HEARTH_NATIVE=0), beside its own plant-alone figure.
3. `Controller.step` alone on snapshots recorded from that year (bench/step_instructions.py):
   time per step (median, p99) and instructions per step counted by callgrind, which the
   machine's load does not change, with what they imply for a Raspberry Pi 4. Target
   (issue 15): median <= 1 ms on a Pi-class CPU.

4. A simulated row in instructions (callgrind) for the plant alone, threshold, evcc and
   Hearth, on two summer days: the load-independent form of part 1's ratios.

Run: `make bench` (or `.venv/bin/python bench/sim_speed.py [--quick] [--skip speed,rss,callgrind]`;
--quick: a month, and a trace 10x a month).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
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
from step_instructions import (  # noqa: E402
    callgrind_total,
    record,
    replay_times,
)
from step_instructions import count as count_instructions  # noqa: E402

from controller.config import SiteConfig, load_site  # noqa: E402
from controller.control import NATIVE_STATE  # noqa: E402
from controller.sim.runner import POLICIES, simulate  # noqa: E402
from controller.trace.reader import NUMBER_COLUMNS, Trace, read_trace  # noqa: E402

TARGET_RATIO = 2.5
TARGET_RSS_MB = 250.0
TARGET_STEP_US = 1000.0
# A Raspberry Pi 4's Cortex-A72 at 1.5 GHz (1.8 GHz on later boards). What CPython's
# interpreter loop achieves there is assumed, not measured: aarch64 needs about as many
# instructions as x86-64 for it (taken as up to 20 % more), and the A72 (3-wide, out of
# order, small caches) retires 0.5-1.0 of them per cycle on such branchy code.
PI4_HZ = 1.5e9
PI4_IPC = (0.5, 1.0)
PI4_INSTRUCTION_FACTOR = 1.2


def head(tr: Trace, rows: int) -> Trace:
    return Trace(step_s=tr.step_s, source=tr.source, columns=tr.columns,
                 **{k: getattr(tr, k)[:rows] for k in ("time_s", *NUMBER_COLUMNS)})


def write_repeated(tr: Trace, times: int, path: Path) -> int:
    """`tr` repeated `times` times back to back as a trace CSV.gz (written in pieces): the
    columns that hold any number (an empty cell where a row has none)."""
    cols = tuple(c for c in NUMBER_COLUMNS if not np.all(np.isnan(getattr(tr, c))))
    span = tr.duration_s
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        f.write("time," + ",".join(cols) + "\n")
        for k in range(times):
            stamps = np.datetime_as_string((tr.time_s + k * span).astype("datetime64[s]"),
                                           unit="s")
            fmt = [["" if v == "nan" else v for v in np.char.mod("%.6g", getattr(tr, c)).tolist()]
                   for c in cols]
            rows = zip([f"{s}Z" for s in stamps.tolist()], *fmt, strict=True)
            f.writelines(",".join(r) + "\n" for r in rows)
    return len(tr) * times


# The child reports its own high-water mark: a forked child's ru_maxrss starts at its
# parent's (Linux copies the high-water mark at fork and keeps it across exec), and this
# parent holds the year and has just written the long trace.
_HWM = ("import atexit, runpy, sys\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            sys.stderr.write('VmHWM_kB=' + line.split()[1] + '\\n')\n"
        "atexit.register(hwm)\n"
        "sys.argv = ['hearth', *sys.argv[1:]]\n"
        "runpy.run_module('controller.cli', run_name='__main__')\n")


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MB of the process itself, wall s) of `python -m controller.cli ...`
    (`args` after the module) run as a process of its own."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _HWM, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: the summary found a violation (still ran)
        raise SystemExit(f"{' '.join(args)} failed with {proc.returncode}: "
                         f"{proc.stderr[-500:]}")
    found = [ln for ln in proc.stderr.splitlines() if ln.startswith("VmHWM_kB=")]
    return int(found[-1].split("=")[1]) / 1024.0, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a month instead of a year")
    ap.add_argument("--skip", default="",
                    help="comma-separated: speed, rss, steps, rows, callgrind")
    ap.add_argument("--policies", default="threshold,evcc,hearth",
                    help="comma-separated policies timed in part 1")
    ap.add_argument("--row-run", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row_run is not None:
        _row_run(args.row_run[0], int(args.row_run[1]))
        return 0
    skip = set(filter(None, args.skip.split(",")))
    cfg = load_site(SITE)
    year = to_one_minute(read_trace(YEAR, cfg))
    if args.quick:
        year = head(year, 31 * 1440)
    n = len(year)
    print(f"{n:,} one-minute steps ({n / 1440:.0f} days) from {YEAR.name}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"control core {NATIVE_STATE}")

    if "speed" not in skip:
        speed_figures(cfg, year, args.policies.split(","))
        if NATIVE_STATE.startswith("compiled"):
            interpreted_figures(args.quick)
    if "rss" not in skip:
        rss_figures(year, args.quick)
    if "steps" not in skip:
        step_figures("callgrind" not in skip)
    if "rows" not in skip and "callgrind" not in skip:
        row_figures()
    return 0


# Part 4: a simulated row in instructions (callgrind), which the machine's load does not
# change: wall and CPU ratios on a shared 2-core machine move by a few tenths from run to
# run. Two summer days of the year (day-of-year 170-171), long surplus: the busiest rows.
ROW_DAY, ROW_COUNT = 170, 2880


def _row_run(mode: str, rows: int) -> None:
    """Child of `row_figures`: `rows` rows from ROW_DAY through `mode`."""
    cfg = load_site(SITE)
    year = to_one_minute(read_trace(YEAR, cfg))
    part = Trace(step_s=year.step_s, source=year.source, columns=year.columns,
                 **{k: getattr(year, k)[ROW_DAY * 1440:ROW_DAY * 1440 + rows]
                    for k in ("time_s", *NUMBER_COLUMNS)})
    if mode == "plant":
        plant_only(cfg, part)
    else:
        simulate(cfg, part, mode, progress=False, keep_columns=False)


def _collected(mode: str, rows: int) -> int:
    return callgrind_total([__file__, "--row-run", mode, str(rows)])


def row_figures() -> None:
    print(f"\n4. a simulated row in instructions (callgrind; {ROW_COUNT:,} rows from day "
          f"{ROW_DAY} of the year; imports and set-up subtracted)")
    if shutil.which("valgrind") is None:
        print("   (valgrind not installed)")
        return
    per_row = {}
    for mode in ("plant", "threshold", "evcc", "hearth"):
        # One row against 1 + ROW_COUNT: imports and set-up (the first row's) cancel out.
        per_row[mode] = (_collected(mode, 1 + ROW_COUNT) - _collected(mode, 1)) / ROW_COUNT
        print(f"   {'plant alone' if mode == 'plant' else mode:<12} {per_row[mode]:>10,.0f} "
              f"per row  {per_row[mode] / per_row['plant']:5.2f}x")


def interpreted_figures(quick: bool) -> None:
    """Hearth on the interpreted core, in a process of its own (the core is chosen at
    import), beside that process's own plant-alone floor."""
    print("   interpreted core (HEARTH_NATIVE=0, own process):")
    proc = subprocess.run(
        [sys.executable, __file__, "--skip", "rss,steps,rows", "--policies", "hearth",
         *(["--quick"] if quick else [])],
        env={**os.environ, "HEARTH_NATIVE": "0"}, capture_output=True, text=True,
        check=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.strip().startswith(("plant alone", "hearth")):
            print("   " + line)



def speed_figures(cfg: SiteConfig, year: Trace, wanted: list[str]) -> None:
    print("\n1. wall time of the year (in process, nothing kept per row)")
    c0 = time.process_time()
    floor_s = plant_only(cfg, year)
    floor_cpu = time.process_time() - c0
    print(f"   {'plant alone':<12} {floor_s:7.2f} s   1.00x  (CPU {floor_cpu:.2f} s)")
    policies = [p for p in wanted if p in POLICIES]
    ratios = {}
    for policy in policies:
        c0 = time.process_time()
        r = simulate(cfg, year, policy, progress=False, keep_columns=False)
        cpu = time.process_time() - c0
        ratios[policy] = r.wall_s / floor_s
        target = f"   target <= {TARGET_RATIO}x: " \
            f"{'met' if ratios[policy] <= TARGET_RATIO else 'NOT met'}" if policy == "hearth" \
            else ""
        print(f"   {policy:<12} {r.wall_s:7.2f} s {ratios[policy]:6.2f}x  (CPU {cpu:.2f} s, "
              f"{cpu / floor_cpu:.2f}x){target}")
    if "evcc" not in POLICIES:
        print("   (no `evcc` policy in this build)")


def step_figures(callgrind: bool) -> None:
    print("\n3. Controller.step alone, on recorded snapshots (bench/step_instructions.py)")
    with tempfile.TemporaryDirectory() as d:
        snaps = Path(d) / "snaps.pickle"
        n = record(snaps)
        times = sorted(replay_times(snaps))
        med, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
        print(f"   time       median {med:6.1f} µs, p99 {p99:6.1f} µs over {n:,} steps "
              f"(this machine, load average {os.getloadavg()[0]:.1f})")
        if not callgrind:
            return
        got = count_instructions(snaps)
    if got is None:
        print("   (valgrind not installed: no instruction count)")
        return
    per_step, _ = got
    lo_us = per_step * PI4_INSTRUCTION_FACTOR / (PI4_IPC[1] * PI4_HZ) * 1e6
    hi_us = per_step * PI4_INSTRUCTION_FACTOR / (PI4_IPC[0] * PI4_HZ) * 1e6
    print(f"   work       {per_step:,.0f} instructions per step (callgrind, x86-64)")
    print(f"   Pi 4       ~{lo_us:.0f}-{hi_us:.0f} µs per step (Cortex-A72 at "
          f"{PI4_HZ / 1e9:.1f} GHz, {PI4_IPC[0]}-{PI4_IPC[1]} instructions per cycle, up to "
          f"{PI4_INSTRUCTION_FACTOR - 1:.0%} more instructions on aarch64: an estimate, not a "
          f"measurement) -> target median <= {TARGET_STEP_US:.0f} µs: "
          f"{'met' if hi_us <= TARGET_STEP_US else 'NOT shown'}")


def rss_figures(year: Trace, quick: bool) -> None:
    print("\n2. peak RSS of `hearth sim --timeline` on a file (own process)")
    hearth = ["sim", "--config", str(SITE)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        worst = 0.0
        for times, label in ((1, "the year" if not quick else "a month"),
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


if __name__ == "__main__":
    sys.exit(main())
