"""Vnish (Antminer aftermarket firmware) over its REST API: autotune presets by watts.

Source: VNish API reference (Vnish 1.2.x, `/docs` on the miner; community transcription
"VNish API Documentation" for the Antminer S19):
- `POST /api/v1/unlock` {pw} -> {token}; protected calls send `Authorization: Bearer <token>`,
  401 when it is no longer valid (re-unlock once).
- `GET /api/v1/autotune/presets` -> [{name: "1100", pretty: "1100 watt ~ 53 TH", ...}]: the
  power levels the firmware offers; `GET /api/v1/perf-summary` -> current_preset.name.
- `POST /api/v1/settings` {"miner": {"overclock": {"preset": <name>}}} selects a preset
  (the web UI's own call; the preset switch retunes live).
- `GET /api/v1/summary` -> miner.power_consumption (W), miner.hr_realtime (GH/s),
  miner.chip_temp.max, miner.miner_status.miner_state.
- `POST /api/v1/mining/pause` / `resume`.
Vnish's percent throttle is not in that document, so presets (stepped) are what this driver
controls; the miner's `profiles_w` must name presets the firmware offers.
"""

from __future__ import annotations

import re
from typing import Any

from controller.miners.base import (
    AuthExpired,
    Control,
    FirmwareRefused,
    MinerDriver,
    State,
    Telemetry,
)
from controller.miners.transport import HttpJson

_WATTS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:w|watt)?", re.IGNORECASE)


def preset_watts(preset: dict[str, Any]) -> float | None:
    """A preset's power: its name ("1100") or the start of its pretty text ("1100 watt")."""
    for key in ("name", "pretty"):
        m = _WATTS.match(str(preset.get(key, "")))
        if m:
            return float(m.group(1))
    return None


class VnishDriver(MinerDriver):
    api = "vnish"
    control = Control.STEPPED
    has_auth = True
    document = "VNish API reference (/api/v1, Vnish 1.2.x)"

    def __init__(self, cfg: Any, *, host: str, port: int, password: str, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.http = HttpJson(host, port, self.timeout_s)
        self.password = password
        self._token: str | None = None
        self._presets: dict[float, str] = {}

    async def _login(self) -> None:
        self._token = None
        reply = await self.http.request("POST", "/api/v1/unlock", {"pw": self.password})
        token = reply["token"]
        if not isinstance(token, str) or not token:
            raise ValueError("unlock reply has no token")
        self._token = token

    async def _req(self, method: str, path: str, body: Any = None) -> Any:
        if self._token is None:
            await self._login()
        try:
            return await self.http.request(method, path, body,
                                           {"Authorization": f"Bearer {self._token}"})
        except AuthExpired:
            self._token = None
            raise

    async def _prepare(self) -> None:
        presets = await self._req("GET", "/api/v1/autotune/presets")
        self._presets = {}
        for p in presets:
            w = preset_watts(p)
            if w is not None:
                self._presets[w] = str(p["name"])
        assert self.caps.levels_w is not None
        missing = [lv for lv in self.caps.levels_w if lv not in self._presets]
        if missing:
            raise FirmwareRefused(f"profiles_w {missing} have no matching Vnish preset "
                                  f"(firmware offers {sorted(self._presets)} W)")

    async def _read(self) -> Telemetry:
        m = (await self._req("GET", "/api/v1/summary"))["miner"]
        perf = await self._req("GET", "/api/v1/perf-summary")
        state_txt = str(m["miner_status"]["miner_state"])
        state = {"mining": State.RUNNING, "running": State.RUNNING, "starting": State.BOOTING,
                 "initializing": State.BOOTING, "auto-tuning": State.RUNNING,
                 "stopped": State.PAUSED, "paused": State.PAUSED,
                 "overheated": State.OVERHEAT, "failure": State.OVERHEAT}.get(state_txt)
        if state is None:
            raise ValueError(f"unknown miner_state {state_txt!r}")
        ghs = float(m["hr_realtime"])
        temp = (m.get("chip_temp") or {}).get("max")
        cur = perf.get("current_preset") or {}
        detail = str(m["miner_status"].get("description", "")) if state is State.OVERHEAT else ""
        return Telemetry(state, float(m["power_consumption"]), ghs / 1000.0,
                         float(temp) if temp is not None else None, preset_watts(cur), detail)

    async def _write_target(self, target_w: float) -> None:
        if not self._presets:
            await self._prepare()
        name = self._presets.get(target_w)
        if name is None:
            raise FirmwareRefused(f"no Vnish preset for {target_w:.0f} W")
        await self._req("POST", "/api/v1/settings", {"miner": {"overclock": {"preset": name}}})

    async def _pause(self) -> None:
        await self._req("POST", "/api/v1/mining/pause")

    async def _resume(self) -> None:
        await self._req("POST", "/api/v1/mining/resume")

    async def close(self) -> None:
        await self.http.close()
