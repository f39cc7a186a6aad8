"""Build the control-quality dev traces stored beside this file (issue 15).

Run from the repository root, with the shared data folder and pvanalytics' wheel data:

    python hil/traces/dev/build.py --data ../shared/data --serf PATH/serf_east_1min_ac_power.csv

Output (reproducible byte for byte; origins in SOURCES.md beside this file):
- `serf-2day-1min.csv`: two days of measured 1-min AC power of NREL's SERF East array
  (pvanalytics 0.2.2 `pvanalytics/data/serf_east_1min_ac_power.csv`, 2022-03-18/19),
  scaled x2 onto the 10 kWp house (its peak 4.63 kW -> 9.26 kW), night values < 0 -> 0;
  load: `household_3_w` of the vpplib households on 2017-03-18/19 (15 min, held).
- `cloud-5h-10s.csv`: the five 1-hour high-variability windows (a-e) of a ~20 MW plant's
  mean normalised combiner current at 10 s, back to back, scaled 65 W per unit (the
  plant's 17.7-127 -> 1.15-8.3 kW on the 10 kWp house); load: `household_3_w` on
  2017-06-21 10:00-15:00 local file time (15 min, held). Times are labels from
  2015-06-21T10:00:00Z (the source has no date).

The year at 1 min is not stored: `bench/devtraces.py` interpolates `hil/traces/
house-year.csv.gz` (15 min, real 2015 irradiance + household load + 2023 prices) to 1 min.
"""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _household(data: Path, day: str, start_h: float, hours: float) -> list[float]:
    """household_3_w at 15 min from `day` start_h for `hours` (file time, naive)."""
    t0 = datetime.fromisoformat(day) + timedelta(hours=start_h)
    t1 = t0 + timedelta(hours=hours)
    out = []
    with (data / "vpplib_households_2017_15min_w.csv").open() as f:
        for r in csv.DictReader(f):
            t = datetime.fromisoformat(r["time"])
            if t0 <= t < t1:
                out.append(float(r["household_3_w"]))
    if len(out) != int(hours * 4):
        raise SystemExit(f"household_3_w: {len(out)} rows for {day}+{start_h}h, want {hours * 4}")
    return out


def serf(data: Path, serf_csv: Path) -> None:
    pv: dict[datetime, float] = {}
    with serf_csv.open() as f:
        for r in csv.DictReader(f):
            t = datetime.fromisoformat(r["measured_on"]).astimezone(UTC)
            pv[t] = max(float(r["ac_power__752"]), 0.0) * 2.0
    # Whole local days 2022-03-18/19 (UTC-7): 07:00Z .. 07:00Z+2d; gaps are held.
    start = datetime(2022, 3, 18, 7, 0, tzinfo=UTC)
    load = _household(data, "2017-03-18", 0.0, 48.0)
    last = 0.0
    with (HERE / "serf-2day-1min.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time", "pv_w", "load_w"])
        for i in range(2 * 1440):
            t = start + timedelta(minutes=i)
            last = pv.get(t, last if t.hour not in (7, 8) else 0.0)
            w.writerow([t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{last:.1f}", f"{load[i // 15]:.0f}"])


def cloud(data: Path) -> None:
    windows: dict[str, list[float]] = {}
    with (data / "pv_plant_20MW_combiners_10s_normalized.csv").open() as f:
        for r in csv.DictReader(f):
            windows.setdefault(r["window"], []).append(float(r["plant_mean"]))
    series = [v for k in sorted(windows) for v in windows[k][:360]]
    load = _household(data, "2017-06-21", 10.0, 5.0)
    start = datetime(2015, 6, 21, 10, 0, tzinfo=UTC)
    with (HERE / "cloud-5h-10s.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time", "pv_w", "load_w"])
        for i, v in enumerate(series):
            t = start + timedelta(seconds=10 * i)
            w.writerow([t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{v * 65.0:.1f}",
                        f"{load[i // 90]:.0f}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--serf", type=Path, required=True)
    a = ap.parse_args()
    serf(a.data, a.serf)
    cloud(a.data)


if __name__ == "__main__":
    main()
