"""Read-only cgminer/bmminer API emulator (TCP 4028): `summary` and `stats`, bmminer style."""

from __future__ import annotations

from typing import Any

from hil.miners.servers import CgminerFraming


class CgminerEmulator(CgminerFraming):
    report_power = False  # stock bmminer has no power field

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        st = self.status("S", 11, cmd, "bmminer 2.0.0")
        if cmd == "summary":
            return {"STATUS": st, "SUMMARY": [{"Elapsed": 100,
                                               "GHS 5s": round(m.hashrate_ths * 1000, 2)}],
                    "id": 1}
        if cmd == "stats":
            block: dict[str, Any] = {"STATS": 0, "ID": "BMM0", "temp_chip1": round(m.temp_c),
                                     "temp2_1": round(m.temp_c) - 5, "fan1": 4000}
            if self.report_power:
                block["Power"] = round(m.power_w)
            return {"STATUS": st, "STATS": [{"BMMiner": "2.0.0"}, block], "id": 1}
        return {"STATUS": self.status("E", 14, f"Invalid command {cmd!r}"), "id": 1}
