"""Canaan Avalon Nano / Mini over the cgminer API on TCP 4028: work-mode levels, soft off/on.

Source: "Avalon Crypto Miner API Documentation" (Gr33nDrag0n69, tested on a Nano 3S,
CGMiner 4.11.1, API 3.7):
- one JSON request per connection, reply NUL-terminated; fields are arrays (`SUMMARY[0]`).
- `ascset` "0,workmode,set,<n>": 0 = low/eco, 1 = medium, 2 = high; no restart.
- `estats` -> STATS[0]["MM ID0"], a `Key[Value]` string: WORKMODE, SoftOFF (0 = active,
  >0 = standby), PS[...] (index 6 = output power, W), GHSspd (GH/s), TAvg (°C).
- soft off/on: `ascset` "0,softoff,1:<unix ts>" / "0,softon,1:<unix ts>" (the form the
  Avalon web UI and community tools use; the standby board keeps its network up).
`profiles_w` lists the power of modes 0, 1, 2 in that order.
"""

from __future__ import annotations

import re
import time
from typing import Any

from controller.miners.base import (
    Control,
    DriverError,
    FirmwareRefused,
    MinerDriver,
    State,
    Telemetry,
)
from controller.miners.transport import cgminer_request, cgminer_status

_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[([^\]]*)\]")


def parse_mm(text: str) -> dict[str, str]:
    """'Ver[Nano3s] WORKMODE[1] PS[0 0 1210 ...]' -> {'Ver': 'Nano3s', 'WORKMODE': '1', ...}."""
    return {k: v for k, v in _FIELD.findall(text)}


class AvalonDriver(MinerDriver):
    api = "avalon"
    control = Control.STEPPED
    document = "Avalon cgminer API documentation (Nano 3S, API 3.7)"

    def __init__(self, cfg: Any, *, host: str, port: int, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.host, self.port = host, port
        self._wall = time.time

    async def _ascset(self, parameter: str) -> None:
        reply = await cgminer_request(self.host, self.port, "ascset", parameter)
        letter, code, msg = cgminer_status(reply)
        if letter not in ("S", "I"):  # cgminer answers a successful ascset with "I" (info)
            raise FirmwareRefused(f"ascset {parameter}: {msg} (code {code})")

    async def _read(self) -> Telemetry:
        reply = await cgminer_request(self.host, self.port, "estats")
        letter, code, msg = cgminer_status(reply)
        if letter != "S":
            raise DriverError(f"estats: {msg} (code {code})")
        mm = parse_mm(str(reply["STATS"][0]["MM ID0"]))
        ps = mm["PS"].split()
        power = float(ps[6])
        ghs = float(mm["GHSspd"])
        mode = int(mm["WORKMODE"])
        soft_off = int(mm.get("SoftOFF", "0")) > 0
        levels = self.caps.levels_w or ()
        target = levels[mode] if 0 <= mode < len(levels) else None
        state = State.PAUSED if soft_off else State.RUNNING if ghs > 0 else State.BOOTING
        return Telemetry(state, power, ghs / 1000.0, float(mm["TAvg"]) if "TAvg" in mm else None,
                         target)

    async def _write_target(self, target_w: float) -> None:
        levels = list(self.caps.levels_w or ())
        await self._ascset(f"0,workmode,set,{levels.index(target_w)}")

    async def _pause(self) -> None:
        await self._ascset(f"0,softoff,1:{int(self._wall())}")

    async def _resume(self) -> None:
        await self._ascset(f"0,softon,1:{int(self._wall())}")
