"""`hearth sim` and `hearth compare` end to end: files written, contract kept, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import simkit

from controller.cli import main
from controller.sim.runner import TIMELINE_COLUMNS

DAY = simkit.ROOT / "hil" / "traces" / "house-spring-day.csv"
SUMMARY_KEYS = {
    "pv_kwh", "surplus_kwh", "miner_kwh", "miner_from_pv_kwh", "miner_from_battery_kwh",
    "miner_from_grid_kwh", "export_kwh", "import_kwh", "heat_to_tank_kwh", "backup_heat_kwh",
    "tank_minutes_above_max", "tank_minutes_below_min", "miner_starts",
    "import_limit_violations", "sats_earned", "surplus_capture",
}


@pytest.mark.parametrize("controller", ["hearth", "threshold"])
def test_sim_writes_timeline_and_summary_per_contract(tmp_path: Path, controller: str) -> None:
    tl, sm = tmp_path / "t.csv", tmp_path / "s.json"
    rc = main(["sim", "--config", str(simkit.HOUSE), "--trace", str(DAY), "--timeline", str(tl),
               "--summary", str(sm), "--controller", controller])
    assert rc == 0
    with tl.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == TIMELINE_COLUMNS
    assert len(rows) == 1440
    assert rows[0]["time"] == "2015-04-21T00:00:00Z" and rows[-1]["time"].endswith("23:59:00Z")
    for r in rows:
        pv, grid = float(r["pv_w"]), float(r["grid_w"])
        rhs = float(r["load_w"]) + float(r["miner_w"]) + float(r["battery_w"])
        assert abs(pv + grid - rhs) < 0.3  # three columns rounded to 0.1 W
    s = json.loads(sm.read_text())
    assert set(s) >= SUMMARY_KEYS
    assert s["controller"] == controller
    assert s["import_limit_violations"] == 0
    assert isinstance(s["sats_earned"], int) and s["sats_earned"] > 0
    assert s["miner_kwh"] > 5  # a sunny day: the miners did run


def test_sim_summary_to_stdout_and_compare(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--config", str(simkit.HOUSE), "--trace", str(DAY)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 1440
    assert main(["compare", "--config", str(simkit.HOUSE), "--trace", str(DAY)]) == 0
    out = capsys.readouterr().out
    assert "hearth" in out and "threshold" in out and "surplus capture" in out
    head = next(line for line in out.splitlines() if "threshold" in line).split()
    assert head[:3] == ["hearth", "evcc", "threshold"]  # one run, side by side
    for row in ("capture of physical limit", "caused import", "min on/off violations",
                "starts/day, worst miner"):
        assert row in out
    assert main(["compare", "--config", str(simkit.HOUSE), "--trace", str(DAY),
                 "--controllers", "hearth,evcc-ish"]) == 2
    err = capsys.readouterr().err
    assert "--controllers: unknown controller(s) ['evcc-ish']" in err


def _bad_trace(tmp_path: Path, edit: str) -> Path:
    lines = DAY.read_text().splitlines()
    if edit == "missing column":
        lines = [",".join(x.split(",")[:1] + x.split(",")[2:]) for x in lines]  # drop pv_w
    elif edit == "non-monotonic":
        lines[10], lines[11] = lines[11], lines[10]
    elif edit == "negative pv":
        cells = lines[700].split(",")
        cells[1] = "-5"
        lines[700] = ",".join(cells)
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(("edit", "expect"), [
    ("missing column", "header"),
    ("non-monotonic", "row 11"),
    ("negative pv", "row 701, column pv_w"),
])
def test_bad_trace_exits_2_naming_file_row_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, expect: str
) -> None:
    bad = _bad_trace(tmp_path, edit)
    assert main(["sim", "--config", str(simkit.HOUSE), "--trace", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and expect in err, err


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text(simkit.HOUSE.read_text().replace("min_power_w = 600", "min_power_w = -1"))
    assert main(["sim", "--config", str(bad), "--trace", str(DAY)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: miners[0].min_power_w: Input should be greater than 0" in err
