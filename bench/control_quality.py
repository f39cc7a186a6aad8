"""Control quality on the real-data dev traces, every policy and the ceiling in one run
(issue 15). Prints figures; asserts nothing (the targets are shown beside).

Per trace (`bench/devtraces.py`) on `hil/sites/surplus-10kwp.toml`, for `hearth`, the
evcc-style peer (`evcc`: one loadpoint updated per 30 s cycle, as evcc does; `evcc-all`:
every miner every cycle, the stronger variant), the `threshold` rule and the
perfect-foresight ceiling (`hearth bound`,
a MILP over the same miner model):
- capture of the physical limit (most surplus the miners' ranges can absorb per step) and
  as a share of the ceiling's capture;
- caused import (miner energy the grid supplied) and costly import (the same, in steps
  where importing costs more than the best miner earns per kWh), and of that what was
  decided (less the minimum draw of miners that cannot pause, which no policy avoids);
- the worst miner's starts per day and minimum on/off violations;
- net value (BTC + export − import; the house's own bills are in every column).

Targets (issue 15): hearth's capture ≥ evcc's and its caused import ≤ evcc's on every
trace; capture ≥ 95 % of the ceiling's; costly import ≤ 1 %; ≤ 4 starts per miner per
day over the year.

Run: `.venv/bin/python bench/control_quality.py [--traces a,b] [--no-ceiling]`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.devtraces import NAMES, SITE, dev_trace  # noqa: E402
from controller.config import load_site  # noqa: E402
from controller.sim.quality import quality  # noqa: E402
from controller.sim.report import summarize  # noqa: E402
from controller.sim.runner import POLICIES, simulate  # noqa: E402

ORDER = ("hearth", "evcc", "evcc-all", "threshold")


def _ceiling(cfg: Any, tr: Any, time_limit_s: float) -> dict[str, Any] | None:
    from controller.plan.ceiling import ceiling

    t0 = time.perf_counter()
    # The bound stays proven whatever the time limit; only its own schedule gets worse.
    res = ceiling(cfg, tr, time_limit_s=time_limit_s)
    value = res.value
    return {"capture_kwh": float(res.capture.bound), "gap": float(res.capture.gap),
            "schedule_kwh": float(res.capture.schedule), "starts": res.capture.starts,
            "value": None if value is None else float(value.bound),
            "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default=",".join(NAMES))
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--ceiling-time-limit-s", type=float, default=1.0,
                    help="MILP time limit per window (the bound stays proven)")
    a = ap.parse_args()
    cfg = load_site(SITE)
    ranges = ", ".join(f"{m.name} {m.min_power_w:.0f}-{m.max_power_w:.0f} W" for m in cfg.miners)
    print(f"site {cfg.site.id}: {ranges}")
    hdr = (f"{'trace':18s} {'policy':10s} {'capture':>8s} {'of ceil':>8s} "
           f"{'caused imp':>10s} {'costly imp':>10s} {'decided':>8s} {'starts/d':>8s} "
           f"{'min on/off viol':>15s} {'net value':>10s} {'wall':>7s}")
    for name in a.traces.split(","):
        tr = dev_trace(name, cfg)
        ceil = None if a.no_ceiling else _ceiling(cfg, tr, a.ceiling_time_limit_s)
        print()
        print(f"{name}: {len(tr.time_s):,} steps of {tr.step_s:.0f} s")
        print(hdr)
        for pol in ORDER:
            if pol not in POLICIES:
                print(f"{name:18s} {pol:10s} (not available)")
                continue
            t0 = time.perf_counter()
            r = simulate(cfg, tr, pol, progress=False)
            wall = time.perf_counter() - t0
            s, q = summarize(r), quality(r)
            of_ceil = (f"{q['captured_kwh'] / ceil['capture_kwh']:8.1%}"
                       if ceil and ceil["capture_kwh"] > 0 else f"{'-':>8s}")
            print(f"{name:18s} {pol:10s} {q['capture_of_limit']:8.1%} {of_ceil} "
                  f"{q['caused_import']:10.2%} {q['costly_import']:10.2%} "
                  f"{q['costly_import_decided']:8.2%} "
                  f"{q['max_starts_per_day']:8.2f} {s['min_on_off_violations']:15d} "
                  f"{s['net_value']:>10s} {wall:6.1f}s")
        if ceil is not None:
            val = "" if ceil["value"] is None else f"; value ceiling {ceil['value']:.2f}"
            print(f"{name:18s} {'ceiling':10s} captures {ceil['capture_kwh']:.1f} kWh (gap "
                  f"{ceil['gap']:.2%}, its schedule {ceil['schedule_kwh']:.1f} kWh with "
                  f"{ceil['starts']} starts){val} (MILP, {ceil['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
