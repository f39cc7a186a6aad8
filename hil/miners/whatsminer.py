"""Whatsminer API v3 emulator (TCP, length-prefixed JSON), per the V3.0.x document.

Salted tokens: `rotate_salt()` makes every token computed with the old salt fail with
code -2 ("invalid token"): the driver must fetch the salt again. Percent outside 0..100,
or a power outside the firmware range, is refused with code -1.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from controller.miners.whatsminer import make_token
from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import LengthPrefixFraming


class WhatsminerEmulator(LengthPrefixFraming):
    def __init__(self, miner: EmulatedMiner, account: str = "super",
                 password: str = "super", rated_power_w: float | None = None) -> None:
        super().__init__(miner)
        self.account, self.password = account, password
        self.rated_power_w = rated_power_w or miner.cfg.max_power_w
        self.salt = secrets.token_hex(4)
        self.salt_requests = 0

    def rotate_salt(self) -> None:
        self.salt = secrets.token_hex(4)

    @staticmethod
    def reply(code: int, msg: Any, desc: str) -> dict[str, Any]:
        return {"code": code, "when": int(time.time()), "msg": msg, "desc": desc}

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("cmd", ""))
        param = req.get("param")
        m = self.miner
        if cmd == "get.device.info" and param == "salt":
            self.salt_requests += 1
            return self.reply(0, {"salt": self.salt}, cmd)
        if cmd == "get.miner.status" and param == "summary":
            phase = m.phase
            state = ("overheat" if m.overheated else "running" if phase == "running"
                     else "starting" if phase == "booting" else "stopped")
            return self.reply(0, {"summary": {
                "elapsed": 100, "power-realtime": round(m.power_w),
                "hash-realtime": round(m.hashrate_ths, 3), "chip-temp-avg": round(m.temp_c, 1),
                "power-limit": round(m.target_w), "miner-state": state}}, cmd)
        if not cmd.startswith("set."):
            return self.reply(-1, "unknown command", cmd)
        ts = req.get("ts")
        if (req.get("account") != self.account or not isinstance(ts, int)
                or abs(ts - time.time()) > 60
                or req.get("token") != make_token(cmd, self.password, self.salt, ts)):
            return self.reply(-2, "invalid token", cmd)
        if cmd == "set.miner.power_percent":
            if not isinstance(param, dict):
                return self.reply(-1, "param must be an object", cmd)
            try:
                pct = int(param["percent"])  # firmware reads a string or a number
            except (KeyError, TypeError, ValueError):
                return self.reply(-1, "invalid percent", cmd)
            if not 0 <= pct <= 100 or param.get("mode", "normal") not in ("fast", "normal"):
                return self.reply(-1, "invalid percent or mode", cmd)
            try:
                m.set_target(self.rated_power_w * pct / 100)
            except FirmwareRejected as err:
                return self.reply(-1, str(err), cmd)
            return self.reply(0, "ok", cmd)
        if cmd == "set.miner.service":
            if param == "stop":
                m.pause()
            elif param == "start":
                m.resume()
            else:
                return self.reply(-1, f"invalid service action {param!r}", cmd)
            return self.reply(0, "ok", cmd)
        return self.reply(-1, "unknown command", cmd)
