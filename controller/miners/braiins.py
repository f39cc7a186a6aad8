"""Braiins OS (BOS/BOS+) over its public REST API: continuous power target, pause/resume.

Source: Braiins OS Public REST API, OpenAPI 1.7.0 (developer.braiins-os.com/latest/
openapi.json; the `bos-plus-api` proto is the same contract):
- `POST /api/v1/auth/login` {username, password} -> {token, timeout_s}; the token goes in the
  `Authorization` header and is refreshed by every request; 401 when it expired.
- `GET /api/v1/configuration/constraints` -> tuner_constraints.power_target {min,max,default}
  in {watt}: the range the firmware accepts (we clamp to it, never send outside).
- `PUT /api/v1/performance/power-target` {watt} -> {watt}: changes the tuner target live
  (no bosminer restart — unlike pyasic, which rewrites the TOML config and restarts).
- `GET /api/v1/performance/tuner-state` -> mode_state.powertargetmodestate.current_target.
- `GET /api/v1/miner/stats` -> power_stats.approximated_consumption.watt,
  miner_stats.real_hashrate.last_5s.gigahash_per_second.
- `GET /api/v1/miner/details` -> detailed_status.status {running|starting|stopped|stopping},
  stopped.reason.thermal_pause for thermal protection.
- `GET /api/v1/miner/hw/hashboards` -> hashboards[].highest_chip_temp.temperature.degree_c.
- `PUT /api/v1/actions/pause` / `resume`.
"""

from __future__ import annotations

from typing import Any

from controller.miners.base import AuthExpired, Control, MinerDriver, State, Telemetry
from controller.miners.transport import HttpJson


def _watt(obj: Any) -> float | None:
    return float(obj["watt"]) if isinstance(obj, dict) and "watt" in obj else None


class BraiinsDriver(MinerDriver):
    api = "braiins-os"
    control = Control.CONTINUOUS
    has_auth = True
    document = "Braiins OS Public REST API (OpenAPI 1.7.0)"

    def __init__(self, cfg: Any, *, host: str, port: int, username: str, password: str,
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.http = HttpJson(host, port, self.timeout_s)
        self.username, self.password = username, password
        self._token: str | None = None

    async def _login(self) -> None:
        self._token = None
        reply = await self.http.request("POST", "/api/v1/auth/login",
                                        {"username": self.username, "password": self.password})
        token = reply["token"]
        if not isinstance(token, str) or not token:
            raise ValueError("login reply has no token")
        self._token = token

    async def _req(self, method: str, path: str, body: Any = None) -> Any:
        if self._token is None:
            await self._login()
        assert self._token is not None
        try:
            return await self.http.request(method, path, body, {"Authorization": self._token})
        except AuthExpired:
            self._token = None
            raise

    async def _prepare(self) -> None:
        c = await self._req("GET", "/api/v1/configuration/constraints")
        pt = (c.get("tuner_constraints") or {}).get("power_target") or {}
        self._narrow_range(_watt(pt.get("min")), _watt(pt.get("max")))

    async def _read(self) -> Telemetry:
        details = await self._req("GET", "/api/v1/miner/details")
        stats = await self._req("GET", "/api/v1/miner/stats")
        tuner = await self._req("GET", "/api/v1/performance/tuner-state")
        boards = await self._req("GET", "/api/v1/miner/hw/hashboards")
        status = (details.get("detailed_status") or {}).get("status") or {}
        power = _watt((stats.get("power_stats") or {}).get("approximated_consumption")) or 0.0
        real = ((stats.get("miner_stats") or {}).get("real_hashrate") or {})
        ghs = (real.get("last_5s") or {}).get("gigahash_per_second", 0.0)
        mode = (tuner.get("mode_state") or {}).get("powertargetmodestate") or {}
        temps = [b["highest_chip_temp"]["temperature"]["degree_c"]
                 for b in boards.get("hashboards", [])
                 if (b.get("highest_chip_temp") or {}).get("temperature")]
        if "running" in status:
            state = State.RUNNING
        elif "starting" in status:
            state = State.BOOTING
        elif "stopped" in status or "stopping" in status:
            reason = ((status.get("stopped") or status.get("stopping") or {}).get("reason")
                      or {})
            state = State.OVERHEAT if "thermal_pause" in reason else State.PAUSED
        else:
            raise ValueError(f"unknown detailed_status {list(status)}")
        detail = ""
        if state is State.OVERHEAT:
            detail = f"thermal pause: {reason['thermal_pause'].get('reason', '')}"
        return Telemetry(state, float(power), float(ghs) / 1000.0,
                         max(temps) if temps else None, _watt(mode.get("current_target")),
                         detail)

    async def _write_target(self, target_w: float) -> None:
        reply = await self._req("PUT", "/api/v1/performance/power-target",
                                {"watt": round(target_w)})
        _watt(reply)  # the firmware echoes the target; verification reads tuner-state

    async def _pause(self) -> None:
        await self._req("PUT", "/api/v1/actions/pause")

    async def _resume(self) -> None:
        await self._req("PUT", "/api/v1/actions/resume")

    async def close(self) -> None:
        await self.http.close()
