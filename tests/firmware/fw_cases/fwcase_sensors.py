"""Sensor faults: CRC errors, disconnected sensors, shorted bus, the 85 °C power-on value."""

from fwharness import Rig, near
from hsat.ds18b20 import SensorFault, crc8, decode_scratchpad, parse_rom


def _pad(raw, config=0x7F):
    body = bytes([raw & 0xFF, (raw >> 8) & 0xFF, 0x4B, 0x46, config, 0xFF, 0x0C, 0x10])
    return body + bytes([crc8(body)])


def _fault_code(buf):
    try:
        decode_scratchpad(buf)
    except SensorFault as f:
        return f.code
    return None


def case_decode_datasheet_values():
    # Datasheet Table 1: +125 = 07D0h, +25.0625 = 0191h, -10.125 = FF5Eh, -55 = FC90h.
    assert decode_scratchpad(_pad(0x07D0))[1] == 125.0
    assert decode_scratchpad(_pad(0x0191))[1] == 25.0625
    assert decode_scratchpad(_pad(0xFF5E))[1] == -10.125
    assert decode_scratchpad(_pad(0xFC90))[1] == -55.0
    # 9-bit resolution (config 1Fh): the three low bits are undefined and dropped.
    assert decode_scratchpad(_pad(0x0197, 0x1F))[1] == 25.0


def case_decode_rejects_bad_scratchpads():
    good = _pad(0x0191)
    assert _fault_code(good) is None
    flipped = bytes([good[0] ^ 1]) + good[1:]
    assert _fault_code(flipped) == "crc"
    assert _fault_code(bytes([0xFF] * 9)) == "disconnected"
    assert _fault_code(bytes(9)) == "shorted"  # passes CRC-8, must still be refused
    assert _fault_code(good[:8]) == "short_read"
    assert _fault_code(_pad(0x0191, 0x00)) == "bad_config"
    assert _fault_code(_pad(0x0800)) == "range"  # +128 °C


def case_rom_codes_are_checked():
    assert parse_rom("28ff641e0f000034")[0] == 0x28
    assert parse_rom("28:FF:64:1E:0F:00:00:34") == parse_rom("28ff641e0f000034")
    for bad, word in (("28ff641e0f000035", "CRC"), ("10ff641e0f000034", "family"),
                      ("28ff641e0f0000", "16 hex"), ("zzff641e0f000034", "hex")):
        try:
            parse_rom(bad)
        except ValueError as err:
            assert word in str(err), (bad, str(err))
        else:
            raise AssertionError("accepted " + bad)


def case_good_readings_reach_telemetry():
    rig = Rig(temps={"top": 61.5, "middle": 55.25, "bottom": 40.0, "supply": 63.0,
                     "return": 52.5})
    rig.heartbeat()
    rig.run(2500)
    assert rig.sat.sensors.value("top", rig.now) == 61.5
    assert rig.sat.sensors.value("middle", rig.now) == 55.25
    sensors = rig.telemetry()["sensors"]
    assert sensors["bottom"]["temp_c"] == 40.0
    assert sensors["return"]["temp_c"] == 52.5
    assert 0 <= sensors["top"]["age_ms"] < 1000
    assert "fault" not in sensors["supply"]


def case_crc_error_rejected_last_good_kept_then_stale():
    rig = Rig(temps={"top": 60.0})
    rig.run(2000)
    assert rig.sat.sensors.value("top", rig.now) == 60.0
    rig.set_temp("top", 70.0)
    rig.sensor("top").mode = "crc"
    rig.run(1000)
    # The corrupt reading (70 °C with a flipped bit) is not used; the last good one is.
    assert rig.sat.sensors.value("top", rig.now) == 60.0
    assert rig.sat.sensors.roles["top"].fault == "crc"
    assert rig.logged("sensor top: reading rejected (crc)")
    rig.run(4000)
    assert rig.sat.sensors.value("top", rig.now) is None
    assert "CRC" in rig.sat.sensors.faults(rig.now)["top"]
    rig.sensor("top").mode = "ok"
    rig.run(2000)
    assert rig.sat.sensors.value("top", rig.now) == 70.0
    assert rig.logged("sensor top: valid again")


def case_disconnected_sensor_and_dead_bus():
    rig = Rig()
    rig.run(2000)
    rig.sensor("middle").mode = "absent"
    rig.run(5000)
    assert rig.sat.sensors.value("middle", rig.now) is None
    assert rig.sat.sensors.roles["middle"].fault == "disconnected"
    assert rig.sat.sensors.value("top", rig.now) == 50.0  # the others still read
    for s in rig.bus.sensors:
        s.mode = "absent"
    rig.run(5000)
    assert rig.sat.sensors.roles["top"].fault == "no_presence"
    assert rig.telemetry()["sensors"]["top"]["fault"] == "no_presence"


def case_shorted_bus_reads_zeros_rejected():
    rig = Rig()
    rig.run(2000)
    rig.bus.shorted = True
    rig.run(5000)
    assert rig.sat.sensors.value("top", rig.now) is None
    assert rig.sat.sensors.roles["top"].fault == "shorted"


def case_power_on_85_rejected_unless_continuous():
    rig = Rig(temps={"top": 45.0, "middle": 84.5})
    rig.run(2000)
    # A sensor that browns out and comes back reports 85.0 without converting.
    rig.sensor("top").mode = "power_on"
    rig.run(1000)
    assert rig.sat.sensors.value("top", rig.now) == 45.0
    assert rig.sat.sensors.roles["top"].fault == "power_on_85"
    # A sensor that was at 84.5 °C a moment ago may really read 85.0 °C.
    rig.set_temp("middle", 85.0)
    rig.run(1000)
    assert rig.sat.sensors.value("middle", rig.now) == 85.0
    assert near(rig.sat.sensors.value("top", rig.now), 45.0, 0)
