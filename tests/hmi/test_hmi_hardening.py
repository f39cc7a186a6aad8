"""Hardening (issue 17) of the HMI over a real socket: what an adversarial probe found open.
Each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

from hmi_testkit import installer_client, live_demo, post

# -- item 1: the HMI's validate and save run the one site validation ----------------------

async def test_config_validate_refuses_driver_settings_the_service_cannot_start_with(
        tmp_path: Path) -> None:
    async with live_demo(tmp_path, ticks=1) as live, installer_client(live) as c:
        got = (await c.get("/api/config")).json()
        doc, path = got["config"], Path(got["path"])
        before = path.read_text()
        miners = [dict(m) for m in doc["miners"]]
        miners[0]["driver"] = {"api": "whatsminer-9000", "host": "192.0.2.10"}
        miners[1]["driver"] = {**miners[1]["driver"], "port": "abc"}
        for method, url in (("POST", "/api/config/validate"), ("PUT", "/api/config")):
            r = await post(c, url, {"config": {**doc, "miners": miners}}, method)
            assert r.status_code == 422, r.text
            where = {p["where"] for p in r.json()["problems"]}
            assert {"miners[0].driver.api", "miners[1].driver.port"} <= where, r.text
        assert path.read_text() == before
