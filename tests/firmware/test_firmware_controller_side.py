"""The controller's side of the satellite: the payload contract against what the firmware
really publishes, settings the board accepts, readings with honest time stamps from a live
board over a real Mosquitto, refused garbage, and `satellite provision`."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import brokerkit
import fwkit
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from controller.bridge.connection import BrokerSettings
from controller.config import load_site
from controller.config.satellite import SatelliteSection
from controller.errors import InputError
from controller.satellite.cli import provision_config
from controller.satellite.link import SatelliteLink, SatelliteSource
from controller.satellite.protocol import PayloadError, parse_ack, parse_event, parse_telemetry

fwkit.use_fakes()

import fwharness  # noqa: E402
from fw_live_sat import LiveSatellite  # noqa: E402
from hsat.config import Config, check_settings  # noqa: E402


def _rig_messages(tmp_path: Path) -> fwharness.Rig:
    fwharness.ROOT = str(tmp_path)
    rig = fwharness.Rig(cfg=fwharness.config(heartbeat_timeout_s=60.0),
                        temps={"top": 61.5, "supply": 60.0, "return": 50.0})
    rig.sensor("middle").mode = "crc"
    rig.command(contactor=True)
    rig.run(2000)
    rig.pulses(3, 3000)
    rig.run(1100)
    return rig


def test_what_the_firmware_publishes_parses(tmp_path: Path) -> None:
    rig = _rig_messages(tmp_path)
    raw = rig.broker.messages(rig.base + "telemetry")[-1]
    t = parse_telemetry(raw)
    assert t.sensors["top"].temp_c == 61.5 and t.sensors["top"].age_s < 1.0
    assert t.sensors["middle"].temp_c is None and t.sensors["middle"].fault == "crc"
    assert t.contactor is True and t.pump is True and t.safe == ()
    assert t.heat_power_w is not None and t.heat_power_w > 0
    assert t.boot == 1 and t.energy_wh is not None
    event = parse_event(rig.broker.messages(rig.base + "event")[0])
    assert event.type == "notice" and event.code == "boot"
    ack = parse_ack(rig.broker.messages(rig.base + "ack")[0])
    assert ack.cmd == "relays" and ack.ok and ack.id == "c1"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"{oops", "payload: not valid JSON"),
        (b"[]", "payload: must be a JSON object"),
        (json.dumps({"v": 2}).encode(), "v: unsupported telemetry version 2"),
    ],
)
def test_bad_telemetry_is_refused_with_the_field(payload: bytes, words: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_telemetry(payload)
    assert words in str(err.value)


def test_bad_telemetry_fields_are_all_named(tmp_path: Path) -> None:
    rig = _rig_messages(tmp_path)
    data = json.loads(rig.broker.messages(rig.base + "telemetry")[-1])
    data["sensors"]["top"]["temp_c"] = 300
    data["relays"]["pump"] = "on"
    data["heat"]["energy_wh"] = -1
    with pytest.raises(PayloadError) as err:
        parse_telemetry(json.dumps(data).encode())
    text = str(err.value)
    for words in ("sensors.top.temp_c: must be a number in -55..125, got 300", "relays: must",
                  "heat.energy_wh: must be a non-negative integer"):
        assert words in text


def test_section_settings_are_accepted_by_the_board() -> None:
    section = SatelliteSection(id="tank1", heartbeat_timeout_s=20, heartbeat_interval_s=5,
                               cutoff_sensors=["top", "middle"], litres_per_pulse=0.5)
    settings = section.board_settings(tank_max_c=70.0)
    assert settings["tank_max_c"] == 72.0
    merged = check_settings(settings, Config(fwharness.config()).settings,
                            list(fwharness.ROMS))
    for key, value in settings.items():
        assert merged[key] == value


def test_section_refuses_a_heartbeat_that_would_trip_on_one_loss() -> None:
    with pytest.raises(ValidationError) as err:
        SatelliteSection(id="tank1", heartbeat_timeout_s=10, heartbeat_interval_s=5)
    assert "heartbeat_interval_s (5.0) must be at most a third" in str(err.value)


@pytest.fixture
def broker(tmp_path: Path) -> brokerkit.Broker:
    with brokerkit.Broker(tmp_path, users={"controller": "c-pw", "sat-tank1": "s-pw"}) as b:
        yield b  # type: ignore[misc]


def test_live_readings_are_time_stamped_and_garbage_is_refused(
    broker: brokerkit.Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    section = SatelliteSection(id="tank1", heartbeat_timeout_s=3, heartbeat_interval_s=0.5,
                               telemetry_period_s=0.5, tank_sensor="middle")
    settings = BrokerSettings(host=broker.host, port=broker.port, username="controller",
                              password="c-pw", client_id="hearth-demo")
    link = SatelliteLink("demo", section, settings, tank_max_c=70.0)
    source = SatelliteSource(link)
    with LiveSatellite(tmp_path / "flash", broker.host, broker.port, "sat-tank1", "s-pw",
                       temps={"middle": 57.25}) as sat:
        link.start()
        try:
            link.set_relays(True, False)
            brokerkit.wait_until(lambda: (source.readings(), sat.sat.relays.contactor)[1], 20,
                                 "contactor on via the link")
            assert sat.sat.relays.pump is False
            brokerkit.wait_until(lambda: source.readings()["tank_temp_c"] is not None, 10,
                                 "a tank reading")
            reading = source.readings()["tank_temp_c"]
            assert reading is not None and reading.value == 57.25
            assert 0 <= time.monotonic() - reading.at_s < 3.0
            assert link.sensor_readings()["top_c"].value == 50.0
            # A broken sensor: its reading keeps its old time stamp, the core sees it stale.
            sat.sensor("middle").mode = "absent"
            time.sleep(5.0)
            source.readings()
            old = link.readings()["tank_temp_c"]
            assert old is not None and time.monotonic() - old.at_s > 4.0
            # Garbage on the telemetry topic is refused with its reason, not used.
            pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
            pub.username_pw_set("controller", "c-pw")
            pub.connect(broker.host, broker.port)
            pub.loop_start()
            pub.publish("hearth/demo/sat/tank1/telemetry", b'{"v": 1, "seq": -1}', qos=1
                        ).wait_for_publish(10)
            brokerkit.wait_until(lambda: link.refused >= 1, 10, "garbage refused")
            pub.loop_stop()
            pub.disconnect()
            assert any("refused telemetry message: seq: must be a non-negative integer"
                       in r.getMessage() for r in caplog.records)
            assert link.readings()["tank_temp_c"] == old
        finally:
            link.stop()


def _prov_args(site: Path, out: Path, *sensors: str, **kw: object) -> argparse.Namespace:
    return argparse.Namespace(config=str(site), out=str(out), wifi_ssid="lab",
                              sensor=[tuple(s.split("=")) for s in sensors],
                              broker_host=kw.get("broker_host", "192.0.2.5"),
                              broker_port=None, mqtt_user=kw.get("mqtt_user", "sat-tank1"),
                              board="esp32", litres_per_pulse=0.5)


def test_provision_writes_a_config_the_board_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = fwkit.write_site(tmp_path, 1883, "pw", 'id = "tank1"\n')
    monkeypatch.setenv("HEARTH_WIFI_PASSWORD", "wifi-pw")
    monkeypatch.setenv("HEARTH_SAT_MQTT_PASSWORD", "sat-pw")
    data = provision_config(_prov_args(site, tmp_path / "config.json",
                                       "top=28:FF:64:1E:0F:00:00:34",
                                       "return=28ff641e0f000455"))
    cfg = Config(data)  # the firmware's own validation
    assert cfg.site_id == "demo" and cfg.sat_id == "tank1"
    assert cfg.mqtt_host == "192.0.2.5" and cfg.mqtt_password == "sat-pw"
    assert cfg.settings["tank_max_c"] == 72.0 and cfg.settings["litres_per_pulse"] == 0.5
    assert load_site(site).satellite is not None


def test_provision_refuses_a_mistyped_rom(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    site = fwkit.write_site(tmp_path, 1883, "pw", 'id = "tank1"\n')
    monkeypatch.setenv("HEARTH_SAT_MQTT_PASSWORD", "sat-pw")
    with pytest.raises(InputError) as err:
        provision_config(_prov_args(site, tmp_path / "c.json", "top=28ff641e0f000035",
                                    "bottom=zz"))
    text = err.value.render()
    assert "--sensor top: CRC of the ROM code does not match" in text
    assert "--sensor bottom: 'zz' is not 16 hex digits" in text
