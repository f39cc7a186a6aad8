"""Same results before and after a speed change: fingerprints of simulated runs.

A speed change to the step path (controller, allocator, runner, plant) must not change a
single result. This runs every policy on the dev traces (bench/devtraces.py) and the
bench sites and records, per run, the timeline CSV's SHA-256 (the contract's file, as
`hearth sim --timeline` writes it) and a SHA-256 of everything else a block carries at full
precision (every column, limiter, mode, each miner's run flag and energy, trips, forced
stops, starts). `--save FILE` writes them; `--against FILE` compares and names what
differs (exit 1). Keep a `--save` from main before the change, `--against` it after.

Run: `.venv/bin/python bench/sim_identity.py --save /tmp/before.json [--quick]`
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.devtraces import TRACES, dev_trace  # noqa: E402
from controller.config import load_site  # noqa: E402
from controller.sim.runner import POLICIES, simulate  # noqa: E402
from controller.sim.stream import TIMELINE_HEADER, Block, timeline_rows  # noqa: E402
from controller.trace.reader import read_trace  # noqa: E402

SITES = ROOT / "hil" / "sites"
# (site, trace): the bench's year on its two sites, the 10 s cloud hours on the farm (many
# miners: the allocator's combinations), the short dev traces on the dev site.
RUNS = (
    ("house-10kwp", "year-1min"),
    ("surplus-10kwp", "year-1min"),
    ("surplus-10kwp", "price-year-15min"),
    ("surplus-10kwp", "serf-2day-1min"),
    ("surplus-10kwp", "cloud-5h-10s"),
    ("farm-30kwp", "cloud-5h-10s"),
    ("farm-30kwp", "pv-cloud-10s"),
    ("house-10kwp", "house-spring-day"),
)
QUICK = tuple(r for r in RUNS if r[1] != "year-1min")


class Fingerprint:
    """A consumer that hashes every block as it comes (nothing kept per row)."""

    def __init__(self) -> None:
        self.timeline = hashlib.sha256(TIMELINE_HEADER.encode())
        self.detail = hashlib.sha256()

    def block(self, b: Block) -> None:
        self.timeline.update(timeline_rows(b.trace.time_s, b.columns, b.mode).encode())
        d = self.detail
        for k in sorted(b.columns):
            d.update(k.encode())
            d.update(np.ascontiguousarray(b.columns[k], dtype=np.float64).tobytes())
        for k in sorted(b.miner_run):
            d.update(k.encode())
            d.update(b.miner_run[k].tobytes())
            d.update(np.ascontiguousarray(b.miner_energy_j[k]).tobytes())
        d.update("\n".join(b.limiter).encode())
        d.update(repr(sorted(b.forced_off.items())).encode())

    def close(self) -> None:
        pass


def fingerprints(quick: bool, policies: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for site, trace in QUICK if quick else RUNS:
        cfg = load_site(SITES / f"{site}.toml")
        if trace in ("pv-cloud-10s", "house-spring-day"):
            tr = read_trace(TRACES / f"{trace}.csv", cfg)
        else:
            tr = dev_trace(trace, cfg)
        for policy in policies:
            fp = Fingerprint()
            t0 = time.perf_counter()
            r = simulate(cfg, tr, policy, progress=False, keep_columns=False, consumers=[fp])
            events = repr((r.starts, r.trips, r.trip_log, r.forced_off, r.stops_held_at_min,
                           r.terahashes))
            fp.detail.update(events.encode())
            key = f"{site}/{trace}/{policy}"
            out[key] = {"timeline": fp.timeline.hexdigest(), "detail": fp.detail.hexdigest()}
            print(f"  {key:<48} {time.perf_counter() - t0:6.1f} s  "
                  f"{out[key]['timeline'][:12]} {out[key]['detail'][:12]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--save", type=Path, help="write the fingerprints to this JSON file")
    ap.add_argument("--against", type=Path, help="compare with fingerprints saved before")
    ap.add_argument("--quick", action="store_true", help="leave out the 1-min years")
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help=f"comma-separated (default: all: {','.join(POLICIES)})")
    args = ap.parse_args()
    got = fingerprints(args.quick, args.policies.split(","))
    if args.save:
        args.save.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"saved {len(got)} fingerprints to {args.save}")
    if args.against:
        before: dict[str, dict[str, str]] = json.loads(args.against.read_text())
        bad = 0
        for key, fp in got.items():
            if key not in before:
                print(f"  {key}: not in {args.against}")
                continue
            for part in ("timeline", "detail"):
                if fp[part] != before[key][part]:
                    bad += 1
                    print(f"  DIFFERS {key}: {part}")
        print(f"{len(got)} runs compared: " + (f"{bad} differ" if bad else "all identical"))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
