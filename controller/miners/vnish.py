"""Vnish (Antminer aftermarket firmware) over its REST API: autotune presets by watts.

Sources: VNish API reference (Vnish 1.2.x, `/docs` on the miner; community transcription
"VNish API Documentation" for the Antminer S19) and pyasic's client
(UpstreamData/pyasic `pyasic/web/vnish.py`, `pyasic/miners/backends/vnish.py`, v0.79):
- `POST /api/v1/unlock` {pw} -> {token}. The token goes in `Authorization` *bare* for
  `mining/*`, `settings`, `autotune/presets`, `summary`, `perf-summary`, and as
  `Bearer <token>` only for `system/*` (pyasic VNishWebAPI.send_command). 401 when it is no
  longer valid (re-unlock once).
- `GET /api/v1/autotune/presets` -> {"presets": [{name: "1100", pretty: "1100 watt ~ 53 TH",
  status: "tuned", ...}]} (a bare list on older builds): the power levels offered.
- `GET /api/v1/settings` -> {"miner": {"overclock": {"preset": <name>, ...}, ...}}; the
  preset is changed by POSTing the whole `overclock` section read back, with `preset`
  replaced: {"miner": {"overclock": {...}}} (pyasic set_power_limit). The reply is
  {"restart_required": false, ...} *even when the preset was not taken*, so the readback
  (`settings` -> miner.overclock.preset, what the write changes) is what confirms it.
- `GET /api/v1/summary` -> miner.power_usage (W; `power_consumption` in the older
  transcription), miner.hr_realtime (GH/s), miner.chip_temp.max,
  miner.miner_status.miner_state.
- `POST /api/v1/mining/pause` / `resume`.
Vnish's percent throttle is not in those sources, so presets (stepped) are what this driver
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

    @staticmethod
    def auth_header(path: str, token: str) -> str:
        """Bare token, except `Bearer` for /api/v1/system/* (as pyasic sends it)."""
        return f"Bearer {token}" if path.startswith("/api/v1/system") else token

    async def _req(self, method: str, path: str, body: Any = None) -> Any:
        if self._token is None:
            await self._login()
        assert self._token is not None
        try:
            return await self.http.request(method, path, body,
                                           {"Authorization": self.auth_header(path,
                                                                              self._token)})
        except AuthExpired:
            self._token = None
            raise

    async def _prepare(self) -> None:
        reply = await self._req("GET", "/api/v1/autotune/presets")
        presets = reply["presets"] if isinstance(reply, dict) else reply
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
        preset = (await self._req("GET", "/api/v1/settings"))["miner"]["overclock"]["preset"]
        state_txt = str(m["miner_status"]["miner_state"])
        state = {"mining": State.RUNNING, "running": State.RUNNING, "starting": State.BOOTING,
                 "initializing": State.BOOTING, "auto-tuning": State.RUNNING,
                 "stopped": State.PAUSED, "paused": State.PAUSED,
                 "overheated": State.OVERHEAT, "failure": State.OVERHEAT}.get(state_txt)
        if state is None:
            raise ValueError(f"unknown miner_state {state_txt!r}")
        ghs = float(m["hr_realtime"])
        temp = (m.get("chip_temp") or {}).get("max")
        detail = str(m["miner_status"].get("description", "")) if state is State.OVERHEAT else ""
        power = m["power_usage"] if "power_usage" in m else m["power_consumption"]
        by_name = {v: k for k, v in self._presets.items()}
        target = by_name.get(str(preset), preset_watts({"name": preset}))
        return Telemetry(state, float(power), ghs / 1000.0,
                         float(temp) if temp is not None else None, target, detail)

    async def _write_target(self, target_w: float) -> None:
        if not self._presets:
            await self._prepare()
        name = self._presets.get(target_w)
        if name is None:
            raise FirmwareRefused(f"no Vnish preset for {target_w:.0f} W")
        current = await self._req("GET", "/api/v1/settings")
        overclock = dict(current["miner"]["overclock"])
        overclock["preset"] = name
        await self._req("POST", "/api/v1/settings", {"miner": {"overclock": overclock}})

    async def _pause(self) -> None:
        await self._req("POST", "/api/v1/mining/pause")

    async def _resume(self) -> None:
        await self._req("POST", "/api/v1/mining/resume")

    async def close(self) -> None:
        await self.http.close()
