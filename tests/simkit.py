"""Helpers for tests: site variants and synthetic traces built in memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from controller.config import SiteConfig, parse_site
from controller.trace.reader import Trace

ROOT = Path(__file__).resolve().parent.parent
HOUSE = ROOT / "hil" / "sites" / "house-10kwp.toml"
SPRING_DAY = ROOT / "hil" / "traces" / "house-spring-day.csv"
FARM = ROOT / "hil" / "sites" / "farm-30kwp.toml"


def site_dict(path: Path = HOUSE) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def site(path: Path = HOUSE, **patch: Any) -> SiteConfig:
    """Load an example site, replacing whole top-level sections (None removes one)."""
    d = site_dict(path)
    for k, v in patch.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return parse_site(d, str(path))


def trace(
    pv_w: Any,
    load_w: Any,
    step_s: float = 1.0,
    heat_demand_w: Any = 0.0,
    dr_limit_w: Any = np.nan,
    import_price: float = 0.3,
    export_price: float = 0.05,
    start_s: float = 1_700_000_000.0,
) -> Trace:
    pv = np.asarray(pv_w, dtype=np.float64)
    n = len(pv)

    def col(x: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    return Trace(
        time_s=start_s + np.arange(n, dtype=np.float64) * step_s,
        pv_w=pv,
        load_w=col(load_w),
        heat_demand_w=col(heat_demand_w),
        outdoor_c=col(np.nan),
        import_price=col(import_price),
        export_price=col(export_price),
        hashprice=col(np.nan),
        dr_limit_w=col(dr_limit_w),
        step_s=step_s,
        source="synthetic",
    )


def held_w(cfg: SiteConfig) -> float:
    """What the miners whose firmware has no pause (the Bitaxes' AxeOS) draw when every
    miner is told to stop: they are held at their minimum, never off (as live)."""
    from controller.miners.factory import held_at_min_w

    return held_at_min_w(cfg.miners)


def rerun_interpreted(test_file: str, test_name: str) -> None:
    """Run one test again, in a pytest of its own, on the interpreted control core
    (`HEARTH_NATIVE=0`): for a test that replaces a part of the core (a monkeypatched
    class), which compiled code, calling its own parts directly, would never see."""
    env = {**os.environ, "HEARTH_NATIVE": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"{test_file}::{test_name}"],
        env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def spring_days(n_days: int, path: Path, rows: slice = slice(None)) -> Path:
    """The shipped spring day (1-min rows; or `rows` of it) repeated `n_days` times, as a
    CSV file: a trace as long as a streaming test needs."""
    lines = SPRING_DAY.read_text().splitlines()
    header, body = lines[0], lines[1:][rows]
    first = rows.start or 0
    out = [header]
    base = np.datetime64("2015-04-21T00:00:00", "s")
    for d in range(n_days):
        for k, ln in enumerate(body):
            t = base + np.timedelta64(d * 86_400 + 60 * (first + k), "s")
            out.append(f"{t}Z," + ln.split(",", 1)[1])
    path.write_text("\n".join(out) + "\n")
    return path
