"""Vnish REST API emulator (aiohttp): unlock token, autotune presets, pause/resume.

`expire_tokens()` invalidates bearer tokens (401). Presets are named by watts like the real
firmware's list ("1100" -> "1100 watt ~ 53 TH"); an unknown preset is refused with 400
{"err": ...}.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import HttpEmulator


class VnishEmulator(HttpEmulator):
    def __init__(self, miner: EmulatedMiner, password: str = "admin") -> None:
        super().__init__(miner)
        self.password = password
        self.tokens: set[str] = set()
        levels = miner.cfg.profiles_w or [miner.cfg.max_power_w]
        self.presets = {str(int(w)): float(w) for w in levels}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/unlock", self.unlock)
        app.router.add_get("/api/v1/perf-summary", self.perf)
        for method, path, fn in (("GET", "/api/v1/summary", self.summary),
                                 ("GET", "/api/v1/autotune/presets", self.list_presets),
                                 ("POST", "/api/v1/settings", self.settings),
                                 ("POST", "/api/v1/mining/pause", self.pause),
                                 ("POST", "/api/v1/mining/resume", self.resume)):
            app.router.add_route(method, path, self._authed(fn))

    def _authed(self, fn: Any) -> Any:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return web.json_response({"err": "Unauthorized"}, status=401)
            resp: web.StreamResponse = await fn(request)
            return resp
        return wrapper

    async def unlock(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        if body.get("pw") != self.password:
            return web.json_response({"err": "Wrong password"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response({"token": token})

    def _current(self) -> str:
        return next((n for n, w in self.presets.items() if w == self.miner.target_w), "")

    async def perf(self, _r: web.Request) -> web.Response:
        name = self._current()
        return web.json_response({"current_preset": {"name": name,
                                                     "pretty": f"{name} watt", "status": "tuned"}})

    async def summary(self, _r: web.Request) -> web.Response:
        m = self.miner
        phase = m.phase
        state = ("failure" if m.overheated else "mining" if phase == "running"
                 else "starting" if phase == "booting" else "stopped")
        return web.json_response({"miner": {
            "miner_status": {"miner_state": state, "miner_state_time": 1,
                             "description": "Overheated, cooling down" if m.overheated else ""},
            "miner_type": "Antminer S19 (Vnish emulator)", "hr_realtime": m.hashrate_ths * 1000,
            "power_consumption": round(m.power_w), "chip_temp": {"min": 40,
                                                                 "max": round(m.temp_c)}}})

    async def list_presets(self, _r: web.Request) -> web.Response:
        return web.json_response([{"name": n, "pretty": f"{n} watt ~ {w / 30:.0f} TH",
                                   "status": "tuned"} for n, w in self.presets.items()])

    async def settings(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        preset = (((body or {}).get("miner") or {}).get("overclock") or {}).get("preset")
        if preset not in self.presets:
            return web.json_response({"err": f"unknown preset {preset!r}"}, status=400)
        try:
            self.miner.set_target(self.presets[preset])
        except FirmwareRejected as err:
            return web.json_response({"err": str(err)}, status=400)
        return web.json_response({"restart_required": False, "reboot_required": False})

    async def pause(self, _r: web.Request) -> web.Response:
        self.miner.pause()
        return web.Response(status=200)

    async def resume(self, _r: web.Request) -> web.Response:
        self.miner.resume()
        return web.Response(status=200)
