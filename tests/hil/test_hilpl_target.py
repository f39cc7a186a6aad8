"""The real-hardware runner (`HIL_TARGET`).

Without HIL_TARGET the real-hardware test is *skipped*, with the reason, never passed.
The runner itself is proven without hardware: the test starts an emulated site (Modbus TCP
GX, Braiins OS and AxeOS HTTP miners), writes a site file with its addresses as a bench
would have, and runs the rig with HIL_TARGET pointing at it: no emulator is started by the
rig, `hearth run` runs against the site, the recorder polls it read-only and the checks
judge the result; scenarios whose faults need the emulator are reported skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tomli_w

from hil.rig.cli import main as rig_main
from hil.rig.runner import _trace
from hil.rig.scenario import ROOT, load_scenario, site_dict_for
from hil.rig.target import needs_emulator
from hil.site import EmulatedSite, SiteState

SCEN = ROOT / "hil" / "scenarios"


def test_real_hardware_target(tmp_path: Path) -> None:
    """All scenarios against the site HIL_TARGET names (a bench with real devices)."""
    target = os.environ.get("HIL_TARGET")
    if not target:
        pytest.skip("HIL_TARGET not set: no real site config, real-hardware scenarios not run")
    rc = rig_main(["run", "--out", str(tmp_path)])
    docs = json.loads((tmp_path / "summary.json").read_text())
    ran = [d for d in docs if d["passed"] is not None]
    assert ran, "no scenario could run on this target"
    assert rc == 0, json.dumps([d for d in docs if d["passed"] is False], indent=1)


def test_which_scenarios_need_the_emulator() -> None:
    assert needs_emulator(load_scenario(SCEN / "kill-restart.toml")) is None
    assert needs_emulator(load_scenario(SCEN / "clock-jump.toml")) is None
    assert needs_emulator(load_scenario(SCEN / "clear-day-short.toml")) is None
    reason = needs_emulator(load_scenario(SCEN / "meter-silent.toml"))
    assert reason is not None and "meter_silent" in reason
    reason = needs_emulator(load_scenario(SCEN / "rtu-meter-noise.toml"))
    assert reason is not None and "rtu_noise" in reason


@pytest.mark.rig("kill-restart")
async def test_runner_end_to_end_against_an_emulated_real_site(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_scenario(SCEN / "kill-restart.toml")
    plant_path = tmp_path / "plant.toml"
    plant_path.write_bytes(tomli_w.dumps(site_dict_for(s)).encode())
    site = EmulatedSite(plant_path, _trace(s, plant_path), step_s=0.2)
    plant_miner_wh = 0.0
    last: list[float] = []

    def on_step(st: SiteState) -> None:  # what the plant really did, to judge the recorder
        nonlocal plant_miner_wh
        if last:
            plant_miner_wh += sum(st.miner_w.values()) * (st.at_s - last[0]) / 3600.0
        last[:] = [st.at_s]

    site.on_step.append(on_step)
    await site.start()
    try:
        bench = site.controller_site(tmp_path / "bench-data", tick_s=0.5,
                                     start_delay_max_s=0.0)
        bench["devices"][0]["period_s"] = 0.25
        bench["tariffs"] = {**bench["tariffs"], "export_price_per_kwh": "0.00"}
        target = tmp_path / "bench-site.toml"
        target.write_bytes(tomli_w.dumps(bench).encode())
        monkeypatch.setenv("HIL_TARGET", str(target))
        monkeypatch.delenv("HIL_RECORD", raising=False)
        out = tmp_path / "out"
        rc = await asyncio.to_thread(rig_main, [
            "run", str(SCEN / "kill-restart.toml"), str(SCEN / "meter-silent.toml"),
            "--out", str(out)])
    finally:
        site.on_step.remove(on_step)
        await site.stop()
    docs = {d["scenario"]: d for d in json.loads((out / "summary.json").read_text())}
    kill = docs["kill-restart"]
    assert rc == 0, json.dumps(kill, indent=1)
    assert kill["passed"] is True
    st = {c["name"]: c["status"] for c in kill["checks"]}
    for name in ("import_limit", "min_on_off", "recovery", "ledger"):
        assert st[name] == "passed", name
    figs = kill["figures"]
    assert figs["controller_restarts"] == 1
    assert figs["timeline_rows"] > 100  # polled every 0.25 s for 40 s
    # The recorder's view (read-only over the miners' APIs) matches what the plant did.
    assert plant_miner_wh > 2.0
    assert figs["miner_energy_wh"] == pytest.approx(plant_miner_wh, rel=0.25)
    # The ledger is this run's (the target's data dir was replaced), with the kill's gap.
    assert 15 < figs["ledger.covered_s"] < 38
    assert (out / "kill-restart" / "data" / "ledger.sqlite3").exists()
    assert not (tmp_path / "bench-data").exists()
    # meter-silent needs the emulator: reported skipped with the reason, not passed.
    silent = docs["meter-silent"]
    assert silent["passed"] is None
    assert "needs emulator" in silent["skipped"] and "meter_silent" in silent["skipped"]
    junit = ET.parse(out / "meter-silent" / "junit.xml").getroot()
    assert [tc.find("skipped") is not None for tc in junit.iter("testcase")] == [True]
    # The combined JUnit file lists both scenarios: one passed suite, one skipped.
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot()}
    assert set(suites) == {"hil.kill-restart", "hil.meter-silent"}
    assert suites["hil.kill-restart"].get("failures") == "0"
    assert suites["hil.meter-silent"].get("skipped") == "1"
    timeline = (out / "kill-restart" / "timeline.csv").read_text().splitlines()
    assert timeline[0].startswith("t_s,plant_s,pv_w")


@pytest.mark.rig("clear-day-short")
def test_hil_cli_runs_a_scenario_into_a_relative_out_dir(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`make hil` passes `--out out/hil`: the site files the rig writes for `hearth run`
    need absolute paths, so the CLI resolves it (it once refused every scenario)."""
    monkeypatch.chdir(tmp_path)
    rc = rig_main(["run", str(SCEN / "clear-day-short.toml"), "--out", "rel/hil"])
    assert rc == 0
    summary = json.loads((tmp_path / "rel" / "hil" / "summary.json").read_text())
    assert [d["scenario"] for d in summary] == ["clear-day-short"]
    assert summary[0]["passed"] is True
    assert (tmp_path / "rel" / "hil" / "junit.xml").exists()
