"""Shelly Gen2 RPC emulator (aiohttp, `POST /rpc`): Switch.Set / Switch.GetStatus.

The switch powers the emulated miner: on -> it boots (idle power for restart_s) then ramps
to full power; `apower` is what the plug's meter measures.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hil.miners.core import EmulatedMiner
from hil.miners.servers import HttpEmulator


class ShellyEmulator(HttpEmulator):
    def __init__(self, miner: EmulatedMiner, switch_id: int = 0) -> None:
        super().__init__(miner)
        self.switch_id = switch_id

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/rpc", self.rpc)

    async def rpc(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        rid = body.get("id")
        method, params = body.get("method"), body.get("params") or {}

        def err(code: int, msg: str) -> web.Response:
            return web.json_response({"id": rid, "src": "shellyplugs-emu",
                                      "error": {"code": code, "message": msg}})

        def ok(result: Any) -> web.Response:
            return web.json_response({"id": rid, "src": "shellyplugs-emu", "result": result})

        if params.get("id") != self.switch_id:
            return err(-105, f"Argument 'id', value {params.get('id')} not found!")
        m = self.miner
        on = not m.paused
        if method == "Switch.GetStatus":
            return ok({"id": self.switch_id, "source": "http", "output": on,
                       "apower": round(m.power_w, 1), "voltage": 230.1,
                       "temperature": {"tC": 41.2, "tF": 106.2}})
        if method == "Switch.Set":
            want = params.get("on")
            if not isinstance(want, bool):
                return err(-103, "Invalid argument 'on'")
            if want and not on:
                m.target_w = m.cfg.max_power_w
                m.resume()
            elif not want and on:
                m.pause()
            return ok({"was_on": on})
        return err(-114, f"Method {method} failed: not found")
