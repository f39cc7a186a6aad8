"""Avalon Nano/Mini/Q cgminer API emulator (TCP 4028): levels, soft off/on, estats, version.

Per the Avalon API document (LW10583/AvalonMinerTools, Nano 3S firmware 25021401, CGMiner
4.11.1, API 3.7): replies are arrays, NUL-terminated; `version` -> VERSION[0] {PROD,
MODEL, ...} (what pyasic identifies an Avalon by); `estats` carries an `MM ID0` string of
Key[Value] fields (WORKMODE, SoftOFF, PS, GHSspd, TAvg, TMax, MPO, WALLPOWER);
`summary` / `devs` report MHS. `level_command` is the ascset option this model's firmware
takes (`workmode` per that document, `worklevel` as pyasic sends it); the other one is
refused the way cgminer refuses an ascset ("ASC 0 set failed: ..."). Levels map to the
miner's `profiles_w` in order; a level outside 0..n-1 is refused.
"""

from __future__ import annotations

from typing import Any

from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import CgminerFraming

# (PROD, MODEL) as each model's `version` reports it (pyasic's factory keys upper-case PROD)
MODELS = {"nano3s": ("Avalon Nano3s", "Nano3s"), "mini3": ("Avalon Mini3", "Mini3"),
          "q": ("Avalon Q", "Q")}


class AvalonEmulator(CgminerFraming):
    def __init__(self, miner: EmulatedMiner, model: str = "nano3s",
                 level_command: str = "workmode") -> None:
        super().__init__(miner)
        self.levels = list(miner.cfg.profiles_w or [miner.cfg.max_power_w])
        self.prod, self.model = MODELS[model]
        self.level_command = level_command

    def _reply(self, letter: str, code: int, msg: str, **extra: Any) -> dict[str, Any]:
        return {"STATUS": self.status(letter, code, msg, "cgminer 4.11.1"), **extra, "id": 1}

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        mhs = m.hashrate_ths * 1e6
        if cmd == "version":
            return self._reply("S", 22, "CGMiner versions", VERSION=[{
                "CGMiner": "4.11.1", "API": "3.7", "PROD": self.prod, "MODEL": self.model,
                "HWTYPE": "N_MM1v1_X1", "SWTYPE": "MM319", "LVERSION": "25021401_56abae7",
                "BVERSION": "25021401_56abae7", "CGVERSION": "25021401_56abae7",
                "DNA": "020100003cbe4d15", "MAC": "e0e1a93f3053", "UPAPI": "2"}])
        if cmd == "estats":
            mode = self.levels.index(m.target_w) if m.target_w in self.levels else 0
            p = round(m.power_w)
            t = round(m.temp_c)
            mm = (f"Ver[{self.model}-emu] WORKMODE[{mode}] SoftOFF[{1 if m.paused else 0}] "
                  f"PS[0 0 1210 {p * 100 // 12} 0 1210 {p} 1100 1300] WALLPOWER[{p}] "
                  f"GHSspd[{m.hashrate_ths * 1000:.2f}] MGHS[{m.hashrate_ths * 1000:.2f}] "
                  f"TAvg[{t}] TMax[{t}] MPO[{int(self.levels[-1])}] Fan1[1800] FanR[40%]")
            return self._reply("S", 70, "CGMiner stats", STATS=[{"STATS": 0, "ID": "AVA100",
                                                               "MM ID0": mm}])
        if cmd == "summary":
            return self._reply("S", 11, "Summary", SUMMARY=[{"Elapsed": 100, "MHS 5s": mhs,
                                                            "MHS 1m": mhs, "MHS av": mhs}])
        if cmd == "devs":
            return self._reply("S", 9, "1 ASC(s)", DEVS=[{"ASC": 0, "Name": "AVA10", "ID": 0,
                                                         "Enabled": "Y", "Status": "Alive",
                                                         "MHS 5s": mhs, "MHS 1m": mhs}])
        if cmd == "ascset":
            raw = str(req.get("parameter", ""))
            parts = raw.split(",")
            if len(parts) >= 4 and parts[1] in ("workmode", "worklevel") and parts[2] == "set":
                if parts[1] != self.level_command:
                    return self._reply("E", 120, f"ASC 0 set failed: unknown option "
                                                 f"{parts[1]}")
                try:
                    level = int(parts[3])
                    if not 0 <= level < len(self.levels):
                        raise ValueError
                    m.set_target(self.levels[level])
                except (ValueError, FirmwareRejected):
                    return self._reply("E", 120, f"ASC 0 set failed: invalid {parts[1]} "
                                                 f"{parts[3]!r}")
                return self._reply("I", 119, "ASC 0 set OK")
            if len(parts) == 3 and parts[1] in ("softoff", "softon"):
                (m.pause if parts[1] == "softoff" else m.resume)()
                return self._reply("I", 119, f"ASC 0 set info: success {parts[1]}")
            return self._reply("E", 120, f"ASC 0 set failed: {raw!r}")
        return self._reply("E", 14, "Invalid command")
