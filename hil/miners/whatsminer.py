"""Whatsminer API v3 emulator (TCP, length-prefixed JSON), per the V3.0.x document.

Salted tokens: `rotate_salt()` makes every token computed with the old salt fail with
code -2 ("invalid token"): the driver must fetch the salt again. Percent outside 0..100,
or a power outside the firmware range, is refused with code -1.

`set.miner.power_percent` takes {"percent": "<n>", "mode": ...} with the percent as a
string (the firmware reads cJSON's valuestring; MicroBT's own example sends a string); a
number is refused. `param` may also arrive JSON-encoded as a string, as MicroBT's example
sends it. The percent write changes the percent (`get.miner.setting` -> power-percent) and
the power drawn, never `power-limit` (a separate cap).
`get.device.info` without a parameter answers the whole device (miner type, firmware,
network), with "salt" only the salt, as pyasic's identification and BTMinerV3 expect.
The legacy cgminer-style API on 4028 (`rpc`: version, get_version, devdetails, summary) is
what pyasic probes to identify the firmware (`MinerFactory._get_miner_socket`, version
> 2024.11 selects its API v3 backend).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from controller.miners.whatsminer import make_token
from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming, LengthPrefixFraming, RpcSidecar

MODEL = "M30S+_VE40"
FIRMWARE = "20250214.16.REL"


class WhatsminerLegacyRpc(CgminerFraming):
    """The read-only API on TCP 4028 that v3 firmware still answers (identification)."""

    def __init__(self, miner: EmulatedMiner) -> None:
        super().__init__(miner)

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        st = self.status("S", 131 if cmd == "get_version" else 11, cmd, "btminer")
        if cmd == "version":
            return {"STATUS": st, "VERSION": [{"API": "3.0.1", "Miner": "btminer",
                                              "Type": MODEL}], "id": 1}
        if cmd == "get_version":
            return {"STATUS": "S", "When": int(time.time()), "Code": 131,
                    "Msg": {"api_ver": "whatsminer v3.0.1", "fw_ver": FIRMWARE},
                    "Description": "btminer"}
        if cmd == "devdetails":
            return {"STATUS": st, "DEVDETAILS": [
                {"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro",
                 "Kernel": "", "Model": MODEL} for i in range(3)], "id": 1}
        if cmd == "summary":
            return {"STATUS": st, "SUMMARY": [{"Elapsed": 100,
                                               "MHS 5s": m.hashrate_ths * 1e6,
                                               "Power": round(m.power_w)}], "id": 1}
        return {"STATUS": self.status("E", 14, "Invalid API command", "btminer"), "id": 1}


class WhatsminerEmulator(RpcSidecar, LengthPrefixFraming):
    def __init__(self, miner: EmulatedMiner, account: str = "super",
                 password: str = "super", rated_power_w: float | None = None) -> None:
        super().__init__(miner)
        self.account, self.password = account, password
        self.rated_power_w = rated_power_w or miner.cfg.max_power_w
        self.salt = secrets.token_hex(4)
        self.salt_requests = 0
        self.power_limit_w = self.rated_power_w  # set.miner.power_limit's cap, not the percent
        self.rpc = WhatsminerLegacyRpc(miner)


    @property
    def percent(self) -> int:
        """The percent the firmware holds (after thermal protection: its reduced one)."""
        return round(100 * self.miner.target_w / self.rated_power_w)

    def _device_info(self) -> dict[str, Any]:
        return {
            "network": {"mac": "C6:07:20:00:00:01", "hostname": "WhatsMiner-emu",
                        "ip": "127.0.0.1", "proto": "dhcp"},
            "miner": {"type": MODEL, "miner-sn": "EMU0000000000001", "hash-board": "V1",
                      "working": "true"},
            "system": {"api": "3.0.1", "platform": "H6OS", "fwversion": FIRMWARE,
                       "ledstatus": "auto"},
            "power": {"type": "P221B", "sn": "EMUPSU0001", "fanspeed": 5000},
            "hardware": {"boards": 3},
        }

    def rotate_salt(self) -> None:
        self.salt = secrets.token_hex(4)

    @staticmethod
    def reply(code: int, msg: Any, desc: str) -> dict[str, Any]:
        return {"code": code, "when": int(time.time()), "msg": msg, "desc": desc}

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("cmd", ""))
        param = req.get("param")
        m = self.miner
        if cmd == "get.device.info":
            if param == "salt":
                self.salt_requests += 1
                return self.reply(0, {"salt": self.salt}, cmd)
            info = self._device_info()
            if param is None or param == "":
                return self.reply(0, info, cmd)
            if param in info:
                return self.reply(0, {param: info[param]}, cmd)
            return self.reply(-1, f"invalid param {param!r}", cmd)
        if cmd == "get.miner.setting":
            return self.reply(0, {"power-percent": self.percent,
                                  "power-limit": round(self.power_limit_w),
                                  "power-mode": "normal", "heat-mode": "normal"}, cmd)
        if cmd == "get.miner.status" and param in ("summary", "edevs"):
            phase = m.phase
            state = ("overheat" if m.overheated else "running" if phase == "running"
                     else "starting" if phase == "booting" else "stopped")
            temp = round(m.temp_c, 1)
            if param == "edevs":
                return self.reply(0, {"edevs": [
                    {"id": i, "slot": i, "hash-average": round(m.hashrate_ths / 3, 3),
                     "chip-temp-min": temp, "chip-temp-avg": temp, "chip-temp-max": temp,
                     "effective-chips": 156} for i in range(3)]}, cmd)
            return self.reply(0, {"summary": {
                "elapsed": 100, "power-realtime": round(m.power_w),
                "hash-realtime": round(m.hashrate_ths, 3), "chip-temp-avg": temp,
                "chip-temp-min": temp, "chip-temp-max": temp,
                "power-limit": round(self.power_limit_w), "miner-state": state}}, cmd)
        if cmd.startswith("get."):
            return self.reply(-1, "invalid command", cmd)
        if not cmd.startswith("set."):
            return self.reply(-1, "unknown command", cmd)
        ts = req.get("ts")
        if (req.get("account") != self.account or not isinstance(ts, int)
                or abs(ts - time.time()) > 60
                or req.get("token") != make_token(cmd, self.password, self.salt, ts)):
            return self.reply(-2, "invalid token", cmd)
        if cmd == "set.miner.power_percent":
            if isinstance(param, str):  # MicroBT's example sends the object JSON-encoded
                try:
                    param = json.loads(param)
                except ValueError:
                    return self.reply(-1, "invalid param", cmd)
            if not isinstance(param, dict):
                return self.reply(-1, "invalid param", cmd)
            raw = param.get("percent")
            if not isinstance(raw, str):  # read as cJSON valuestring: a number is NULL
                return self.reply(-1, "invalid percent", cmd)
            try:
                pct = int(raw)
            except ValueError:
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
