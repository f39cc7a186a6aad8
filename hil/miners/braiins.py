"""Braiins OS Public REST API emulator (aiohttp), per the OpenAPI 1.7.0 document.

Auth: `POST /api/v1/auth/login` hands out a token; `expire_tokens()` invalidates every token
so the next request gets 401 (the driver must log in again). Out-of-range power targets
get 400 with a message, as the firmware's tuner constraints do. The replies are validated
against a slice of that document (tests/data/specs/braiins-os-public-rest-api.json).
The web root serves the Braiins OS page, and `rpc` the bosminer cgminer-style API on 4028
(version, devdetails, summary, devs, temps, tunerstatus) that pyasic's BOSMiner backend
identifies and reads the miner by.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming, HttpEmulator, RpcSidecar

MODEL = "Bitmain Antminer S9"


class BosminerRpc(CgminerFraming):
    """bosminer's cgminer-compatible API (TCP 4028): read-only here."""

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        st = self.status("S", 11, cmd, "BOSminer bosminer-plus-tuner 0.9.0")
        mhs = m.hashrate_ths * 1e6
        t = round(m.temp_c, 1)
        boards = (1, 2, 3)
        if cmd == "version":
            return {"STATUS": st, "VERSION": [{"BOSminer": "0.9.0", "API": "3.7",
                                              "BOSer": "boser 0.9.0"}], "id": 1}
        if cmd == "devdetails":
            return {"STATUS": st, "DEVDETAILS": [
                {"DEVDETAILS": i - 1, "Name": "", "ID": i, "Driver": "", "Kernel": "",
                 "Model": MODEL, "Chips": 63, "Cores": 114, "Voltage": 0.0, "Frequency": 650}
                for i in boards], "id": 1}
        if cmd == "summary":
            return {"STATUS": st, "SUMMARY": [{"Elapsed": 100, "MHS 5s": mhs, "MHS 1m": mhs,
                                               "MHS av": mhs}], "id": 1}
        if cmd == "devs":
            return {"STATUS": st, "DEVS": [{"ASC": i - 1, "ID": i, "MHS 5s": mhs / 3,
                                            "MHS 1m": mhs / 3} for i in boards], "id": 1}
        if cmd == "temps":
            return {"STATUS": st, "TEMPS": [{"TEMPS": i - 1, "ID": i, "Board": t, "Chip": t}
                                            for i in boards], "id": 1}
        if cmd == "tunerstatus":
            return {"STATUS": st, "TUNERSTATUS": [{
                "PowerLimit": round(m.target_w),
                "ApproximateMinerPowerConsumption": round(m.power_w),
                "ApproximateChainPowerConsumption": round(m.power_w * 0.9),
                "TunerRunning": False}], "id": 1}
        if cmd == "fans":
            return {"STATUS": st, "FANS": [{"FANS": 0, "ID": 0, "RPM": 3000, "Speed": 50}],
                    "id": 1}
        return {"STATUS": self.status("E", 14, "Invalid command"), "id": 1}


class BraiinsEmulator(RpcSidecar, HttpEmulator):
    def __init__(self, miner: EmulatedMiner, username: str = "root",
                 password: str = "root") -> None:
        super().__init__(miner)
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.logins = 0
        self.rpc = BosminerRpc(miner)


    async def root(self, _r: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><html><head><title>Braiins OS</title>"
                                 "</head><body><div id=\"root\"></div></body></html>",
                            content_type="text/html")

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.root)
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
            "miner_stats": {"found_blocks": 0, "best_share": 0, "best_share_str": "0",
                            "real_hashrate": {
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
        return web.json_response({
            "uid": "emu", "platform": 1, "bos_mode": 1, "hostname": "emu",
            "mac_address": "02:00:00:00:00:0C", "system_uptime": 100, "system_uptime_s": 100,
            "bosminer_uptime_s": 100, "status": 2, "kernel_version": "5.10.0",
            "control_board_soc_family": 1,
            "bos_version": {"current": "26.08.1", "major": "26.08", "bos_plus": True},
            "detailed_status": {"status": status}})

    async def hashboards(self, _r: web.Request) -> web.Response:
        t = round(self.miner.temp_c, 1)
        return web.json_response({"hashboards": [
            {"id": str(i), "enabled": True, "chips_count": 63,
             "board_temp": {"degree_c": t},
             "highest_chip_temp": {"location": 0, "temperature": {"degree_c": t}}}
            for i in (1, 2, 3)]})

    async def pause(self, _r: web.Request) -> web.Response:
        was = self.miner.paused
        self.miner.pause()
        return web.json_response(was)

    async def resume(self, _r: web.Request) -> web.Response:
        was = not self.miner.paused
        self.miner.resume()
        return web.json_response(was)
