"""The MQTT side of the HIL rig end to end: the unmodified `hearth run` with a real
Mosquitto (auth + the shipped ACL), the satellite's firmware logic on its own account, DR
caps from an aggregator account. Each real-controller run is paired with a deliberately
broken controller (hil/rig/broken_mqtt.py) run side by side, which the relevant check must
fail: a check that cannot fail proves nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import hilkit
import pytest


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps({k: doc[k] for k in ("scenario", "failed", "figures", "checks")},
                      indent=1)


@pytest.mark.rig("broker-restart")
async def test_broker_restart_control_goes_on_and_the_bridge_republishes(
        tmp_path: Path) -> None:
    good, bad = await asyncio.gather(hilkit.run("broker-restart", tmp_path),
                                     hilkit.run("broker-restart", tmp_path, "mqtt-blocks-control"))
    assert good["passed"], _dump(good)
    st = hilkit.statuses(good)
    assert st["mqtt_reconnect"] == st["control_without_mqtt"] == "passed"
    f = good["figures"]
    assert f["mqtt_reconnect.worst_state_s"] <= f["mqtt_reconnect.deadline_s"]
    assert f["control_without_mqtt.worst_write_s"] < 8.0  # answered while the broker is down
    assert f["controller_exit_code"] == 0
    lines = (tmp_path / "broker-restart-real" / "mqtt.jsonl").read_text().splitlines()
    assert any('"hearth/demo-house/state/power"' in ln for ln in lines)
    # A controller whose tick waits for the broker stops controlling: the rig says so.
    assert not bad["passed"]
    assert hilkit.statuses(bad)["control_without_mqtt"] == "failed", _dump(bad)


@pytest.mark.rig("dr-mid-ramp")
async def test_dr_cap_mid_ramp_is_met_in_time_and_ignoring_it_fails(tmp_path: Path) -> None:
    good, bad = await asyncio.gather(hilkit.run("dr-mid-ramp", tmp_path),
                                     hilkit.run("dr-mid-ramp", tmp_path, "ignore-dr-cap"))
    assert good["passed"], _dump(good)
    f = good["figures"]
    assert f["dr_deadline.worst_to_cap_s"] <= f["dr_deadline.deadline_s"]
    assert f["dr_deadline.worst_answer_s"] < 1.0  # the bridge answered the aggregator
    assert not bad["passed"]
    assert hilkit.statuses(bad)["dr_deadline"] == "failed", _dump(bad)
    assert "never met" in json.dumps(bad["checks"])


@pytest.mark.rig("satellite-heartbeat-loss", "tank-sensor-failure")
async def test_satellite_cuts_off_on_heartbeat_loss_and_tank_sensor_failure_stops_the_miner(
        tmp_path: Path) -> None:
    hb, tank, broken = await asyncio.gather(
        hilkit.run("satellite-heartbeat-loss", tmp_path),
        hilkit.run("tank-sensor-failure", tmp_path),
        hilkit.run("tank-sensor-failure", tmp_path, "ignore-tank-stale"))
    assert hb["passed"], _dump(hb)
    assert hilkit.statuses(hb)["heartbeat_cutoff"] == hilkit.statuses(hb)["tank_max"] == "passed"
    f = hb["figures"]
    assert f["heartbeat_cutoff.worst_to_zero_s"] <= f["heartbeat_cutoff.deadline_s"]
    assert f["trips"].get("heartbeat_lost", 0) >= 1  # hearth run logged the board's trip
    assert tank["passed"], _dump(tank)
    f = tank["figures"]
    assert f["tank_stale_to_zero.worst_to_zero_s"] <= f["tank_stale_to_zero.deadline_s"]
    assert f["trips"].get("stale_tank", 0) > 0
    sat_log = (tmp_path / "tank-sensor-failure-real" / "satellite" / "satellite.log")
    text = sat_log.read_text()
    assert "reading rejected (crc)" in text and "reading rejected (disconnected)" in text
    # Ignoring the stale tank keeps the S9 heating blind until the board's own cut-off.
    assert not broken["passed"]
    assert hilkit.statuses(broken)["tank_stale_to_zero"] == "failed", _dump(broken)
    assert broken["figures"].get("tank_stale_to_zero.board_cutoff_s", 0) > 0
