"""Avalon Nano/Mini cgminer API emulator (TCP 4028): work modes, soft off/on, estats.

Per the Avalon API documentation (Nano 3S, API 3.7): replies are arrays, NUL-terminated;
`estats` carries an `MM ID0` string of Key[Value] fields; `ascset 0,workmode,set,<n>`.
Modes map to the miner's `profiles_w` in order; a mode outside 0..n-1 is refused.
"""

from __future__ import annotations

from typing import Any

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming


class AvalonEmulator(CgminerFraming):
    def __init__(self, miner: EmulatedMiner) -> None:
        super().__init__(miner)
        self.levels = list(miner.cfg.profiles_w or [miner.cfg.max_power_w])

    def _reply(self, letter: str, code: int, msg: str, **extra: Any) -> dict[str, Any]:
        return {"STATUS": self.status(letter, code, msg, "cgminer 4.11.1"), **extra, "id": 1}

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        if cmd == "estats":
            mode = self.levels.index(m.target_w) if m.target_w in self.levels else 0
            p = round(m.power_w)
            mm = (f"Ver[Nano3s-emu] WORKMODE[{mode}] SoftOFF[{1 if m.paused else 0}] "
                  f"PS[0 0 1210 {p * 100 // 12} 0 1210 {p} 1100 1300] "
                  f"GHSspd[{m.hashrate_ths * 1000:.2f}] TAvg[{m.temp_c:.0f}] "
                  f"MPO[{int(self.levels[-1])}]")
            return self._reply("S", 70, "CGMiner stats", STATS=[{"STATS": 0, "ID": "AVA100",
                                                               "MM ID0": mm}])
        if cmd == "summary":
            return self._reply("S", 11, "Summary", SUMMARY=[{"MHS 5s": m.hashrate_ths * 1e6}])
        if cmd == "ascset":
            parts = str(req.get("parameter", "")).split(",")
            if len(parts) >= 4 and parts[1] == "workmode" and parts[2] == "set":
                try:
                    mode = int(parts[3])
                    if not 0 <= mode < len(self.levels):
                        raise ValueError
                    m.set_target(self.levels[mode])
                except (ValueError, FirmwareRejected):
                    return self._reply("E", 119, f"ASC 0 set failed: invalid workmode "
                                                 f"{parts[3]!r}")
                return self._reply("I", 119, "ASC 0 set OK")
            if len(parts) == 3 and parts[1] in ("softoff", "softon"):
                (m.pause if parts[1] == "softoff" else m.resume)()
                return self._reply("I", 119, "ASC 0 set OK")
            return self._reply("E", 120, f"ASC 0 set failed: {req.get('parameter')!r}")
        return self._reply("E", 14, f"Invalid command {cmd!r}")
