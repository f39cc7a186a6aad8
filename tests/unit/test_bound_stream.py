"""`hearth bound` streamed: a trace read in chunks, cut into the ceiling's windows as the
rows arrive, gives the same ceiling, schedule and loose bound as the whole trace in
memory, and its memory does not grow with the trace's length."""

from __future__ import annotations

import gc
import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simkit
import tomli_w

import controller.plan.bound as bound_mod
import controller.trace.reader as reader
from controller.cli import main
from controller.config import SiteConfig
from controller.errors import InputError
from controller.plan.bound import LooseBoundTooLong, loose_bound, perfect_foresight
from controller.plan.ceiling import (
    MAX_WINDOW_STEPS,
    WindowCutter,
    ceiling,
    window_starts,
    write_schedule,
)
from controller.trace.reader import iter_trace, read_trace

DAY = simkit.SPRING_DAY
SURPLUS_SITE = simkit.ROOT / "hil" / "sites" / "surplus-10kwp.toml"
TIMINGS = {"wall_s", "solve_s", "cpu_s", "max_window_s"}


def _same(a: Any, b: Any, where: str = "") -> None:
    """Equal to the rounding (timings aside)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            if k not in TIMINGS:
                _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), where
    else:
        assert a == b, where


def _whole(cfg: SiteConfig, path: Path, tmp: Path, **kw: Any) -> tuple[dict[str, Any], str]:
    """The figures and schedule of the whole trace in memory (the functions `hearth bound`
    called before it streamed)."""
    tr = read_trace(path, cfg)
    res = ceiling(cfg, tr, jobs=1, **kw)
    summary = res.summary()
    summary["loose_bound_value"] = round(perfect_foresight(cfg, tr).value, 2)
    write_schedule(res, tr, tmp / "whole.csv")
    return json.loads(json.dumps(summary)), (tmp / "whole.csv").read_text()


def _streamed(site: Path, path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch,
              *args: str) -> tuple[dict[str, Any], str]:
    """`hearth bound` from the command line, the trace in small chunks, 2 jobs."""
    monkeypatch.setattr(reader, "iter_trace",
                        lambda p, cfg: iter_trace(p, cfg, chunk_rows=97))
    out, sched = tmp / "s.json", tmp / "streamed.csv"
    assert main(["bound", "--config", str(site), "--trace", str(path), "--jobs", "2",
                 "--summary", str(out), "--schedule", str(sched), *args]) == 0
    return json.loads(out.read_text()), sched.read_text()


def test_streamed_bound_equals_the_whole_trace_with_battery_and_tank(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """house-10kwp: the surplus after the battery carries its SoC across chunks, the
    windows are cut at the solar midnight between the two days, and the loose bound is
    one LP over the whole horizon."""
    cfg = simkit.site()
    path = simkit.spring_days(2, tmp_path / "two.csv")
    whole, whole_sched = _whole(cfg, path, tmp_path, time_limit_s=10.0)
    got, sched = _streamed(simkit.HOUSE, path, tmp_path, monkeypatch, "--time-limit", "10")
    assert whole["capture_ceiling"]["windows"] == 13  # 6 + 7: one cut between the days
    assert whole["capture_ceiling"]["optimal_windows"] == 13  # no time limit in the figures
    _same(whole, got)
    assert sched == whole_sched and len(sched.splitlines()) == 1 + 2 * 1440


def test_streamed_bound_equals_the_whole_trace_with_both_objectives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """surplus-10kwp (value ceiling too; the loose bound in blocks, made small here)."""
    monkeypatch.setattr(bound_mod, "LOOSE_BLOCK_ROWS", 50)
    cfg = simkit.site(SURPLUS_SITE)
    path = simkit.spring_days(1, tmp_path / "morning.csv", slice(7 * 60, 9 * 60))
    whole, whole_sched = _whole(cfg, path, tmp_path, window_steps=30, time_limit_s=20.0)
    got, sched = _streamed(SURPLUS_SITE, path, tmp_path, monkeypatch, "--window-steps", "30",
                           "--time-limit", "20")
    for key in ("capture_ceiling", "value_ceiling"):
        assert whole[key]["optimal_windows"] == whole[key]["windows"] == 4
    _same(whole, got)
    assert sched == whole_sched and sched.startswith("time,capture_s19_w")
    assert "value_s19_w" in sched.splitlines()[0]


def _old_window_starts(time_s: np.ndarray, dt: float, longitude_deg: float,
                       window_steps: int | None) -> list[int]:
    """`window_starts` as it was on whole arrays (before the cutter): the oracle."""
    n = len(time_s)
    if window_steps is not None:
        return list(range(0, n, window_steps))
    solar = (time_s + longitude_deg / 360.0 * 86_400.0) % 86_400.0
    cuts = [int(i) for i in np.flatnonzero(solar < dt) if i > 0]
    day = round(86_400.0 / dt)
    cuts = [c for c in cuts if c >= day // 4 and n - c >= day // 4]
    starts = [0, *cuts]
    out: list[int] = []
    for a, b in zip(starts, [*starts[1:], n], strict=True):
        parts = max(1, math.ceil((b - a) / MAX_WINDOW_STEPS))
        out += [a + (b - a) * p // parts for p in range(parts)]
    return out


@pytest.mark.parametrize("dt", [60.0, 900.0, 10.0])
def test_the_cutter_cuts_where_the_whole_trace_was_cut(dt: float) -> None:
    rng = np.random.default_rng(int(dt))
    day = round(86_400 / dt)
    for _ in range(40):
        n = int(rng.integers(2, 4 * day))
        t0 = 1_700_000_000.0 + float(rng.integers(0, 86_400 // int(dt))) * dt
        time_s = t0 + np.arange(n) * dt
        lon = float(rng.uniform(-180, 180))
        steps = None if rng.random() < 0.7 else int(rng.integers(1, 400))
        expected = _old_window_starts(time_s, dt, lon, steps)
        cutter = WindowCutter(lon, dt, steps)
        got: list[tuple[int, int]] = []
        at = 0
        while at < n:  # chunks of random sizes
            k = int(rng.integers(1, day))
            got += cutter.feed(time_s[at:at + k])
            at += k
        got += cutter.close()
        assert [a for a, _ in got] == expected, (n, t0, lon, steps)
        assert [b for _, b in got] == [*expected[1:], n]
        tr = simkit.trace(np.zeros(n), 0.0, step_s=dt, start_s=t0)
        assert window_starts(tr, lon, steps) == expected


def test_loose_bound_in_blocks_equals_the_one_lp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without battery and tank every step's LP is its own: blocks give the same value."""
    cfg = simkit.site(SURPLUS_SITE)
    whole = perfect_foresight(cfg, read_trace(DAY, cfg)).value
    monkeypatch.setattr(bound_mod, "LOOSE_BLOCK_ROWS", 100)
    got = loose_bound(cfg, iter_trace(DAY, cfg, chunk_rows=37))
    assert got == pytest.approx(whole, rel=1e-9, abs=1e-9)


def test_loose_bound_of_a_long_battery_trace_is_refused_before_solving(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bound_mod, "LOOSE_WHOLE_MAX_ROWS", 1000)
    cfg = simkit.site()
    with pytest.raises(LooseBoundTooLong, match="more than 1,000 rows"):
        loose_bound(cfg, iter_trace(DAY, cfg, chunk_rows=300))
    assert main(["bound", "--config", str(simkit.HOUSE), "--trace", str(DAY), "--jobs", "1",
                 "--window-steps", "240", "--time-limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "note: loose bound skipped" in out and "--no-loose skips it" in out
    assert "loose bound (relaxed LP" not in out


def test_a_bad_row_fails_before_any_solve_and_writes_no_schedule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = simkit.spring_days(1, tmp_path / "bad.csv")
    lines = path.read_text().splitlines()
    lines[1400] = lines[1400].replace(",", ",x", 1)  # a bad pv cell on line 1401
    path.write_text("\n".join(lines) + "\n")

    def no_solve(*_: Any) -> None:
        raise AssertionError("a window was solved for a bad trace")

    monkeypatch.setattr("controller.plan.ceiling.solve_window", no_solve)
    sched = tmp_path / "sched.csv"
    assert main(["bound", "--config", str(simkit.HOUSE), "--trace", str(path),
                 "--schedule", str(sched)]) == 2
    assert "row 1401, column pv_w" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [path]


def test_bad_arguments_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bound", "--config", str(simkit.HOUSE), "--trace", str(DAY),
                 "--window-steps", "0", "--jobs", "0", "--time-limit", "-1",
                 "--restart-cost", "-2"]) == 2
    err = capsys.readouterr().err
    for name in ("--window-steps", "--jobs", "--time-limit", "--restart-cost"):
        assert name in err


def test_a_failed_window_leaves_no_half_schedule(tmp_path: Path) -> None:
    cfg = simkit.site()
    chunks = list(iter_trace(DAY, cfg, chunk_rows=500))

    def then_fail() -> Any:
        yield from chunks[:2]
        raise InputError("t.csv", [])

    sched = tmp_path / "sched.csv"
    with pytest.raises(InputError):
        ceiling(cfg, then_fail(), jobs=1, window_steps=100, schedule_path=sched)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ memory


def _small_site(tmp: Path) -> Path:
    """surplus-10kwp with one plain miner (no boot, no minimum times): windows solve in
    milliseconds, so the test measures the streaming, not the solver."""
    d = simkit.site_dict(SURPLUS_SITE)
    m = d["miners"][0]
    m |= {"restart_s": 0.0, "stop_s": 0.0, "min_on_s": 0.0, "min_off_s": 0.0,
          "idle_power_w": 0.0}
    d["miners"] = [m]
    p = tmp / "site.toml"
    p.write_bytes(tomli_w.dumps(d).encode())
    return p


@pytest.mark.slow  # tracemalloc makes every allocation slow
def test_bound_memory_is_flat_in_the_trace_length(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`hearth bound` (both ceilings, the loose bound, the schedule) of a trace 4x longer
    peaks within 10 % of the shorter one's allocation. Buffers are made small (a day is
    several read blocks, chunks, windows and loose-bound blocks) so that both runs are in
    the steady state the real sizes reach on long traces."""
    monkeypatch.setattr(reader, "_READ_BYTES", 16_384)
    monkeypatch.setattr(reader, "iter_trace",
                        lambda p, cfg: iter_trace(p, cfg, chunk_rows=256))
    monkeypatch.setattr(bound_mod, "LOOSE_BLOCK_ROWS", 120)
    site = _small_site(tmp_path)
    short = simkit.spring_days(1, tmp_path / "short.csv")
    long = simkit.spring_days(4, tmp_path / "long.csv")
    args = ["bound", "--config", str(site), "--jobs", "1", "--window-steps", "60",
            "--time-limit", "1", "--schedule", str(tmp_path / "sched.csv")]

    def peak(path: Path) -> int:
        gc.collect()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert main([*args, "--trace", str(path)]) == 0
        return tracemalloc.get_traced_memory()[1] - base

    assert main([*args, "--trace", str(short)]) == 0  # imports, caches
    tracemalloc.start()
    try:
        p_short, p_long = peak(short), peak(long)
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out
    assert "1440 steps" in out and "5760 steps" in out and "loose bound" in out
    assert len((tmp_path / "sched.csv").read_text().splitlines()) == 1 + 5760
    assert p_long <= 1.10 * p_short, (p_short, p_long)


def test_compare_without_a_plan_streams_the_same_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hearth compare --plan none` reads the trace in chunks for every run, the loose
    bound and the ceiling: the same figures as the trace in one piece."""
    path = simkit.spring_days(2, tmp_path / "two.csv")
    args = ["compare", "--config", str(simkit.HOUSE), "--trace", str(path),
            "--controllers", "threshold", "--plan", "none", "--summary"]

    def figures(chunks: Any) -> list[dict[str, Any]]:
        monkeypatch.setattr(reader, "iter_trace", chunks)
        out = tmp_path / "c.json"
        assert main([*args, str(out)]) == 0
        return list(json.loads(out.read_text()))

    tr = read_trace(path, simkit.site())
    whole = figures(lambda p, cfg: [tr])
    streamed = figures(lambda p, cfg: iter_trace(p, cfg, chunk_rows=97))
    assert [s["controller"] for s in whole] == ["threshold", "loose bound", "ceiling"]
    for a, b in zip(whole, streamed, strict=True):
        _same({k: v for k, v in a.items() if k != "quality"},
              {k: v for k, v in b.items() if k != "quality"})
        if "quality" in a:
            _same(a["quality"], b["quality"])
