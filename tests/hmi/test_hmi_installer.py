"""The installer's tools over HTTP: the site config (schema, redacted values, validation by
the site's pydantic models, atomic save), device test buttons against a real Modbus TCP
emulator and a real AxeOS HTTP emulator, and the ledger export."""

from __future__ import annotations

import csv
import io
import socket
import tomllib
from pathlib import Path
from typing import Any

from hmi_testkit import installer_client, live_demo, post

from controller.bridge import tomldoc
from controller.config.load import parse_site
from controller.devices.regmap import load_map
from controller.miners.axeos import PowerCurve
from hil.miners.axeos import AxeOsEmulator
from hil.miners.core import EmulatedMiner
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator

REPO = Path(__file__).resolve().parents[2]
HOUSE = REPO / "hil" / "sites" / "house-10kwp.toml"


def _doc() -> dict[str, Any]:
    with HOUSE.open("rb") as f:
        return tomllib.load(f)


async def test_config_form_round_trip_and_validation(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as c:
        schema = (await c.get("/api/config/schema")).json()
        assert "tank" in schema["properties"] and "MinerConfig" in schema["$defs"]
        got = (await c.get("/api/config")).json()
        doc = got["config"]
        assert doc["tank"]["max_c"] == 70
        path = Path(got["path"])
        before = path.read_text()

        # A bad value: refused with the field's TOML path and pydantic's own words.
        bad = {**doc, "tank": {**doc["tank"], "max_c": 50}}
        for method, url in (("POST", "/api/config/validate"), ("PUT", "/api/config")):
            r = await post(c, url, {"config": bad}, method)
            assert r.status_code == 422, r.text
            problems = r.json()["problems"]
            assert {"where": "tank.max_c", "reason": "must be above target_c (55.0)"} in problems
        wrong_type = {**doc, "site": {**doc["site"], "grid_import_limit_w": "lots"}}
        r = await post(c, "/api/config/validate", {"config": wrong_type})
        assert r.json()["problems"][0]["where"] == "site.grid_import_limit_w"
        assert "valid number" in r.json()["problems"][0]["reason"]
        typo = {**doc, "tank": {**doc["tank"], "max_temp": 80}}
        r = await post(c, "/api/config/validate", {"config": typo})
        assert r.json()["problems"] == [{"where": "tank.max_temp",
                                         "reason": "unknown key (typo?)"}]
        assert path.read_text() == before  # nothing half-applied

        renamed = {**doc, "site": {**doc["site"], "id": "other"}}
        r = await post(c, "/api/config", {"config": renamed}, "PUT")
        assert r.status_code == 422 and r.json()["problems"][0]["where"] == "site.id"

        good = {**doc, "tank": {**doc["tank"], "target_c": 58}}
        r = await post(c, "/api/config/validate", {"config": good})
        assert r.status_code == 200 and "tank" in r.json()["message"]
        r = await post(c, "/api/config", {"config": good}, "PUT")
        assert r.status_code == 200, r.text
        assert r.json()["changed"] == ["tank"] and "Restart" in r.json()["message"]
        with path.open("rb") as f:
            saved = tomllib.load(f)
        assert saved["tank"]["target_c"] == 58
        assert parse_site(saved).tank is not None
        assert path.with_name(path.name + ".prev").read_text() == before


async def test_secrets_are_redacted_and_kept(tmp_path: Path) -> None:
    d = _doc()
    d["miners"][0]["driver"] = {"api": "braiins-os", "host": "192.0.2.10",
                                "password": "s3cret-pw"}
    site = tmp_path / "site-src.toml"
    site.write_text(tomldoc.dumps(d))
    async with live_demo(tmp_path / "data", ticks=1, site_path=site) as live, \
            installer_client(live) as c:
        got = (await c.get("/api/config")).json()
        assert got["config"]["miners"][0]["driver"]["password"] == "<redacted>"
        assert "s3cret-pw" not in (await c.get("/api/config")).text
        r = await post(c, "/api/config", {"config": got["config"]}, "PUT")
        assert r.status_code == 200, r.text
        with Path(got["path"]).open("rb") as f:
            assert tomllib.load(f)["miners"][0]["driver"]["password"] == "s3cret-pw"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_device_test_buttons_reach_real_devices(tmp_path: Path) -> None:
    dmap = load_map("eastron-sdm630")
    emu = ModbusEmulator([EmulatedDevice(dmap.unit_id, DeviceImage(dmap))], name="meter")
    emu.set_values({"grid_power_w": -1234.0, "grid_voltage_l1_v": 231.0})
    await emu.start_tcp("127.0.0.1", 0)
    d = _doc()
    bitaxe = parse_site(d).miners[1]
    miner = EmulatedMiner(bitaxe, start_w=15.0)
    axe = AxeOsEmulator(miner, PowerCurve.load("bitaxe-gamma"))
    await axe.start()
    d["devices"] = [
        {"name": "meter", "role": "grid_meter", "map": "eastron-sdm630", "host": "127.0.0.1",
         "port": emu.port, "timeout_s": 1.0},
        {"name": "gone", "role": "pv_inverter", "map": "sunspec", "host": "127.0.0.1",
         "port": _dead_port(), "timeout_s": 0.5, "retries": 0},
    ]
    d["miners"][1]["driver"] = {"api": "axeos", "host": "127.0.0.1", "port": axe.port,
                                "timeout_s": 2.0, "min_write_interval_s": 0}
    d["miners"][0]["driver"]["timeout_s"] = 0.3  # a TEST-NET address: nobody answers
    site = tmp_path / "site-src.toml"
    site.write_text(tomldoc.dumps(d))
    try:
        async with live_demo(tmp_path / "data", ticks=1, site_path=site) as live, \
                installer_client(live) as c:
            listed = (await c.get("/api/installer/devices")).json()
            assert [x["name"] for x in listed["devices"]] == ["meter", "gone"]
            r = await post(c, "/api/installer/devices/meter/read")
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["ok"] and out["map"] == "eastron-sdm630"
            assert abs(out["values"]["grid_power_w"] - (-1234.0)) < 4
            assert emu.device(dmap.unit_id).requests > 0
            r = await post(c, "/api/installer/devices/gone/read")
            assert r.status_code == 200 and not r.json()["ok"] and r.json()["error"]
            r = await post(c, "/api/installer/devices/nope/read")
            assert r.status_code == 422 and r.json()["problems"][0]["where"] == "device"

            r = await post(c, "/api/installer/miners/bitaxe-1/power", {"power_w": 20})
            assert r.status_code == 200, r.text
            res = r.json()
            assert res["action"] in ("sent", "clamped") and res["ok"], res
            assert res["confirmed_w"] is not None and abs(res["confirmed_w"] - 20) <= 2
            assert miner.target_w == res["sent_w"]  # the emulator really got the PATCH
            assert res["temp_c"] is not None
            r = await post(c, "/api/installer/miners/bitaxe-1/power", {"power_w": -5})
            assert r.status_code == 422 and r.json()["problems"][0]["where"] == "power_w"
            # s9's driver points at a TEST-NET address: unavailable, said plainly
            r = await post(c, "/api/installer/miners/s9/power", {"power_w": 800})
            assert r.status_code == 200 and not r.json()["ok"]
    finally:
        await axe.stop()
        await emu.stop()


async def test_ledger_export_is_csv_for_installers_only(tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=120) as live:
        assert live.site.writer is not None
        live.site.writer.flush()
        async with live.client() as anon:
            assert (await anon.get("/api/ledger/export.csv")).status_code == 401
        async with installer_client(live) as c:
            r = await c.get("/api/ledger/export.csv",
                            params={"from": "2025-04-21", "to": "2025-04-21"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert "attachment" in r.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) >= 4 and rows[0]["currency"] == "EUR"
            assert all(row["interval_start"].startswith("2025-04-21") for row in rows)
            r = await c.get("/api/ledger/export.csv", params={"from": "2025-04-22",
                                                               "to": "2025-04-21"})
            assert r.status_code == 422 and r.json()["problems"][0]["where"] == "to"
            r = await c.get("/api/ledger/export.csv", params={"from": "yesterday"})
            assert r.status_code == 422 and r.json()["problems"][0]["where"] == "from"
