"""MicroBT Whatsminer over API v3 (TCP 4433, salted token): power percent, service start/stop.

Source: Whatsminer API V3.0.x (apidoc.whatsminer.com):
- framing: 4-byte little-endian length + JSON, both directions; reply {code, when, msg, desc}
  with code 0 on success.
- `get.device.info` param "salt" -> msg.salt; every `set.*` carries {ts, account, token} with
  token = first 8 chars of base64(sha256(cmd + password + salt + ts)) (pyasic
  `rpc/btminer.py` BTMinerV3RPCAPI.send_command computes the same). A rotated salt or a
  stale ts is refused: the driver fetches the salt again once (auth expiry).
- `set.miner.power_percent` param {"percent": "<n>", "mode": "fast"}: the percent is sent
  as a *string*. MicroBT's own v3 Python example (`whatsminer_interface.py`,
  set_miner_power_percent: `percent + ''`) does so, and another production client notes
  the firmware reads it with cJSON's valuestring although the document says Number.
  Fast mode changes power without restarting btminer (the v2 `set_power_pct` restarted it).
- `set.miner.service` param "stop" | "start": mining off/on with the control board alive.
- `get.miner.status` param "summary" -> msg.summary {power-realtime (W), hash-realtime
  (TH/s), chip-temp-avg (°C), power-limit, ...} (pyasic BTMinerV3 reads the same keys).
- Readback compares what the write changes: the percent. `get.miner.setting` ->
  msg["power-percent"] when the firmware reports it. `power-limit` is a separate cap
  (`set.miner.power_limit`) that a percent write leaves alone, so it only narrows the range
  (never compared with the target). Without `power-percent` the write is confirmed by its
  code 0 and the measured power (`settle`).
The percent is relative to `rated_power_w` (the power at 100 %; default max_power_w).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import replace
from typing import Any

from controller.miners.base import (
    AuthExpired,
    Capabilities,
    Control,
    DriverError,
    FirmwareRefused,
    MinerDriver,
    State,
    Telemetry,
)
from controller.miners.transport import whatsminer_request

AUTH_CODES = {-2, -3, -4}  # token/ts/salt rejected (API v3 "invalid token" family)


def make_token(cmd: str, password: str, salt: str, ts: int) -> str:
    digest = hashlib.sha256(f"{cmd}{password}{salt}{ts}".encode()).digest()
    return base64.b64encode(digest).decode("ascii")[:8]


class WhatsminerDriver(MinerDriver):
    api = "whatsminer"
    control = Control.CONTINUOUS
    has_auth = True
    document = "Whatsminer API V3.0.x (MicroBT)"

    def __init__(self, cfg: Any, *, host: str, port: int, account: str, password: str,
                 rated_power_w: float | None, mode: str = "fast", **kw: Any) -> None:
        self.rated_power_w = rated_power_w or cfg.max_power_w
        super().__init__(cfg, **kw)
        self.host, self.port = host, port
        self.account, self.password, self.mode = account, password, mode
        self._salt: str | None = None
        self._wall = time.time  # token timestamps are Unix seconds

    def _capabilities(self, min_write_interval_s: float, settle_margin_s: float) -> Capabilities:
        caps = super()._capabilities(min_write_interval_s, settle_margin_s)
        return replace(caps, resolution_w=max(caps.resolution_w, self.rated_power_w / 100))

    async def _get(self, cmd: str, param: Any = None) -> Any:
        req: dict[str, Any] = {"cmd": cmd}
        if param is not None:
            req["param"] = param
        reply = await whatsminer_request(self.host, self.port, req)
        if reply.get("code") != 0:
            raise DriverError(f"{cmd}: code {reply.get('code')}: {reply.get('msg')}")
        return reply["msg"]

    async def _login(self) -> None:
        msg = await self._get("get.device.info", "salt")
        salt = msg["salt"]
        if not isinstance(salt, str) or not salt:
            raise ValueError("get.device.info returned no salt")
        self._salt = salt

    async def _set(self, cmd: str, param: Any) -> Any:
        if self._salt is None:
            await self._login()
        assert self._salt is not None
        ts = int(self._wall())
        req = {"cmd": cmd, "param": param, "ts": ts, "account": self.account,
               "token": make_token(cmd, self.password, self._salt, ts)}
        reply = await whatsminer_request(self.host, self.port, req)
        code = reply.get("code")
        if code in AUTH_CODES:
            self._salt = None
            raise AuthExpired(f"{cmd}: code {code}: {reply.get('msg')}")
        if code != 0:
            raise FirmwareRefused(f"{cmd}: code {code}: {reply.get('msg')}")
        return reply.get("msg")

    def percent_for(self, watts: float) -> int:
        return max(0, min(100, round(100 * watts / self.rated_power_w)))

    async def _prepare(self) -> None:
        s = (await self._get("get.miner.status", "summary"))["summary"]
        limit = s.get("power-limit")
        if limit is not None and float(limit) > 0:
            self._narrow_range(None, float(limit))

    async def _percent_held(self) -> float | None:
        """The firmware's power percent (get.miner.setting), None when it does not say."""
        try:
            setting = await self._get("get.miner.setting")
        except DriverError:
            return None
        pct = setting.get("power-percent") if isinstance(setting, dict) else None
        return float(pct) if pct is not None else None

    async def _read(self) -> Telemetry:
        s = (await self._get("get.miner.status", "summary"))["summary"]
        power = float(s["power-realtime"])
        ths = float(s["hash-realtime"])
        temp = s.get("chip-temp-avg")
        pct = await self._percent_held()
        state_txt = s.get("miner-state")  # not in every firmware: derived when missing
        if state_txt is None:
            state = State.RUNNING if ths > 0 else State.BOOTING if power > 0 else State.PAUSED
        else:
            known = {"running": State.RUNNING, "starting": State.BOOTING,
                     "stopped": State.PAUSED, "overheat": State.OVERHEAT}
            if str(state_txt) not in known:
                raise ValueError(f"unknown miner-state {state_txt!r}")
            state = known[str(state_txt)]
        if state is State.RUNNING and ths <= 0:
            state = State.BOOTING
        return Telemetry(state, power, ths, float(temp) if temp is not None else None,
                         self.rated_power_w * pct / 100 if pct is not None else None,
                         "btminer stopped by thermal protection" if state is State.OVERHEAT
                         else "")

    async def _write_target(self, target_w: float) -> None:
        await self._set("set.miner.power_percent",
                        {"percent": str(self.percent_for(target_w)), "mode": self.mode})

    def _same(self, a: float, b: float) -> bool:
        return self.percent_for(a) == self.percent_for(b)

    async def _pause(self) -> None:
        await self._set("set.miner.service", "stop")

    async def _resume(self) -> None:
        await self._set("set.miner.service", "start")
