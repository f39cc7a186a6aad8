"""Vnish REST API emulator (aiohttp): unlock token, autotune presets, settings, pause/resume.

As pyasic (v0.79, `pyasic/web/vnish.py`) talks to Vnish: the token is accepted bare on
`mining/*`, `settings`, `autotune/presets`, `summary`, `perf-summary`, and only as
`Bearer <token>` on `system/*`; anything else is 401. `expire_tokens()` invalidates
every token. `GET /api/v1/autotune/presets` -> {"presets": [...]} named by watts
("1100" -> "1100 watt ~ 53 TH"); `GET /api/v1/settings` -> miner.overclock; `POST
/api/v1/settings` {"miner": {"overclock": {...}}} selects a preset and answers
{"restart_required": false, "reboot_required": false} *even when the preset is unknown*
(pyasic's note: "response will always be ... even if unsuccessful"), so only the readback
shows a refused preset. The web root serves the AnthillOS page (pyasic identifies Vnish
by it); `rpc` is the bmminer API on 4028 that Vnish keeps (version names VNish).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hil.miners.cgminer import bmminer_stats
from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming, HttpEmulator, RpcSidecar

MODEL = "Antminer S19"
VERSION = "1.2.6"


class VnishRpc(CgminerFraming):
    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        st = self.status("S", 11, cmd, f"VNish {VERSION}")
        if cmd == "version":
            return {"STATUS": st, "VERSION": [{"BMMiner": "2.0.0", "API": "3.1",
                                              "Miner": f"VNish {VERSION}",
                                              "Type": f"{MODEL} (Vnish {VERSION})"}], "id": 1}
        if cmd == "summary":
            return {"STATUS": st, "SUMMARY": [{"Elapsed": 100,
                                               "GHS 5s": round(m.hashrate_ths * 1000, 2)}],
                    "id": 1}
        if cmd == "stats":
            return {"STATUS": st, "STATS": bmminer_stats(m, f"{MODEL} (Vnish {VERSION})",
                                                         False), "id": 1}
        return {"STATUS": self.status("E", 14, "Invalid command"), "id": 1}


class VnishEmulator(RpcSidecar, HttpEmulator):
    def __init__(self, miner: EmulatedMiner, password: str = "admin") -> None:
        super().__init__(miner)
        self.password = password
        self.tokens: set[str] = set()
        levels = miner.cfg.profiles_w or [miner.cfg.max_power_w]
        self.presets = {str(int(w)): float(w) for w in levels}
        self.overclock: dict[str, Any] = {"preset": self._current(), "globals": {
            "volt": 1350, "freq": 500}, "modded_psu": False, "chains": []}
        self.settings_posts = 0
        self.rpc = VnishRpc(miner)


    def expire_tokens(self) -> None:
        self.tokens.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.root)
        app.router.add_post("/api/v1/unlock", self.unlock)
        for method, path, fn in (("GET", "/api/v1/summary", self.summary),
                                 ("GET", "/api/v1/perf-summary", self.perf),
                                 ("GET", "/api/v1/autotune/presets", self.list_presets),
                                 ("GET", "/api/v1/settings", self.get_settings),
                                 ("POST", "/api/v1/settings", self.settings),
                                 ("POST", "/api/v1/mining/pause", self.pause),
                                 ("POST", "/api/v1/mining/resume", self.resume),
                                 ("GET", "/api/v1/system/info", self.system_info)):
            app.router.add_route(method, path, self._authed(fn, path))

    def _authed(self, fn: Any, path: str) -> Any:
        bearer = path.startswith("/api/v1/system")

        async def wrapper(request: web.Request) -> web.StreamResponse:
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if bearer and auth.startswith("Bearer ") else (
                None if bearer else auth)
            if token not in self.tokens:
                return web.json_response({"err": "Unauthorized"}, status=401)
            resp: web.StreamResponse = await fn(request)
            return resp
        return wrapper

    async def root(self, _r: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><html><head><title>AnthillOS</title></head>"
                                 "<body><div id=\"app\"></div></body></html>",
                            content_type="text/html")

    async def unlock(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        if not isinstance(body, dict) or body.get("pw") != self.password:
            return web.json_response({"err": "Wrong password"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response({"token": token})

    def _current(self) -> str:
        return next((n for n, w in self.presets.items() if w == self.miner.target_w), "")

    async def perf(self, _r: web.Request) -> web.Response:
        name = self._current()
        return web.json_response({"current_preset": {
            "name": name, "pretty": f"{name} watt ~ {self.presets.get(name, 0) / 30:.0f} TH",
            "status": "tuned", "modded_psu_required": False}})

    async def summary(self, _r: web.Request) -> web.Response:
        m = self.miner
        phase = m.phase
        state = ("failure" if m.overheated else "mining" if phase == "running"
                 else "starting" if phase == "booting" else "stopped")
        return web.json_response({
            "system": {"network_status": {"mac": "02:00:00:00:00:0A", "hostname": "vnish-emu"}},
            "miner": {
                "miner_status": {"miner_state": state, "miner_state_time": 1,
                                 "description": "Overheated, cooling down" if m.overheated
                                 else ""},
                "miner_type": f"{MODEL} (Vnish {VERSION})",
                "hr_realtime": round(m.hashrate_ths * 1000, 2),
                "power_usage": round(m.power_w),
                "chip_temp": {"min": round(m.temp_c), "max": round(m.temp_c)},
                "chains": []}})

    async def system_info(self, _r: web.Request) -> web.Response:
        return web.json_response({"miner": f"{MODEL} (Vnish {VERSION})",
                                  "fw_version": VERSION})

    async def list_presets(self, _r: web.Request) -> web.Response:
        return web.json_response({"presets": [
            {"name": n, "pretty": f"{n} watt ~ {w / 30:.0f} TH", "status": "tuned",
             "modded_psu_required": False} for n, w in self.presets.items()]})

    async def get_settings(self, _r: web.Request) -> web.Response:
        self.overclock["preset"] = self._current() or self.overclock["preset"]
        return web.json_response({"miner": {"overclock": self.overclock,
                                            "cooling": {"mode": {"name": "auto"}}}})

    async def settings(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        oc = ((body or {}).get("miner") or {}).get("overclock") if isinstance(body, dict) \
            else None
        if not isinstance(oc, dict):
            return web.json_response({"err": "miner.overclock expected"}, status=400)
        self.settings_posts += 1
        preset = oc.get("preset")
        if preset in self.presets:
            try:
                self.miner.set_target(self.presets[preset])
                self.overclock = {**self.overclock, **oc}
            except FirmwareRejected:
                pass  # the firmware keeps its preset; the reply does not say so
        return web.json_response({"restart_required": False, "reboot_required": False})

    async def pause(self, _r: web.Request) -> web.Response:
        self.miner.pause()
        return web.json_response({"success": True})

    async def resume(self, _r: web.Request) -> web.Response:
        self.miner.resume()
        return web.json_response({"success": True})
