"""Instructions per `Controller.step`, counted by valgrind's callgrind: a figure that does not
depend on the machine's load, for before/after comparisons and a Pi-class estimate.

The controller is pure, so its inputs are the whole story: one plain run of the bench's
1-min year records the snapshots of a few days (`--record`), then the same script replays
them into a fresh controller under callgrind twice, once stepping none of them and once
stepping all; the difference of the two totals divided by the steps is what the steps
cost (start-up, imports and loading the snapshots cancel out). The replay reproduces the
recorded run's decisions exactly (same inputs, same outputs).

Run: `.venv/bin/python bench/step_instructions.py` (prints instructions per step; needs
`valgrind`). bench/sim_speed.py calls `count()`.
"""

from __future__ import annotations

import argparse
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Days of the year replayed: a winter day (nights, battery, little PV), a spring day of
# clouds and price moves, a summer day of long surplus (day-of-year, 0-based).
DAYS = (15, 110, 180)


def record(path: Path) -> int:
    """Snapshots of DAYS from a run of the bench site over the 1-min year, pickled."""
    from bench.devtraces import to_one_minute
    from bench.run import SITE, YEAR
    from controller.config import load_site
    from controller.control.controller import Controller
    from controller.economics.hashprice import RowTerms
    from controller.sim.plant import Plant
    from controller.trace.reader import read_trace

    cfg = load_site(SITE)
    tr = to_one_minute(read_trace(YEAR, cfg))
    wanted = {d * 1440 + k for d in DAYS for k in range(1440)}
    plant, ctrl = Plant(cfg), Controller(cfg, tick_s=tr.step_s)
    snaps = []
    pv, load, heat, tm = (tr.pv_w.tolist(), tr.load_w.tolist(), tr.heat_demand_w.tolist(),
                          tr.time_s.tolist())
    imp, exp = tr.import_price.tolist(), tr.export_price.tolist()
    # Each step's bitcoin terms, as `hearth sim` feeds them (controller/sim/runner.py).
    row_terms = RowTerms(cfg.bitcoin)
    hv, btc, hp = tr.hashvalue_sats_per_th_day, tr.btc_price, tr.hashprice
    terms = (None if row_terms.is_static(hv, btc, hp) else
             [row_terms(*k) for k in zip(hv.tolist(), btc.tolist(), hp.tolist(), strict=True)])
    for i in range(max(wanted) + 1):
        m = plant.measure(tm[i], pv[i], load[i], imp[i], exp[i],
                          btc_terms=None if terms is None else terms[i])
        plant.step(ctrl.step(m, tm[i]), tr.step_s, pv[i], load[i], heat[i])
        if i in wanted:
            snaps.append((m, tm[i]))
    path.write_bytes(pickle.dumps((str(SITE), tr.step_s, snaps)))
    return len(snaps)


def replay(path: Path, steps: int) -> None:
    """Step a fresh controller over the first `steps` snapshots (each day from its start
    with a fresh controller, as after a restart)."""
    from controller.config import load_site
    from controller.control.controller import Controller

    site, step_s, snaps = pickle.loads(path.read_bytes())
    cfg = load_site(Path(site))
    ctrls = [Controller(cfg, tick_s=step_s) for _ in DAYS]
    for i, (m, now) in enumerate(snaps[:steps]):
        ctrls[i // 1440].step(m, now)


def replay_times(path: Path) -> list[float]:
    """Each recorded step replayed and timed (µs), as `replay` steps them."""
    import time

    from controller.config import load_site
    from controller.control.controller import Controller

    site, step_s, snaps = pickle.loads(path.read_bytes())
    cfg = load_site(Path(site))
    ctrls = [Controller(cfg, tick_s=step_s) for _ in DAYS]
    out = []
    clock = time.perf_counter_ns
    for i, (m, now) in enumerate(snaps):
        ctrl = ctrls[i // 1440]
        t0 = clock()
        ctrl.step(m, now)
        out.append((clock() - t0) / 1e3)
    return out


def callgrind_total(args: list[str]) -> int:
    """Instructions callgrind counts for `python ARGS` (run from the project root)."""
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out",
             sys.executable, *args],
            capture_output=True, text=True, check=True, cwd=ROOT)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
    return int(found.group(1))


def _collected(path: Path, steps: int) -> int:
    return callgrind_total([__file__, "--replay", str(path), "--steps", str(steps)])


def count(snaps: Path | None = None) -> tuple[float, int] | None:
    """(instructions per step, steps replayed), or None without valgrind. `snaps`: replay
    these recorded snapshots (recorded there first if the file does not exist)."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        path = snaps if snaps is not None else Path(d) / "snaps.pickle"
        if not path.exists():
            record(path)
        n = len(pickle.loads(path.read_bytes())[2])
        base = _collected(path, 0)
        full = _collected(path, n)
    return (full - base) / n, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--snaps", type=Path,
                    help="keep the recorded snapshots in this file (reused if it exists: "
                         "the same steps replayed by two versions of the code)")
    args = ap.parse_args()
    if args.replay is not None:
        replay(args.replay, args.steps)
        return 0
    got = count(args.snaps)
    if got is None:
        print("valgrind not found: no instruction count")
        return 0
    per_step, n = got
    print(f"Controller.step: {per_step:,.0f} instructions per step "
          f"(callgrind, {n:,} steps of days {', '.join(map(str, DAYS))} of the 1-min year)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
