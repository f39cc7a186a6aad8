"""Ledger benchmarks. Prints figures; asserts nothing (targets are shown beside).

1. Bytes written to the database per simulated day, as the Pi writes them: 1-s control
   ticks (the shipped spring day interpolated to 1 s and simulated with the Hearth
   controller), 15-min intervals, 1-min telemetry history, one transaction every 5 min,
   SQLite in WAL mode. "Written" = bytes the process passed to write() (/proc/self/io
   wchar: WAL appends and checkpoints included), and the file size left behind.
   In-run baselines: the same day committed every 60 s and after every tick (no
   batching), the latter measured over two hours and scaled to a day.
   Target: <= 20 MB per day with telemetry history.
2. Writer CPU per 1-s sample (it runs on a Raspberry Pi next to the controller).
3. Query time of a month report over a year of intervals (the shipped real-data year),
   against the in-run baseline of fetching the same rows with plain sqlite3 (no ORM, no
   Decimal), and the SQL SUM of the month. Also on PostgreSQL when HEARTH_TEST_PG_URL is
   set.

Run: `.venv/bin/python bench/ledger_bench.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.config import load_site  # noqa: E402
from controller.config.models import SiteConfig  # noqa: E402
from controller.ledger.query import Ledger  # noqa: E402
from controller.ledger.sim import sim_samples, write_sim_ledger  # noqa: E402
from controller.ledger.writer import LedgerWriter, economics_from_site, site_info  # noqa: E402
from controller.sim.runner import SimResult, simulate  # noqa: E402
from controller.trace.reader import NUMBER_COLUMNS, Trace, read_trace  # noqa: E402

SITE = ROOT / "hil" / "sites" / "house-10kwp.toml"
DAY = ROOT / "hil" / "traces" / "house-spring-day.csv"
YEAR = ROOT / "hil" / "traces" / "house-year.csv.gz"
MB = 1e6


def wchar() -> int:
    """Bytes this process has passed to write() so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def to_step(tr: Trace, step_s: float) -> Trace:
    """Resample a trace to a finer step: PV and temperature interpolated, rest held."""
    k = int(tr.step_s // step_s)
    n = len(tr.time_s) * k
    x = np.arange(n, dtype=np.float64)
    src = np.arange(len(tr.time_s), dtype=np.float64) * k
    cols = {}
    for c in NUMBER_COLUMNS:
        a = getattr(tr, c)
        cols[c] = np.interp(x, src, a) if c in ("pv_w", "outdoor_c") else np.repeat(a, k)
    return Trace(time_s=tr.time_s[0] + x * step_s, step_s=step_s, source="1-s", **cols)


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def write_live(result: SimResult, path: Path, flush_s: float, rows: int | None = None
               ) -> tuple[int, float, int]:
    """Write like the live controller; returns (bytes written, seconds, rows)."""
    cfg: SiteConfig = result.cfg
    url = f"sqlite:///{path}"
    samples = list(sim_samples(result))[:rows]
    w = LedgerWriter.open(url, site_info(cfg), economics_from_site(cfg),
                          flush_interval_s=flush_s, retention_days=400)
    before = wchar()
    t0 = time.perf_counter()
    for s in samples:
        w.add(s)
    w.close()
    return wchar() - before, time.perf_counter() - t0, len(samples)


def bytes_per_day(quick: bool) -> None:
    cfg = load_site(SITE)
    tr = to_step(read_trace(DAY, cfg), 1.0)
    if quick:
        tr = Trace(time_s=tr.time_s[:21_600], step_s=1.0, source="6 h",
                   **{c: getattr(tr, c)[:21_600] for c in NUMBER_COLUMNS})
    t0 = time.perf_counter()
    result = simulate(cfg, tr, progress=False)
    days = len(tr.time_s) / 86_400
    print(f"\n1. bytes written per simulated day (1-s ticks, {days:g} day simulated in "
          f"{time.perf_counter() - t0:.1f} s)")
    print(f"   {'commit cadence':<26}{'written MB/day':>15}{'file MB/day':>13}"
          f"{'commits/day':>13}{'µs/sample':>11}")
    with tempfile.TemporaryDirectory() as d:
        for label, flush, rows in (("every 300 s (default)", 300.0, None),
                                   ("every 60 s", 60.0, None),
                                   ("every tick (baseline)", 1.0, 7200)):
            path = Path(d) / f"l{int(flush)}.sqlite3"
            written, secs, n = write_live(result, path, flush, rows)
            scale = 86_400 / n
            print(f"   {label:<26}{written * scale / MB:>15.2f}"
                  f"{db_size(path) * scale / MB:>13.2f}{86_400 / flush:>13.0f}"
                  f"{secs / n * 1e6:>11.1f}"
                  + ("   (2 h, scaled)" if rows else "")
                  + ("   target <= 20 MB/day" if flush == 300 else ""))
    print("   wchar = bytes passed to write() (WAL frames, checkpoints); file = what stays")


def timed(fn: Callable[[], object], runs: int) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def month_query(quick: bool) -> None:
    cfg = load_site(SITE)
    tr = read_trace(YEAR, cfg)
    t0 = time.perf_counter()
    result = simulate(cfg, tr, progress=False)
    print(f"\n3. month report over a year of 15-min intervals (year simulated in "
          f"{time.perf_counter() - t0:.1f} s)")
    runs = 3 if quick else 15
    with tempfile.TemporaryDirectory() as d:
        urls = [("SQLite", f"sqlite:///{d}/year.sqlite3")]
        pg = os.environ.get("HEARTH_TEST_PG_URL")
        schema = None
        if pg:
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url

            schema = f"hearth_bench_{os.getpid()}"
            admin = create_engine(pg)
            with admin.begin() as c:
                c.exec_driver_sql(f"CREATE SCHEMA {schema}")
            urls.append(("PostgreSQL", make_url(pg).update_query_dict(
                {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)))
        try:
            for name, url in urls:
                t0 = time.perf_counter()
                write_sim_ledger(result, url)
                wr = time.perf_counter() - t0
                led = Ledger.open(url)
                try:
                    n = len(led.intervals())
                    month = timed(lambda led=led: led.month_report(2015, 6), runs)  # type: ignore[misc]
                    june = led.month_report(2015, 6)
                    start, end = june.start_s, june.end_s
                    sums = timed(lambda led=led, s=start, e=end: led.totals(s, e), runs)  # type: ignore[misc]
                    base = None
                    if name == "SQLite":
                        path = url.removeprefix("sqlite:///")

                        def raw(p: str = path, s: int = start, e: int = end) -> None:
                            with sqlite3.connect(p) as c:
                                c.execute("SELECT * FROM ledger_interval WHERE site = 1 AND "
                                          "start_s >= ? AND start_s < ?", (s, e)).fetchall()

                        base = timed(raw, runs)
                finally:
                    led.close()
                print(f"   {name}: {n} intervals written in {wr:.1f} s; month report "
                      f"{month * 1e3:.1f} ms (median of {runs}; {june.total.intervals} rows, "
                      f"{len(june.rows)} days)")
                print(f"      SQL SUM of the month {sums * 1e3:.1f} ms"
                      + (f"; baseline raw sqlite3 fetch {base * 1e3:.1f} ms" if base else ""))
        finally:
            if schema:
                with admin.begin() as c:
                    c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 simulated hours, fewer runs")
    args = ap.parse_args()
    print(f"ledger bench on {platform.machine()} / Python {platform.python_version()} / "
          f"SQLite {sqlite3.sqlite_version}")
    bytes_per_day(args.quick)
    print("\n2. writer CPU per 1-s sample: see µs/sample above (all accounting exact, "
          "Decimal/Fraction)")
    month_query(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
