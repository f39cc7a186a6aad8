"""Read-only cgminer/bmminer API emulator (TCP 4028): stock Antminer bmminer.

`version` names the model (VERSION[0].Type, what pyasic identifies an Antminer by),
`summary` "GHS 5s", `stats` STATS[0] the type, STATS[1] the chains: temp<i> (chip),
temp2_<i> (board), chain_rate<i> (GH/s), chain_acn<i> (chips), as bmminer reports them
(the keys pyasic's BMMiner backend reads). `bmminer_stats` is shared with the Vnish
emulator's 4028 API, which is bmminer underneath.
"""

from __future__ import annotations

from typing import Any

from hil.miners.core import EmulatedMiner
from hil.miners.servers import CgminerFraming


def bmminer_stats(m: EmulatedMiner, model: str, power: bool) -> list[dict[str, Any]]:
    """STATS[0] (type) and STATS[1] (three chains, one temperature) of a bmminer reply."""
    t = round(m.temp_c)
    ghs = m.hashrate_ths * 1000
    block: dict[str, Any] = {"STATS": 0, "ID": "BMM0", "Elapsed": 100, "fan1": 4000,
                             "fan2": 4000, "miner_count": 3}
    for i in (1, 2, 3):
        block |= {f"temp{i}": t, f"temp2_{i}": t, f"temp_chip{i}": f"{t}-{t}-{t}-{t}",
                  f"chain_rate{i}": round(ghs / 3, 2), f"chain_acn{i}": 63,
                  f"chain_acs{i}": "oooooooo oooooooo"}
    if power:
        block["Power"] = round(m.power_w)
    return [{"BMMiner": "2.0.0", "Miner": "uart_trans.1.3", "Type": model}, block]


class CgminerEmulator(CgminerFraming):
    report_power = False  # stock bmminer has no power field

    def __init__(self, miner: EmulatedMiner, model: str = "Antminer S9") -> None:
        super().__init__(miner)
        self.model = model

    async def handle(self, req: Any) -> Any:
        cmd = str(req.get("command", ""))
        m = self.miner
        st = self.status("S", 11, cmd, "bmminer 2.0.0")
        if cmd == "version":
            return {"STATUS": st, "VERSION": [{"BMMiner": "2.0.0", "API": "3.1",
                                              "Miner": "16.8.1.3", "Type": self.model}],
                    "id": 1}
        if cmd == "summary":
            return {"STATUS": st, "SUMMARY": [{"Elapsed": 100,
                                               "GHS 5s": round(m.hashrate_ths * 1000, 2),
                                               "GHS av": round(m.hashrate_ths * 1000, 2)}],
                    "id": 1}
        if cmd == "stats":
            return {"STATUS": st, "STATS": bmminer_stats(m, self.model, self.report_power),
                    "id": 1}
        return {"STATUS": self.status("E", 14, "Invalid command"), "id": 1}
