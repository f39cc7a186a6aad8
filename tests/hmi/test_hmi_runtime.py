"""`hearth run` with the HMI: the real Service's own tick loop (real time, its own
scheduling) and the HMI on the same event loop, the way controller/cli.py will wire it."""

from __future__ import annotations

import asyncio
import json
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from hmi_testkit import PASSWORD, wait_for

from controller.bridge import tomldoc
from controller.config.load import parse_site
from controller.control.types import Commands, MinerReading
from controller.runtime.service import Service
from controller.sim.plant import Plant
from hmi.runtime import HmiRuntime

HOUSE = Path(__file__).resolve().parents[2] / "hil" / "sites" / "house-10kwp.toml"


class LivePlant:
    """The plant on the loop's clock: 5 kW of sun, a small house load."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.stopped_with: str | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readings(self) -> Mapping[str, Any]:
        m = self.plant.measure(self.now(), 5000.0, 400.0)
        return {"grid_power_w": m.grid_power_w, "pv_power_w": m.pv_power_w,
                "battery_power_w": m.battery_power_w, "soc_pct": m.soc_pct,
                "tank_temp_c": m.tank_temp_c}

    def submit(self, commands: Commands) -> None:
        self.plant.step(commands, 0.05, 5000.0, 400.0, 300.0)


class Fleet:
    def __init__(self, p: LivePlant) -> None:
        self.p = p

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None:
        self.p.stopped_with = shutdown_state

    def readings(self) -> Mapping[str, MinerReading]:
        return {mm.cfg.name: mm.reading(self.p.now()) for mm in self.p.plant.miners}

    def submit(self, commands: Commands) -> None:
        self.p.submit(commands)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_hearth_run_serves_the_hmi_and_takes_its_commands(tmp_path: Path) -> None:
    with HOUSE.open("rb") as f:
        doc = tomllib.load(f)
    doc["control"]["tick_s"] = 0.05
    doc["service"] = {"data_dir": str(tmp_path), "start_delay_max_s": 0}
    doc["ledger"] = {"enabled": False}
    site = tmp_path / "site.toml"
    site.write_text(tomldoc.dumps(doc))
    cfg = parse_site(doc)
    ports = LivePlant(Plant(cfg))
    hmi = HmiRuntime(cfg, config_path=site)
    service = Service(cfg, [ports], Fleet(ports), [hmi.publisher])
    run = asyncio.create_task(service.run())
    server = await hmi.start(service, host="127.0.0.1", port=_free_port())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            # The service's own loop ticks; the HMI shows it.
            await wait_for(lambda: hmi.publisher.seq >= 5, 10, "ticks")
            s1 = (await c.get("/api/state")).json()
            await wait_for(lambda: hmi.publisher.seq >= s1["seq"] + 5, 10, "more ticks")
            assert (await c.get("/api/state")).json()["seq"] > s1["seq"]
            # The installer, from the setup code, changes the mode of the running service.
            assert hmi.context is not None
            code = hmi.context.auth.setup_code
            csrf = (await c.get("/api/auth/session")).json()["csrf_token"]
            r = await c.post("/api/auth/setup", json={"setup_code": code, "password": PASSWORD},
                             headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200
            r = await c.post("/api/commands/mode", json={"mode": "heating"},
                             headers={"X-CSRF-Token": r.json()["csrf_token"]})
            assert r.status_code == 200, r.text
            await wait_for(lambda: service.last is not None
                           and service.last.commands.mode == "heating", 10, "heating mode")
            # A live feed is open when the service stops: it ends, it does not hang.
            async with c.stream("GET", "/api/events") as stream:
                lines = stream.aiter_lines()
                first = [await anext(lines) for _ in range(4)]
                assert any(x.startswith("data: ") and json.loads(x[6:]).get("boot_id")
                           for x in first)
                service.stop()
                await asyncio.wait_for(run, 10)
                async for _ in lines:  # the stream ends with the service
                    pass
        assert ports.stopped_with == "pause"
    finally:
        service.stop()
        if not run.done():
            await asyncio.wait_for(run, 10)
        await hmi.stop()
