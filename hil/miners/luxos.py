"""LuxOS API emulator (TCP 4028, cgminer framing) with logon sessions.

One session at a time (`logon` while one is active -> Code 402 "Another session is
active"); `expire_session()` invalidates it so the next write is answered "Invalid session
id" and the driver must log on again. Profiles come from the miner's `profiles_w`.
`version` names LUXminer and the model (pyasic identifies LuxOS by it, and takes the
model from VERSION[0].Type); `stats` carries the chains as pyasic's LUXMiner backend reads
them (STATS[1]: chain_rate<i>, chain_acn<i>, temp_chip<i> / temp_pcb<i> as "a-b-c-d").
"""

from __future__ import annotations

import secrets
from typing import Any

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming


class LuxosEmulator(CgminerFraming):
    def __init__(self, miner: EmulatedMiner, model: str = "Antminer S9") -> None:
        super().__init__(miner)
        self.model = model
        self.session: str | None = None
        levels = miner.cfg.profiles_w or [miner.cfg.max_power_w]
        self.profiles = {f"{int(w)}W": float(w) for w in levels}
        self.curtailed = False

    def expire_session(self) -> None:
        self.session = None

    def _ok(self, msg: str, **extra: Any) -> dict[str, Any]:
        return {"STATUS": self.status("S", 0, msg, "LUXminer emulator"), "id": 1, **extra}

    def _err(self, code: int, msg: str) -> dict[str, Any]:
        return {"STATUS": self.status("E", code, msg, "LUXminer emulator"), "id": 1}

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        params = str(req.get("parameter", "")).split(",") if req.get("parameter") else []
        m = self.miner
        if cmd == "logon":
            if self.session is not None:
                return self._err(402, "Another session is active")
            self.session = secrets.token_hex(4)
            return self._ok("Session created", SESSION=[{"SessionID": self.session}])
        if cmd == "logoff":
            if params and params[0] == self.session:
                self.session = None
            return self._ok("Session terminated")
        if cmd in ("profileset", "curtail"):
            if not params or params[0] != self.session or self.session is None:
                return self._err(400, "Invalid session id")
            arg = params[1] if len(params) > 1 else ""
            if cmd == "profileset":
                if arg not in self.profiles:
                    return self._err(401, f"Profile {arg!r} not found")
                try:
                    m.set_target(self.profiles[arg])
                except FirmwareRejected as err:
                    return self._err(401, str(err))
                return self._ok(f"Profile set to {arg}")
            if arg == "sleep":
                self.curtailed = True
                m.pause()
            elif arg == "wakeup":
                self.curtailed = False
                m.resume()
            else:
                return self._err(401, f"Invalid curtail mode {arg!r}")
            return self._ok(f"Curtail {arg}")
        if cmd == "profiles":
            return self._ok("Profiles", PROFILES=[
                {"Profile Name": n, "Watts": w, "Hashrate": round(m.cfg.hashrate_ths_at(w), 2),
                 "Frequency": 0, "Voltage": 0, "Step": "0"} for n, w in self.profiles.items()])
        if cmd == "power":
            return self._ok("Power", POWER=[{"Watts": round(m.power_w), "PSU": True}])
        if cmd == "summary":
            return self._ok("Summary", SUMMARY=[{"Elapsed": 100,
                                                 "GHS 5s": m.hashrate_ths * 1000}])
        if cmd == "config":
            name = next((n for n, w in self.profiles.items() if w == m.target_w), "")
            return self._ok("Config", CONFIG=[{"Profile": name, "Overheat": m.overheated,
                                               "CurtailMode": "Sleep" if self.curtailed
                                               else "None"}])
        if cmd == "version":
            return self._ok("LUXminer versions", VERSION=[{
                "API": "3.7", "LUXminer": "2025.1.10.173927-4e2c1e3a", "Miner": "2025.1.10",
                "Type": self.model}])
        if cmd == "stats":
            t = round(m.temp_c)
            chains: dict[str, Any] = {"Elapsed": 100}
            for i in (1, 2, 3):
                chains |= {f"chain_rate{i}": round(m.hashrate_ths * 1000 / 3, 2),
                           f"chain_acn{i}": 63, f"temp_chip{i}": f"{t}-{t}-{t}-{t}",
                           f"temp_pcb{i}": f"{t}-{t}-{t}-{t}"}
            return self._ok("Stats", STATS=[{"STATS": 0, "ID": "LUX0", "Type": self.model},
                                            chains])
        if cmd == "temps":
            return self._ok("Temps", TEMPS=[{"ID": 0, "Board": round(m.temp_c, 1)}])
        return self._err(14, f"Invalid command {cmd!r}")
