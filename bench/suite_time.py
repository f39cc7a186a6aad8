"""Where the test suite's wall time goes: wall, CPU, the slowest tests, the rig lanes.

Reads the per-test records of tests/suite_timing.py (``HEARTH_TEST_TIMES=PREFIX pytest -p
suite_timing ...`` writes PREFIX.<worker>.jsonl; ``make test-times`` does it for the whole
suite) or, without CPU figures, a pytest JUnit XML report (``--junitxml``). Prints:

- the run's wall time (first test start to last test end), the summed test time and CPU
  (worker process and its reaped children), and how busy each worker was;
- per area (tests/<folder>): tests, wall, CPU;
- the slowest 20 tests (setup / call / teardown, CPU, load average when they ran);
- each xdist group's chain of tests (the real-time rig lanes, ``rig-lane-N``): the lane
  that ends last is the critical path no worker count can shorten.

With ``--baseline OTHER`` every area and the totals are printed beside another run (e.g.
before and after a change, measured in the same session). Load average is printed beside
every figure: other work on the machine stretches wall time but not CPU time.

    python bench/suite_time.py out/test-times/run            # PREFIX of the .jsonl files
    python bench/suite_time.py report.xml                    # JUnit: wall only
    python bench/suite_time.py out/after --baseline out/before
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TestTime:
    """One test's phases as recorded (CPU is None from a JUnit report)."""

    nodeid: str
    worker: str = "?"
    group: str | None = None
    markers: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    cpu_s: float | None = None
    children_cpu_s: float | None = None
    load1: list[float] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return sum(self.phases.values())

    @property
    def total_cpu_s(self) -> float | None:
        if self.cpu_s is None:
            return None
        return self.cpu_s + (self.children_cpu_s or 0.0)

    @property
    def area(self) -> str:
        parts = self.nodeid.split("::")[0].split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def read_jsonl(prefix: str) -> list[TestTime]:
    """The records of PREFIX.*.jsonl, one TestTime per test."""
    files = sorted(glob.glob(f"{prefix}.*.jsonl"))
    if not files:
        raise SystemExit(f"no records: {prefix}.*.jsonl matches no file")
    tests: dict[str, TestTime] = {}
    for f in files:
        for line in Path(f).read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            t = tests.setdefault(r["nodeid"], TestTime(r["nodeid"]))
            t.worker = r["worker"]
            t.group = r.get("group")
            t.markers = tuple(r.get("markers", ()))
            t.phases[r["phase"]] = t.phases.get(r["phase"], 0.0) + r["wall_s"]
            t.cpu_s = (t.cpu_s or 0.0) + r["cpu_s"]
            t.children_cpu_s = (t.children_cpu_s or 0.0) + r["children_cpu_s"]
            t.start = r["start"] if t.start is None else min(t.start, r["start"])
            end = r["start"] + r["wall_s"]
            t.end = end if t.end is None else max(t.end, end)
            t.load1.append(r["load1"])
    return list(tests.values())


def read_junit(path: str) -> list[TestTime]:
    """Per-test wall time of a JUnit XML report (setup + call + teardown together)."""
    root = ET.parse(path).getroot()
    out = []
    for tc in root.iter("testcase"):
        cls = tc.get("classname", "").replace(".", "/")
        nodeid = f"{cls}.py::{tc.get('name')}"
        t = TestTime(nodeid)
        t.phases["total"] = float(tc.get("time", "0"))
        out.append(t)
    return out


def load(source: str) -> list[TestTime]:
    return read_junit(source) if source.endswith(".xml") else read_jsonl(source)


CORES = os.cpu_count() or 1


def _waiting(t: TestTime) -> float:
    """Wall time not explained by the test's CPU stretched by the machine's load."""
    stretch = max(1.0, _mean(t.load1) / CORES) if t.load1 else 1.0
    return t.wall_s - (t.total_cpu_s or 0.0) * stretch


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _fmt_cpu(x: float | None) -> str:
    return "—" if x is None else f"{x:8.1f}"


@dataclass
class Totals:
    """The figures one run is summarised by."""

    tests: int
    run_wall_s: float | None
    sum_wall_s: float
    cpu_s: float | None
    load1: float
    areas: dict[str, tuple[int, float, float | None]]
    lanes: dict[str, tuple[int, float, float | None]]


def totals(tests: list[TestTime]) -> Totals:
    starts = [t.start for t in tests if t.start is not None]
    ends = [t.end for t in tests if t.end is not None]
    run_wall = (max(ends) - min(starts)) if starts and ends else None
    cpus = [t.total_cpu_s for t in tests]
    cpu = None if any(c is None for c in cpus) else sum(c for c in cpus if c is not None)
    areas: dict[str, list[TestTime]] = defaultdict(list)
    lanes: dict[str, list[TestTime]] = defaultdict(list)
    for t in tests:
        areas[t.area].append(t)
        if t.group is not None:
            lanes[t.group].append(t)

    def agg(ts: list[TestTime]) -> tuple[int, float, float | None]:
        c = [t.total_cpu_s for t in ts]
        return (len(ts), sum(t.wall_s for t in ts),
                None if any(x is None for x in c) else sum(x for x in c if x is not None))

    return Totals(len(tests), run_wall, sum(t.wall_s for t in tests), cpu,
                  _mean([x for t in tests for x in t.load1]),
                  {a: agg(ts) for a, ts in areas.items()},
                  {g: agg(ts) for g, ts in lanes.items()})


def report(tests: list[TestTime], baseline: list[TestTime] | None, top: int) -> str:
    now = totals(tests)
    base = totals(baseline) if baseline is not None else None
    out: list[str] = []
    w = out.append

    def pair(x: float | None, y: float | None) -> str:
        a = "—" if x is None else f"{x:8.1f}"
        if base is None:
            return a
        b = "—" if y is None else f"{y:8.1f}"
        return f"{a}  (was {b})"

    w(f"tests                 {now.tests}" + (f"  (was {base.tests})" if base else ""))
    w(f"run wall s            {pair(now.run_wall_s, base.run_wall_s if base else None)}")
    w(f"sum of test wall s    {pair(now.sum_wall_s, base.sum_wall_s if base else None)}")
    w(f"CPU s (incl. children){pair(now.cpu_s, base.cpu_s if base else None)}")
    w(f"mean load1            {now.load1:8.2f}" + (f"  (was {base.load1:.2f})" if base else ""))
    if now.cpu_s is not None and now.sum_wall_s > 0:
        w(f"CPU / test wall       {now.cpu_s / now.sum_wall_s:8.2f}  "
          "(low: the suite waits rather than computes)")

    by_worker: dict[str, list[TestTime]] = defaultdict(list)
    for t in tests:
        by_worker[t.worker].append(t)
    if len(by_worker) > 1 or "?" not in by_worker:
        w("")
        w("worker  tests   busy s    CPU s")
        for wk, ts in sorted(by_worker.items()):
            c = [t.total_cpu_s for t in ts]
            cs = None if any(x is None for x in c) else sum(x for x in c if x is not None)
            w(f"{wk:6s}  {len(ts):5d}  {sum(t.wall_s for t in ts):7.1f}  {_fmt_cpu(cs)}")

    w("")
    w("area                     tests   wall s    CPU s" + ("   | was wall s    CPU s"
                                                          if base else ""))
    names = sorted(set(now.areas) | set(base.areas if base else {}),
                   key=lambda a: -(now.areas.get(a, (0, 0.0, None))[1]))
    for a in names:
        n, wall, cpu = now.areas.get(a, (0, 0.0, None))
        line = f"{a:24s} {n:5d}  {wall:7.1f}  {_fmt_cpu(cpu)}"
        if base is not None:
            _bn, bwall, bcpu = base.areas.get(a, (0, 0.0, None))
            line += f"   | {bwall:7.1f}  {_fmt_cpu(bcpu)}"
        w(line)

    w("")
    w(f"slowest {top} tests (wall s = setup + call + teardown; CPU s; load1 when they ran)")
    for t in sorted(tests, key=lambda t: -t.wall_s)[:top]:
        ph = " + ".join(f"{t.phases.get(p, 0.0):.1f}" for p in ("setup", "call", "teardown")) \
            if "total" not in t.phases else "—"
        w(f"{t.wall_s:7.1f}  = {ph:22s} CPU {_fmt_cpu(t.total_cpu_s)}  "
          f"load {_mean(t.load1):4.1f}  {t.nodeid}")
    if now.cpu_s is not None:
        # Wall far above CPU × (load / cores) is waiting (real time, sleeps, servers);
        # close to it is computing slowed by the other work on the machine.
        w("")
        w(f"most waiting {top} tests (wall − CPU × load1/cores, cores = {CORES})")
        for t in sorted(tests, key=lambda t: -_waiting(t))[:top]:
            w(f"{_waiting(t):7.1f}  of {t.wall_s:6.1f} s wall, CPU {_fmt_cpu(t.total_cpu_s)}  "
              f"load {_mean(t.load1):4.1f}  {t.nodeid}")

    if now.lanes:
        w("")
        w("xdist groups (the rig lanes run their tests one after another)")
        t0 = min((x.start for x in tests if x.start is not None), default=None)
        for g in sorted(now.lanes):
            n, wall, cpu = now.lanes[g]
            chain = sorted((t for t in tests if t.group == g), key=lambda t: t.start or 0.0)
            first, last = chain[0].start, chain[-1].end
            was = ""
            if base is not None and g in base.lanes:
                was = f"  (was {base.lanes[g][1]:.1f} s)"
            when = ""
            if t0 is not None and first is not None and last is not None:
                when = f", from {first - t0:.0f} s to {last - t0:.0f} s of the run"
            w(f"{g}: {n} tests, {wall:.1f} s of tests{was}, CPU {_fmt_cpu(cpu).strip()} s"
              f"{when}")
            for t in chain:
                w(f"   {t.wall_s:6.1f}  CPU {_fmt_cpu(t.total_cpu_s).strip():>6s}  "
                  f"load {_mean(t.load1):4.1f}  {t.worker}  {t.nodeid}")
            workers = sorted({t.worker for t in chain})
            if len(workers) > 1:
                w(f"   (split over workers {', '.join(workers)}: the group was not honoured)")
        crit = max(now.lanes.items(), key=lambda kv: kv[1][1])
        w(f"critical path: {crit[0]}, {crit[1][1]:.1f} s of real-time tests in one lane")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="PREFIX of suite_timing .jsonl files, or a JUnit .xml")
    ap.add_argument("--baseline", help="another run (PREFIX or .xml) to print beside it")
    ap.add_argument("--top", type=int, default=20, help="how many slowest tests (20)")
    a = ap.parse_args(argv)
    tests = load(a.source)
    base = load(a.baseline) if a.baseline else None
    print(report(tests, base, a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
