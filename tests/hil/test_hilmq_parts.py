"""The MQTT side of the HIL rig, part by part: the broker's accounts and ACL (a real
Mosquitto), the emulated DS18B20 bus read by the firmware's own sensor code, the scenario
keys, and the checks on synthetic timelines (each must be able to fail)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.errors import InputError
from hil.rig.broker import AGGREGATOR_USER, CONTROLLER_USER, OBSERVER_USER, RigBroker
from hil.rig.mqtt_checks import (
    check_dr_deadline,
    check_heartbeat_cutoff,
    check_mqtt_reconnect,
    check_tank_stale_to_zero,
)
from hil.rig.mqtt_rig import Message, MqttRecord
from hil.rig.runner import Row, RunRecord
from hil.rig.satellite import ROMS, EmulatedBus, EmulatedSensor, _hsat
from hil.rig.scenario import ROOT, Fault, load_scenario, parse_scenario, site_dict_for
from hil.site import SiteState

SCEN = ROOT / "hil" / "scenarios"


# -- the broker ------------------------------------------------------------------------------

class _Pub:
    """A paho MQTT v5 client that reports each QoS 1 publish's PUBACK reason."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=f"t-{user}", protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password)
        self.acks: dict[int, Any] = {}
        self.done = threading.Event()
        self.connack: Any = None
        self.c.on_connect = lambda c, u, f, rc, p=None: (setattr(self, "connack", rc),
                                                          self.done.set())
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.done.wait(5)

    def publish(self, topic: str) -> Any:
        info = self.c.publish(topic, b"{}", qos=1)
        info.wait_for_publish(5)
        return self.acks[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.slow
def test_rig_broker_accounts_follow_the_shipped_acl(tmp_path: Path) -> None:
    broker = RigBroker(tmp_path, "site1", "tank1")
    broker.start()
    try:
        port = broker.port
        pw = broker.passwords
        ctl = _Pub(port, CONTROLLER_USER, pw[CONTROLLER_USER])
        assert not ctl.connack.is_failure
        assert not ctl.publish("hearth/site1/state/power").is_failure
        agg = _Pub(port, AGGREGATOR_USER, pw[AGGREGATOR_USER])
        assert not agg.publish("hearth/site1/cmd/dr_cap").is_failure
        assert agg.publish("hearth/site1/cmd/mode").is_failure  # DR only: not authorised
        sat = _Pub(port, "sat-tank1", pw["sat-tank1"])
        assert not sat.publish("hearth/site1/sat/tank1/telemetry").is_failure
        assert sat.publish("hearth/site1/sat/tank1/cmd/relays").is_failure
        assert sat.publish("hearth/site1/state/power").is_failure
        obs = _Pub(port, OBSERVER_USER, pw[OBSERVER_USER])
        assert obs.publish("hearth/site1/cmd/dr_cap").is_failure  # read-only
        wrong = _Pub(port, CONTROLLER_USER, "not-the-password")
        assert wrong.connack.is_failure
        for c in (ctl, agg, sat, obs, wrong):
            c.close()
        # A restart keeps the port; the shipped ACL is what the broker enforces.
        broker.stop()
        assert not broker.running
        broker.start()
        assert broker.port == port and broker.starts == 2
        assert "user installer" in broker.acl_file.read_text()
    finally:
        broker.stop()


# -- the emulated DS18B20s, read by the firmware's own code ---------------------------------

class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.now_ms = 0

    def info(self, m: str) -> None:
        self.lines.append(m)

    warn = error = info


@pytest.mark.parametrize(("mode", "code"), [("crc", "crc"), ("power_on", "power_on_85"),
                                            ("absent", "disconnected")])
def test_emulated_sensor_faults_are_what_the_firmware_classifies(mode: str, code: str) -> None:
    sensors_mod = _hsat("sensors")
    tank = {"c": 61.3}
    sens = {r: EmulatedSensor(bytes.fromhex(rom), lambda: tank["c"]) for r, rom in ROMS.items()}
    ts = sensors_mod.TankSensors(EmulatedBus(list(sens.values())),
                                 {r: bytes.fromhex(rom) for r, rom in ROMS.items()}, _Log(),
                                 1000, 750, 3750)
    now = 0
    for _ in range(40):  # two conversion cycles: good values
        ts.poll(now)
        now += 50
    assert ts.value("top", now) == pytest.approx(61.3, abs=1 / 16)
    tank["c"] = 64.0
    sens["top"].mode = mode
    for _ in range(200):
        ts.poll(now)
        now += 50
    st = ts.status(now)["top"]
    assert st["fault"] == code
    assert "temp_c" not in st  # the last good value aged out (3 sample periods)
    assert ts.value("middle", now) == pytest.approx(64.0, abs=1 / 16)  # the others still read
    sens["top"].mode = "ok"
    for _ in range(40):
        ts.poll(now)
        now += 50
    assert ts.value("top", now) == pytest.approx(64.0, abs=1 / 16)


def test_a_bus_without_any_sensor_has_no_presence_pulse() -> None:
    sensors_mod = _hsat("sensors")
    sens = [EmulatedSensor(bytes.fromhex(ROMS["top"]), lambda: 50.0)]
    sens[0].mode = "absent"
    ts = sensors_mod.TankSensors(EmulatedBus(sens), {"top": sens[0].rom}, _Log(), 1000, 750,
                                 3750)
    ts.poll(0)
    assert ts.status(0)["top"]["fault"] == "no_presence"


# -- scenario keys ---------------------------------------------------------------------------

def test_mqtt_scenario_keys_are_checked() -> None:
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 30, "mqtt": False, "satellite": {"id": "t"},
                        "faults": [{"kind": "broker_restart", "at_s": 1, "duration_s": 1},
                                   {"kind": "dr_cap", "at_s": 1, "duration_s": 1}]}, "test")
    text = str(e.value)
    assert "satellite: needs mqtt = true" in text
    assert "faults[0].kind: broker_restart needs mqtt = true" in text
    assert "faults[1].kind: dr_cap needs mqtt = true" in text
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 30, "drop_sections": ["tank"],
                        "satellite": {"id": "t"},
                        "faults": [{"kind": "tank_sensor_crc", "at_s": 1, "duration_s": 1}]},
                       "test")
    assert "satellite: needs the site's [tank]" in str(e.value)
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 30, "mqtt": "yes",
                        "faults": [{"kind": "tank_sensor_85", "at_s": 1, "duration_s": 1}]},
                       "test")
    assert "mqtt: must be true or false" in str(e.value)
    assert "tank_sensor_85 needs a [satellite] table" in str(e.value)
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 30, "satellite": {"colour": "red"}}, "test")
    assert "satellite.colour" in str(e.value)
    with pytest.raises(InputError) as e:
        parse_scenario({"name": "x", "duration_s": 30,
                        "satellite": {"heartbeat_timeout_s": 2, "heartbeat_interval_s": 1}},
                       "test")
    assert "heartbeat_interval_s (1.0) must be at most a third" in str(e.value)
    s = load_scenario(SCEN / "meter-silent.toml")
    assert s.mqtt and s.satellite is None  # every scenario runs with the broker by default


# -- checks on synthetic timelines -----------------------------------------------------------

def _row(t: float, miners: dict[str, float], paused: dict[str, bool] | None = None,
         faults: tuple[str, ...] = ()) -> Row:
    return Row(t, SiteState(t, 0.0, 0.0, -50.0, 0.0, float("nan"), 50.0, dict(miners)),
               paused or {n: False for n in miners}, dict(miners), faults, True)


def _rec(name: str, rows: list[Row], faults: list[tuple[Fault, float, float]],
         mq: MqttRecord) -> RunRecord:
    s = load_scenario(SCEN / f"{name}.toml")
    ctl = {"control": {"stale_timeout_s": 3}, "satellite": s.satellite or {},
           "mqtt": {"reconnect_max_s": 2, "telemetry_interval_s": 0.5}}
    rec = RunRecord(s, site_dict_for(s), ctl, rows, faults)
    rec.mqtt = mq
    mq.controller_mqtt = ctl["mqtt"]
    return rec


def test_dr_deadline_fails_when_the_cap_is_met_late_or_broken_again() -> None:
    f = Fault("dr_cap", 10.0, 10.0, value=700.0)
    mq = MqttRecord("demo-house")
    mq.messages.append(Message(10.05, "hearth/demo-house/cmd/dr_cap/result",
                               json.dumps({"ok": True}).encode(), False))
    late = [_row(9.8, {"s9": 1100.0}), _row(10.0, {"s9": 1100.0}), _row(13.5, {"s9": 650.0}),
            _row(19.9, {"s9": 650.0})]
    c = check_dr_deadline(_rec("dr-mid-ramp", late, [(f, 10.0, 20.0)], mq))
    assert not c.passed and "met only after 3.50s" in c.violations[0]
    again = [_row(10.0, {"s9": 1100.0}), _row(11.0, {"s9": 600.0}), _row(15.0, {"s9": 900.0})]
    c = check_dr_deadline(_rec("dr-mid-ramp", again, [(f, 10.0, 20.0)], mq))
    assert not c.passed and "exceeded again at t=15.0s" in c.violations[0]
    ok = [_row(10.0, {"s9": 1100.0}), _row(11.2, {"s9": 0.0}), _row(19.0, {"s9": 600.0})]
    c = check_dr_deadline(_rec("dr-mid-ramp", ok, [(f, 10.0, 20.0)], mq))
    assert c.passed, c.violations
    assert c.figures["worst_to_cap_s"] == pytest.approx(1.2)
    nothing = [_row(10.0, {"s9": 300.0})]  # nothing to shed: the scenario proves nothing
    assert not check_dr_deadline(_rec("dr-mid-ramp", nothing, [(f, 10.0, 20.0)], mq)).passed


def test_heartbeat_cutoff_needs_the_contactor_to_open_in_time_and_close_again() -> None:
    f = Fault("controller_freeze", 10.0, 7.0)
    mq = MqttRecord("demo-house", "tank1")
    mq.satellite_settings = {"heartbeat_timeout_s": 3.0}
    rows = [_row(10.0, {"s9": 1000.0}), _row(13.0, {"s9": 0.0}), _row(16.0, {"s9": 0.0})]
    mq.contactor_changes = [(13.0, False), (17.5, True)]
    c = check_heartbeat_cutoff(_rec("satellite-heartbeat-loss", rows, [(f, 10.0, 17.0)], mq))
    assert c.passed, c.violations
    mq.contactor_changes = [(13.0, False)]  # never closed again
    c = check_heartbeat_cutoff(_rec("satellite-heartbeat-loss", rows, [(f, 10.0, 17.0)], mq))
    assert not c.passed and "never closed again" in c.violations[0]
    slow = [_row(10.0, {"s9": 1000.0}), _row(15.5, {"s9": 0.0})]
    mq.contactor_changes = [(15.4, False), (17.5, True)]
    c = check_heartbeat_cutoff(_rec("satellite-heartbeat-loss", slow, [(f, 10.0, 17.0)], mq))
    assert not c.passed and "only after 5.5s" in c.violations[0]


def test_tank_stale_to_zero_wants_the_controller_not_the_board() -> None:
    f = Fault("tank_sensor_crc", 10.0, 10.0)
    mq = MqttRecord("demo-house", "tank1")
    mq.messages.append(Message(13.0, "hearth/demo-house/sat/tank1/telemetry", json.dumps(
        {"sensors": {"top": {"fault": "crc", "reason": "CRC error"}}}).encode(), False))
    # The board's contactor cut the S9 at 17.7 s but the controller never paused it.
    rows = [_row(10.0, {"s9": 1000.0}), _row(17.7, {"s9": 0.0}, {"s9": False})]
    mq.contactor_changes = [(17.7, False)]
    c = check_tank_stale_to_zero(_rec("tank-sensor-failure", rows, [(f, 10.0, 20.0)], mq))
    assert not c.passed and "never paused" in c.violations[0]
    assert c.figures["board_cutoff_s"] == pytest.approx(7.7)
    rows = [_row(10.0, {"s9": 1000.0}), _row(14.0, {"s9": 0.0}, {"s9": True})]
    c = check_tank_stale_to_zero(_rec("tank-sensor-failure", rows, [(f, 10.0, 20.0)], mq))
    assert c.passed, c.violations



def test_tank_cutoff_checks_fail_a_window_that_cannot_show_a_cutoff() -> None:
    """A fault shorter than the deadline, or one that starts while the tank miners are off,
    proves nothing: both checks fail it instead of passing."""
    mq = MqttRecord("demo-house", "tank1")
    mq.satellite_settings = {"heartbeat_timeout_s": 3.0}
    idle = [_row(10.0, {"s9": 0.0}), _row(30.0, {"s9": 0.0})]
    freeze, crc = Fault("controller_freeze", 10.0, 20.0), Fault("tank_sensor_crc", 10.0, 20.0)
    c = check_heartbeat_cutoff(_rec("satellite-heartbeat-loss", idle, [(freeze, 10.0, 30.0)], mq))
    assert not c.passed and "not running: nothing to stop" in c.violations[0]
    c = check_tank_stale_to_zero(_rec("tank-sensor-failure", idle, [(crc, 10.0, 30.0)], mq))
    assert not c.passed and "not running: nothing to stop" in c.violations[0]
    busy = [_row(10.0, {"s9": 1000.0}), _row(11.0, {"s9": 0.0})]
    c = check_heartbeat_cutoff(_rec("satellite-heartbeat-loss", busy, [(freeze, 10.0, 11.0)], mq))
    assert not c.passed and "shorter than the deadline" in c.violations[0]

def test_mqtt_reconnect_wants_state_again_and_retained() -> None:
    f = Fault("broker_restart", 10.0, 10.0)
    mq = MqttRecord("demo-house")
    t = mq.topic
    mq.messages += [Message(21.0, t("availability"), b"online", False),
                    Message(21.2, t("state/power"), b"{}", False)]
    mq.probes.append((24.0, {t("availability"): b"online", t("state/power"): b"{}",
                             t("state/control"): b"{}"}))
    rec = _rec("broker-restart", [], [(f, 10.0, 20.0)], mq)
    c = check_mqtt_reconnect(rec)
    assert c.passed, c.violations
    mq.probes[0] = (24.0, {t("availability"): b"offline"})
    mq.messages[1] = Message(27.0, t("state/power"), b"{}", False)
    c = check_mqtt_reconnect(rec)
    assert not c.passed
    text = "\n".join(c.violations)
    assert "a state topic only after 7.0s" in text
    assert "retained availability is b'offline'" in text
    assert "state/power not retained" in text
