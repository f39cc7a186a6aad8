"""The control-quality dev traces (issue 15), by name, as `Trace` objects.

- `year-1min`: `hil/traces/house-year.csv.gz` (real 2015 irradiance, household load, 2023
  Belgian day-ahead prices, 15 min) interpolated to 1 min (irradiance-like columns
  linearly, load/heat/prices held): 525,600 steps;
- `price-year-15min`: the same year at its own 15-min step (prices decide more there);
- `serf-2day-1min`: two days of measured 1-min PV (NREL SERF East), `hil/traces/dev/`;
- `cloud-5h-10s`: five real high-variability hours at 10 s, `hil/traces/dev/`.
Origins: `hil/traces/SOURCES.md`, `hil/traces/dev/SOURCES.md`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.trace.reader import Trace, read_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "hil" / "traces"
SITE = ROOT / "hil" / "sites" / "surplus-10kwp.toml"


def to_one_minute(tr: Trace) -> Trace:
    """Interpolate irradiance-like columns, hold load/heat/prices: 15 min -> 1 min."""
    k = int(tr.step_s // 60)
    n = len(tr.time_s) * k
    t = tr.time_s[0] + np.arange(n, dtype=np.float64) * 60.0
    src = np.arange(len(tr.time_s), dtype=np.float64) * k

    def lin(a: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        return np.interp(np.arange(n, dtype=np.float64), src, a)

    def hold(a: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        return np.repeat(a, k)

    return Trace(
        time_s=t, pv_w=lin(tr.pv_w), load_w=hold(tr.load_w),
        heat_demand_w=hold(tr.heat_demand_w), outdoor_c=lin(tr.outdoor_c),
        import_price=hold(tr.import_price), export_price=hold(tr.export_price),
        hashprice=hold(tr.hashprice), dr_limit_w=hold(tr.dr_limit_w),
        hashvalue_sats_per_th_day=hold(tr.hashvalue_sats_per_th_day),
        btc_price=hold(tr.btc_price), step_s=60.0,
        source=f"{tr.source} (1-min interpolation)",
    )


def dev_trace(name: str, cfg: object) -> Trace:
    if name == "year-1min":
        return to_one_minute(read_trace(TRACES / "house-year.csv.gz", cfg))  # type: ignore[arg-type]
    if name == "price-year-15min":
        return read_trace(TRACES / "house-year.csv.gz", cfg)  # type: ignore[arg-type]
    return read_trace(TRACES / "dev" / f"{name}.csv", cfg)  # type: ignore[arg-type]


NAMES = ("year-1min", "serf-2day-1min", "cloud-5h-10s", "price-year-15min")
