"""The HIL rig end to end: the unmodified `hearth run` process against the emulated site.

Real sockets only: the GX Modbus TCP emulator, the Braiins OS / AxeOS HTTP emulators, the
controller as a subprocess. Two scenarios run side by side per test to keep the suite
short. The self-test runs the same meter-loss scenario against a controller whose
stale-meter guard is removed (hil/rig/broken.py) and requires the rig to fail it.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import hilkit
import pytest

from controller.errors import InputError
from hil.rig.checks import check_import_limit, check_min_on_off
from hil.rig.runner import Row, RunRecord
from hil.rig.scenario import Fault, load_scenario, parse_scenario, site_dict_for
from hil.site import SiteState


@pytest.mark.rig("meter-silent")
async def test_meter_loss_passes_and_a_controller_without_stale_guard_fails(
        tmp_path: Path) -> None:
    good, bad = await asyncio.gather(hilkit.run("meter-silent", tmp_path),
                                     hilkit.run("meter-silent", tmp_path, "no-stale-guard"))
    assert good["passed"], json.dumps(good, indent=1)
    st = hilkit.statuses(good)
    for name in ("import_limit", "stale_to_zero", "min_on_off", "recovery", "ledger"):
        assert st[name] == "passed", name
    assert st["tank_max"] == "skipped"  # this site has no tank: reported, not passed
    figs = good["figures"]
    assert isinstance(figs, dict)
    assert figs["stale_to_zero.worst_to_zero_s"] <= 3 + 0.5 + 1 + 1.5
    assert figs["trips"].get("stale_meter", 0) > 0
    assert figs["recovery.worst_recovery_s"] <= 10
    assert figs["controller_exit_code"] == 0
    # The broken policy keeps the S9 running blind: the rig must say so.
    assert not bad["passed"]
    assert hilkit.statuses(bad)["stale_to_zero"] == "failed"
    assert "never reached 0 W" in json.dumps(bad["checks"])
    junit = ET.parse(tmp_path / "meter-silent-no-stale-guard" / "junit.xml").getroot()
    failures = [tc.get("name") for tc in junit.iter("testcase")
                if tc.find("failure") is not None]
    assert "stale_to_zero" in failures
    skipped = [tc.get("name") for tc in junit.iter("testcase")
               if tc.find("skipped") is not None]
    # No tank here; checks of other faults (battery, MQTT, ...) are skipped too, never passed.
    assert "tank_max" in skipped and "stale_to_zero" not in skipped
    lines = (tmp_path / "meter-silent-real" / "timeline.csv").read_text().splitlines()
    assert lines[0].startswith("t_s,plant_s,pv_w")
    assert any("meter_silent" in ln for ln in lines[1:])


@pytest.mark.rig("kill-restart", "modbus-garbage")
async def test_sigkill_restart_and_garbage_frames(tmp_path: Path) -> None:
    kill, garbage = await asyncio.gather(hilkit.run("kill-restart", tmp_path),
                                         hilkit.run("modbus-garbage", tmp_path))
    assert kill["passed"], json.dumps(kill, indent=1)
    figs = kill["figures"]
    assert isinstance(figs, dict)
    assert figs["controller_restarts"] == 1
    assert figs["ledger.intervals"] >= 1
    # Down for 4 s of a 40 s run: covered time shows the gap, and nothing twice.
    assert 20 < figs["ledger.covered_s"] < 38
    assert garbage["passed"], json.dumps(garbage, indent=1)
    assert hilkit.statuses(garbage)["stale_to_zero"] == "passed"


def _row(t: float, grid_w: float, s9_w: float, paused: bool, faults: tuple[str, ...] = ()
         ) -> Row:
    return Row(t, SiteState(t, 0.0, 0.0, grid_w, 0.0, float("nan"), float("nan"),
                            {"s9": s9_w}), {"s9": paused}, {"s9": s9_w}, faults, True)


def _record(rows: list[Row]) -> RunRecord:
    s = load_scenario(hilkit.SCEN / "meter-silent.toml")
    sd = site_dict_for(s)
    sd["miners"] = [m for m in sd["miners"] if m["name"] == "s9"]
    return RunRecord(s, sd, {}, rows)


def test_checks_catch_violations_on_a_synthetic_timeline() -> None:
    # S9 resumed 1 s after pausing (min_off_s = 3) with no fault on: a violation.
    rec = _record([_row(0, -50, 900, False), _row(1, -50, 0, True), _row(2, -50, 600, False)])
    c = check_min_on_off(rec)
    assert not c.passed and "resumed after 1.0s" in c.violations[0]
    # The same pause while a fault is on is a forced stop, and 3 s later a legal resume.
    rec = _record([_row(0, -50, 900, False), _row(1, 0, 0, True, ("meter_silent",)),
                   _row(4.5, -50, 600, False)])
    assert check_min_on_off(rec).passed
    # Import above the limit while the S9 draws: a violation; the house alone: not one.
    limit = 17000.0
    assert not check_import_limit(_record([_row(0, limit + 500, 900, False)])).passed
    assert check_import_limit(_record([_row(0, limit + 500, 0, True)])).passed


def test_scenarios_parse_and_bad_ones_name_the_field() -> None:
    files = sorted(hilkit.SCEN.glob("*.toml"))
    assert len(files) >= 6
    for p in files:
        assert load_scenario(p).name == p.stem
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 10,
                        "faults": [{"kind": "meteor", "at_s": 1, "duration_s": 1},
                                   {"kind": "meter_silent", "at_s": 8, "duration_s": 5},
                                   {"kind": "miner_hang", "at_s": 1, "duration_s": 1}]},
                       "test")
    text = str(e.value)
    assert "faults[0].kind" in text and "meteor" in text
    assert "faults[1].duration_s" in text and "after the scenario" in text
    assert "faults[2].miner" in text
    f = Fault("meter_silent", 2.0, 3.0)
    assert f.end_s == 5.0

# The real-hardware test (HIL_TARGET) is in test_hilpl_target.py.


@pytest.mark.rig("cloud-transient-real", "controller-freeze")
async def test_real_cloud_transients_and_a_frozen_controller(tmp_path: Path) -> None:
    """Real 10-s PV (a cloud takes 1.1 kW over two minutes): the miners follow it down
    without importing. And `hearth run` SIGSTOPped while the
    satellite cuts its miners: the late pause that used to be followed by a resume a moment
    later (min off-time counted from the decision, not from the stop) is gone."""
    cloud, freeze = await asyncio.gather(hilkit.run("cloud-transient-real", tmp_path),
                                         hilkit.run("controller-freeze", tmp_path))
    assert cloud["passed"], json.dumps(cloud, indent=1)
    figs = cloud["figures"]
    assert isinstance(figs, dict)
    assert figs["miner_energy_wh"] > 5.0
    assert figs["import_caused_wh"] < 0.05 * figs["miner_energy_wh"]
    # The miners followed the cloud: their power in the trough is well below the start.
    rows = [ln.split(",") for ln in
            (tmp_path / "cloud-transient-real-real" / "timeline.csv").read_text().splitlines()]
    head, body = rows[0], rows[1:]
    pv, s9 = head.index("pv_w"), head.index("s9_w")
    trough = min(body, key=lambda r: float(r[pv]))
    early = [r for r in body if 8.0 < float(r[0]) < 20.0]
    assert float(trough[pv]) < 1250.0
    assert float(trough[s9]) < max(float(r[s9]) for r in early) - 300.0
    assert freeze["passed"], json.dumps(freeze, indent=1)
    assert hilkit.statuses(freeze)["min_on_off"] == "passed"
