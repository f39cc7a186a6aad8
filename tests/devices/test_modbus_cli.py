"""`hearth read`, `hearth scan modbus` and `hearth modbus-proxy` as an installer runs
them: a separate process against emulators on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from modbus_testkit import serve

from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator

REPO = Path(__file__).resolve().parents[2]
SITE = (REPO / "hil" / "sites" / "house-10kwp.toml").read_text()


async def hearth(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def site_with(tmp_path: Path, devices: str) -> Path:
    # Device sections go before [[miners]] would not matter in TOML: arrays of tables
    # may come anywhere, so appending is enough.
    p = tmp_path / "site.toml"
    p.write_text(SITE + "\n" + devices)
    return p


async def test_read_prints_one_measurement_document(tmp_path: Path) -> None:
    gx = await serve("victron-gx")
    meter = await serve("sma-inverter")
    site = site_with(tmp_path, f"""
[[devices]]
name = "gx"
role = "battery"
map = "victron-gx"
host = "127.0.0.1"
port = {gx.port}

[[devices]]
name = "sma"
role = "hybrid"
map = "sma-inverter"
host = "127.0.0.1"
port = {meter.port}
""")
    try:
        rc, out, err = await hearth("read", "--config", str(site), "--json")
        assert rc == 0, err
        doc = json.loads(out)
        m = doc["measurements"]
        assert m["grid_power_w"]["value"] == -1234.0
        assert m["pv_power_w"]["value"] == 5432.0
        assert m["battery_power_w"]["value"] == 1500.0
        assert abs(m["soc_pct"]["value"] - 63.5) <= 0.51
        assert "pv_power_l1_w" in m  # per-phase values where the device has them
        assert all(0 <= v["age_s"] < 5 for v in m.values())
        assert doc["devices"]["gx"]["ok"] and doc["devices"]["sma"]["ok"]
        rc, out, _ = await hearth("read", "--config", str(site))
        assert rc == 0 and "grid_power_w" in out and "device gx: ok" in out
    finally:
        await gx.stop()
        await meter.stop()


async def test_read_fails_per_device_with_a_clear_message(tmp_path: Path) -> None:
    good = await serve("eastron-sdm630")
    dead = await serve("sma-sunny-island")
    dead.device(3).faults.no_answer = True
    site = site_with(tmp_path, f"""
[[devices]]
name = "meter"
role = "grid_meter"
map = "eastron-sdm630"
host = "127.0.0.1"
port = {good.port}

[[devices]]
name = "island"
role = "battery"
map = "sma-sunny-island"
host = "127.0.0.1"
port = {dead.port}
timeout_s = 0.3
retries = 0
""")
    try:
        rc, out, err = await hearth("read", "--config", str(site), "--json")
        assert rc == 1
        assert f"device island (sma-sunny-island at tcp://127.0.0.1:{dead.port}): read " \
               "holding 30845+2: no answer within 0.3 s" in err
        doc = json.loads(out)
        assert doc["devices"]["meter"]["ok"] is True
        assert doc["devices"]["island"]["ok"] is False
        assert "soc_pct" not in doc["measurements"]
    finally:
        await good.stop()
        await dead.stop()


async def test_read_refuses_a_bad_device_section(tmp_path: Path) -> None:
    site = site_with(tmp_path, """
[[devices]]
name = "meter"
role = "grid_meter"
map = "eastron-sdm630"
transport = "tcp"
""")
    rc, _, err = await hearth("read", "--config", str(site))
    assert rc == 2
    assert "devices[0]" in err and "transport 'tcp' needs host" in err
    site = site_with(tmp_path, """
[[devices]]
name = "meter"
role = "grid_meter"
map = "no-such-map"
host = "127.0.0.1"
""")
    rc, _, err = await hearth("read", "--config", str(site))
    assert rc == 2 and "devices[0].map" in err and "no such map" in err


async def test_scan_lists_sunspec_models_and_recognises_register_maps() -> None:
    ss = await serve("sunspec")
    sdm = ModbusEmulator([EmulatedDevice(5, DeviceImage("sma-sunny-island"))])
    sdm.set_values({"battery_power_w": -800.0, "soc_pct": 42.0})
    port = await sdm.start_tcp()
    try:
        rc, out, err = await hearth("scan", "modbus", "--host", "127.0.0.1", "--port",
                                    str(ss.port), "--unit", "1")
        assert rc == 0, err
        assert "unit 1: SunSpec at 40000" in out
        for line in ("model     1 common", "model   103 inverter_three_phase",
                     "model   203 ac_meter_abcn", "model   802 battery"):
            assert line in out
        assert "device: Hearth emulated sunspec" in out
        rc, out, err = await hearth("scan", "modbus", "--host", "127.0.0.1", "--port",
                                    str(port), "--unit", "5", "--unit", "9",
                                    "--timeout", "0.3")
        assert rc == 0, err
        assert "unit 5: answers like map 'sma-sunny-island': battery_power_w=-800, " \
               "soc_pct=42" in out
        assert "unit 9: nothing found" in out
    finally:
        await ss.stop()
        await sdm.stop()


async def test_modbus_proxy_command_serves_clients(tmp_path: Path) -> None:
    emu = await serve("solaredge")
    emu.set_single_client(True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", "modbus-proxy", "--upstream",
        f"127.0.0.1:{emu.port}", "--listen", "127.0.0.1:0", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        port = int(line.split("->")[0].rsplit(":", 1)[1])
        site = site_with(tmp_path, f"""
[[devices]]
name = "se"
role = "hybrid"
map = "solaredge"
host = "127.0.0.1"
port = {port}
""")
        for _ in range(2):
            rc, out, err = await hearth("read", "--config", str(site), "--json")
            assert rc == 0, err
            assert json.loads(out)["measurements"]["grid_power_w"]["value"] == -1234.0
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        await emu.stop()
