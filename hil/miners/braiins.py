"""Braiins OS Public REST API emulator (aiohttp), per the OpenAPI 1.7.0 document.

Auth: `POST /api/v1/auth/login` hands out a token; `expire_tokens()` invalidates every token
so the next request gets 401 (the driver must log in again). Out-of-range power targets
get 400 with a message, as the firmware's tuner constraints do.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import HttpEmulator


class BraiinsEmulator(HttpEmulator):
    def __init__(self, miner: EmulatedMiner, username: str = "root",
                 password: str = "root") -> None:
        super().__init__(miner)
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.logins = 0

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/auth/login", self.login)
        for method, path, fn in (
            ("GET", "/api/v1/configuration/constraints", self.constraints),
            ("PUT", "/api/v1/performance/power-target", self.power_target),
            ("GET", "/api/v1/performance/tuner-state", self.tuner_state),
            ("GET", "/api/v1/miner/stats", self.stats),
            ("GET", "/api/v1/miner/details", self.details),
            ("GET", "/api/v1/miner/hw/hashboards", self.hashboards),
            ("PUT", "/api/v1/actions/pause", self.pause),
            ("PUT", "/api/v1/actions/resume", self.resume),
        ):
            app.router.add_route(method, path, self._authed(fn))

    def _authed(self, fn: Any) -> Any:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") not in self.tokens:
                return web.json_response({"message": "Unauthorized"}, status=401)
            resp: web.StreamResponse = await fn(request)
            return resp
        return wrapper

    async def login(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        if body.get("username") != self.username or body.get("password") != self.password:
            return web.json_response({"message": "invalid credentials"}, status=401)
        token = secrets.token_hex(8)
        self.tokens.add(token)
        self.logins += 1
        return web.json_response({"token": token, "timeout_s": 3600})

    async def constraints(self, _r: web.Request) -> web.Response:
        m = self.miner
        return web.json_response({"tuner_constraints": {
            "default_mode": 1,
            "power_target": {"min": {"watt": int(m.fw_min_w)}, "max": {"watt": int(m.fw_max_w)},
                             "default": {"watt": int(m.fw_max_w)}}}})

    async def power_target(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        watt = body.get("watt") if isinstance(body, dict) else None
        if not isinstance(watt, int) or watt < 0:
            return web.json_response({"message": "watt must be a non-negative integer"},
                                     status=400)
        try:
            self.miner.set_target(float(watt))
        except FirmwareRejected as err:
            return web.json_response({"message": str(err)}, status=400)
        return web.json_response({"watt": watt})

    async def tuner_state(self, _r: web.Request) -> web.Response:
        return web.json_response({"overall_tuner_state": 3, "mode_state": {
            "powertargetmodestate": {"current_target": {"watt": int(self.miner.target_w)}}}})

    async def stats(self, _r: web.Request) -> web.Response:
        m = self.miner
        return web.json_response({
            "miner_stats": {"real_hashrate": {
                "last_5s": {"gigahash_per_second": m.hashrate_ths * 1000}}},
            "power_stats": {"approximated_consumption": {"watt": round(m.power_w)}}})

    async def details(self, _r: web.Request) -> web.Response:
        m = self.miner
        phase = m.phase
        status: dict[str, Any]
        if m.overheated:
            status = {"stopped": {"reason": {"thermal_pause": {
                "reason": "THERMAL_PAUSE_REASON_DANGEROUS_TEMPERATURE"}}}}
        elif phase == "running":
            status = {"running": {"reason": {"normal": {}}}}
        elif phase == "booting":
            status = {"starting": {"reason": {"none": {}}}}
        elif phase == "stopping":
            status = {"stopping": {"reason": {"user_pause": {}}}}
        else:
            status = {"stopped": {"reason": {"user_pause": {}}}}
        return web.json_response({"uid": "emu", "hostname": "emu", "status": 2,
                                  "detailed_status": {"status": status}})

    async def hashboards(self, _r: web.Request) -> web.Response:
        return web.json_response({"hashboards": [{"id": "1", "enabled": True,
            "highest_chip_temp": {"location": 0,
                                  "temperature": {"degree_c": self.miner.temp_c}}}]})

    async def pause(self, _r: web.Request) -> web.Response:
        was = self.miner.paused
        self.miner.pause()
        return web.json_response(was)

    async def resume(self, _r: web.Request) -> web.Response:
        was = not self.miner.paused
        self.miner.resume()
        return web.json_response(was)
