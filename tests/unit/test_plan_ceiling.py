"""The ceiling (`hearth bound`): tiny instances whose optimum is known by hand, the rolling
windows' bound, a timed-out window's bound, and the ceiling above what hearth achieves."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simkit

from controller.cli import main
from controller.config import SiteConfig
from controller.plan.ceiling import ceiling, hash_majorant, window_starts
from controller.sim.report import summarize
from controller.sim.runner import simulate
from controller.trace.reader import Trace, read_trace

DT = 60.0
KWH = DT / 3.6e6  # kWh per W held over one step
SURPLUS_SITE = simkit.ROOT / "hil" / "sites" / "surplus-10kwp.toml"


def _site(*, restart_s: float = 0.0, idle_w: float = 0.0, min_on_s: float = 0.0,
          min_off_s: float = 0.0, j_per_th: float = 36.0, api: str = "braiins-os",
          miners: int = 1, min_w: float = 100.0, max_w: float = 1000.0) -> SiteConfig:
    """No battery, no tank; `miners` identical miners at a flat efficiency."""
    d = simkit.site_dict()
    d.pop("battery")
    d.pop("tank")
    d["miners"] = [{
        "name": f"m{i}", "kind": "test", "actuation": "power_target", "min_power_w": min_w,
        "max_power_w": max_w, "idle_power_w": idle_w, "heats_tank": False,
        "efficiency": [{"power_w": max_w, "j_per_th": j_per_th}], "ramp_w_per_s": 1000.0,
        "restart_s": restart_s, "stop_s": 0.0, "min_on_s": min_on_s, "min_off_s": min_off_s,
        "driver": {"api": api, "host": "192.0.2.1"},
    } for i in range(miners)]
    d["bitcoin"]["pool_fee_pct"] = 0
    d["backup_heat"] = {"kind": "gas_boiler", "efficiency": 1.0, "fuel_price_per_kwh": "0.10"}
    return simkit.parse_site(d)


def _trace(surplus_w: list[float], export_price: float = 0.10, import_price: float = 0.30,
           value_per_kwh: float = 0.15, j_per_th: float = 36.0) -> Trace:
    """pv = surplus (no load); hashprice set so a kWh mined at `j_per_th` earns
    `value_per_kwh`. Starts at a solar midnight (a single window)."""
    n = len(surplus_w)
    per_th = value_per_kwh / (3.6e6 / j_per_th)

    def col(x: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    return Trace(time_s=1_700_000_000.0 + np.arange(n) * DT, pv_w=col(surplus_w),
                 load_w=col(0.0), heat_demand_w=col(0.0), outdoor_c=col(np.nan),
                 import_price=col(import_price), export_price=col(export_price),
                 hashprice=col(per_th * 86_400.0), dr_limit_w=col(np.nan), step_s=DT)


def test_one_miner_five_steps_takes_what_fits_in_its_range() -> None:
    # off or within [100, 1000] W: 500 + 0 (50 is below min) + 1000 + 800 + 0
    res = ceiling(_site(), _trace([500, 50, 1500, 800, 0]), jobs=1, objectives=("capture",))
    assert res.capture.bound == pytest.approx(2300 * KWH, rel=1e-6)
    assert res.capture.schedule == pytest.approx(2300 * KWH, rel=1e-6)
    np.testing.assert_allclose(res.capture.miner_w["m0"], [500, 0, 1000, 800, 0], atol=1e-6)


def test_minimum_off_time_forces_a_choice_between_two_runs() -> None:
    # 3 steps on at least, 2 off at least: 0-2 (1800) and 4-6 (2700) are one step apart,
    # step 3 (50 W) is below min: only the better run is possible. (The trailing zeros
    # keep the trace's end from cutting a run short, which min_on_s cannot forbid.)
    surplus = [600, 600, 600, 50, 900, 900, 900, 0, 0, 0]
    res = ceiling(_site(min_on_s=180, min_off_s=120), _trace(surplus), jobs=1,
                  objectives=("capture",))
    assert res.capture.bound == pytest.approx(2700 * KWH, rel=1e-6)
    np.testing.assert_allclose(res.capture.miner_w["m0"], [0, 0, 0, 0, 900, 900, 900, 0, 0, 0],
                               atol=1e-6)
    free = ceiling(_site(min_on_s=180), _trace(surplus), jobs=1, objectives=("capture",))
    assert free.capture.bound == pytest.approx(4500 * KWH, rel=1e-6)


def test_minimum_on_time_forbids_a_run_that_would_have_to_import() -> None:
    # 2 steps of surplus, a start must hold 3 steps and the third has none
    res = ceiling(_site(min_on_s=180), _trace([900, 900, 0, 0]), jobs=1,
                  objectives=("capture",))
    assert res.capture.bound == pytest.approx(0.0, abs=1e-9)
    allowed = ceiling(_site(min_on_s=180), _trace([900, 900, 0, 0]), jobs=1,
                      objectives=("capture",), allow_import=True)
    assert allowed.capture.bound == pytest.approx(1800 * KWH, rel=1e-6)


def _value(surplus: list[float]) -> tuple[float, float, int]:
    cfg = _site(restart_s=120, idle_w=500, min_w=600)
    res = ceiling(cfg, _trace(surplus), jobs=1, objectives=("capture", "value"))
    assert res.value is not None
    return res.value.bound, res.baseline_value, res.value.starts["m0"]


def test_boot_energy_makes_a_short_window_not_worth_a_start() -> None:
    # Mining earns 0.15/kWh, export 0.10. 3 steps of 1000 W: a start burns 2 steps at
    # 500 W idle (export lost, no hashes) to mine 1 step: 0.0025 + 0.00167 < 0.005.
    bound, base, starts = _value([1000, 1000, 1000])
    assert base == pytest.approx(3000 * KWH * 0.10)
    assert bound == pytest.approx(base, rel=1e-4)
    assert starts == 0


def test_a_long_window_is_worth_the_boot() -> None:
    # 10 steps: boot 2 steps (export 500 W each), then 8 steps mining 1000 W.
    bound, base, starts = _value([1000] * 10)
    expected = 1000 * KWH * 0.10 + 8000 * KWH * 0.15
    assert expected > base
    assert bound == pytest.approx(expected, rel=1e-4)
    assert starts == 1


def test_a_miner_that_cannot_pause_is_held_at_its_minimum() -> None:
    # AxeOS has no pause: at night it still draws min power; nothing is absorbed.
    cfg = _site(api="axeos", min_w=15, max_w=20, idle_w=2, min_on_s=300, min_off_s=300)
    res = ceiling(cfg, _trace([0.0] * 10 + [18.0] * 10), jobs=1)
    assert res.capture.bound == pytest.approx(180 * KWH, rel=1e-4)
    assert res.value is not None
    # (step 0 may be a boot: the plant's miners start off, or already held on)
    assert np.all(res.value.miner_w["m0"][1:] >= 15 - 1e-6)


def test_hash_majorant_lies_above_the_curve() -> None:
    for m in simkit.site(SURPLUS_SITE).miners:
        lines = hash_majorant(m)
        for p in np.linspace(0.0, m.max_power_w, 997):
            env = min(c0 + c1 * p for c0, c1 in lines)
            assert env >= m.hashrate_ths_at(float(p)) - 1e-12
            assert env <= m.hashrate_ths_at(float(p)) * 1.01 + 1e-3


def _noisy(n: int, seed: int = 7) -> list[float]:
    rng = np.random.default_rng(seed)
    base = 1500 + 1200 * np.sin(np.linspace(0, np.pi, n))
    return list(np.maximum(base + rng.normal(0, 600, n), 0.0))


def test_windows_with_a_free_history_bound_the_whole_trace() -> None:
    # Any schedule of the whole trace, cut in three, is feasible for the three windows
    # (each starts from a free history): their bounds add up to at least its capture.
    cfg = _site(restart_s=90, idle_w=40, min_w=600, max_w=1400, min_on_s=300,
                min_off_s=300)
    tr = _trace(_noisy(36))
    whole = ceiling(cfg, tr, jobs=1, window_steps=36, objectives=("capture",),
                    time_limit_s=20)
    split = ceiling(cfg, tr, jobs=1, window_steps=12, objectives=("capture",),
                    time_limit_s=20)
    assert whole.capture.windows == 1 and split.capture.windows == 3
    assert whole.capture.optimal_windows == 1
    assert split.capture.bound >= whole.capture.schedule - 1e-9


def test_a_window_cut_by_the_time_limit_still_bounds_the_optimum() -> None:
    cfg = _site(restart_s=90, idle_w=40, min_w=600, max_w=1400, min_on_s=300,
                min_off_s=300)
    tr = _trace(_noisy(40, seed=3))
    best = ceiling(cfg, tr, jobs=1, time_limit_s=20.0, objectives=("capture",))
    assert best.capture.optimal_windows == 1
    cut = ceiling(cfg, tr, jobs=1, time_limit_s=1e-3, objectives=("capture",))
    assert cut.capture.optimal_windows == 0
    assert cut.capture.bound >= best.capture.schedule - 1e-9
    assert cut.capture.schedule <= best.capture.bound + 1e-9
    assert cut.capture.gap >= 0


def test_solar_midnight_windows() -> None:
    tr = _trace([0.0] * (3 * 1440))
    starts = window_starts(tr, 6.95, None)
    assert starts[0] == 0 and all(b > a for a, b in itertools.pairwise(starts))
    assert all(b - a <= 240 for a, b in zip(starts, [*starts[1:], 3 * 1440], strict=True))


def _morning(cfg: SiteConfig) -> Trace:
    """06:00-09:00 UTC of the spring day (clouds and a sunrise: starts and ramps matter)."""
    full = read_trace(simkit.ROOT / "hil" / "traces" / "house-spring-day.csv", cfg)
    a, b = 6 * 60, 9 * 60
    cols = ("time_s", "pv_w", "load_w", "heat_demand_w", "outdoor_c", "import_price",
            "export_price", "hashprice", "dr_limit_w")
    return Trace(**{c: np.array(getattr(full, c)[a:b]) for c in cols}, step_s=full.step_s,
                 source="house-spring-day 06-09", columns=full.columns)


def test_the_ceiling_is_above_what_hearth_achieves() -> None:
    cfg = simkit.site(SURPLUS_SITE)
    tr = _morning(cfg)
    got = summarize(simulate(cfg, tr, "hearth", progress=False))
    res = ceiling(cfg, tr, jobs=1, time_limit_s=2.0)
    assert res.value is not None
    assert res.capture.bound >= got["miner_from_surplus_kwh"]
    assert res.value.bound >= float(got["net_value"])
    loose = ceiling(cfg, tr, jobs=1, time_limit_s=2.0, allow_import=True,
                    objectives=("capture",))
    assert loose.capture.bound >= res.capture.bound - 1e-6


def test_hearth_bound_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = tmp_path / "site.toml"
    cfg_path.write_text(SURPLUS_SITE.read_text())
    trace_path = tmp_path / "t.csv"
    rows = ["time,pv_w,load_w"] + [
        f"2024-06-01T{10 + i // 60:02d}:{i % 60:02d}:00Z,{4000 + 1500 * np.sin(i / 7):.0f},300"
        for i in range(20)]
    trace_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "s.json"
    sched = tmp_path / "sched.csv"
    rc = main(["bound", "--config", str(cfg_path), "--trace", str(trace_path), "--jobs", "1",
               "--summary", str(out), "--schedule", str(sched), "--time-limit", "2"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "capture ceiling (no miner-caused import)" in text
    assert "value ceiling" in text and "loose bound" in text
    assert out.exists() and sched.read_text().startswith("time,capture_s19_w")
    assert len(sched.read_text().splitlines()) == 21


def test_hearth_run_does_not_import_the_ceiling() -> None:
    import subprocess
    import sys

    code = ("import sys, controller.cli, controller.runtime.assemble, controller.sim.compare; "
            "sys.exit('controller.plan.ceiling' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
