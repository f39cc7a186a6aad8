"""Canaan Avalon Nano / Mini / Q over the cgminer API on TCP 4028: levels, soft off/on.

Sources:
- "Avalon Crypto Miner API Documentation" (LW10583/AvalonMinerTools
  `AVALON_MINER_API_DOCUMENTATION.md`, tested on a Nano 3S, firmware 25021401_56abae7,
  CGMiner 4.11.1, API 3.7; covers the Avalon Q too): one JSON request per connection,
  NUL-terminated reply, fields are arrays (`SUMMARY[0]`); `ascset` "0,workmode,set,<n>",
  0 = low/eco, 1 = medium/standard, 2 = high/super; success is STATUS "I", Msg
  "ASC 0 set OK". `estats` -> STATS[0]["MM ID0"], a `Key[Value]` string: WORKMODE, SoftOFF
  (0 = active, >0 = standby), PS[...] (index 6 = output power, W), GHSspd (GH/s),
  TAvg (°C).
- pyasic (`pyasic/miners/backends/avalonminer.py`, v0.79) sends `ascset`
  "0,worklevel,set,<n>" instead, and soft off/on as "0,softoff,1:<unix ts>" /
  "0,softon,1:<unix ts>" with "success" in the reply's Msg.
Which of `workmode` / `worklevel` a given model's firmware takes is not established by any
public source for every model, so the command is a setting (`level_command`, default from
the model's profile) and, when the firmware refuses it, the other one is tried once and
kept (logged). The readback (estats WORKMODE, or WORKLEVEL where the firmware reports
it) is what confirms a level.
`profiles_w` lists the power of levels 0, 1, 2 in that order.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)
LEVEL_COMMANDS = ("workmode", "worklevel")
_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[([^\]]*)\]")


def parse_mm(text: str) -> dict[str, str]:
    """'Ver[Nano3s] WORKMODE[1] PS[0 0 1210 ...]' -> {'Ver': 'Nano3s', 'WORKMODE': '1', ...}."""
    return {k: v for k, v in _FIELD.findall(text)}


class AvalonDriver(MinerDriver):
    api = "avalon"
    control = Control.STEPPED
    document = "Avalon cgminer API documentation (Nano 3S, API 3.7)"

    def __init__(self, cfg: Any, *, host: str, port: int, level_command: str = "workmode",
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.host, self.port = host, port
        if level_command not in LEVEL_COMMANDS:
            raise ValueError(f"level_command must be one of {LEVEL_COMMANDS}")
        self.level_command = level_command
        self._level_probed = False
        self._wall = time.time

    async def _ascset(self, parameter: str) -> None:
        reply = await cgminer_request(self.host, self.port, "ascset", parameter)
        letter, code, msg = cgminer_status(reply)
        if letter not in ("S", "I"):  # cgminer answers a successful ascset with "I" (info)
            raise FirmwareRefused(f"ascset {parameter}: {msg} (code {code})")

    async def _set_level(self, level: int) -> None:
        try:
            await self._ascset(f"0,{self.level_command},set,{level}")
        except FirmwareRefused as first:
            if self._level_probed:
                raise
            self._level_probed = True
            other = next(c for c in LEVEL_COMMANDS if c != self.level_command)
            log.warning("%s: firmware refused %s (%s); trying %s", self.name,
                        self.level_command, first, other)
            await self._ascset(f"0,{other},set,{level}")
            log.warning("%s: this firmware takes '%s': set level_command = \"%s\"", self.name,
                        other, other)
            self.level_command = other
        self._level_probed = True

    async def _read(self) -> Telemetry:
        reply = await cgminer_request(self.host, self.port, "estats")
        letter, code, msg = cgminer_status(reply)
        if letter != "S":
            raise DriverError(f"estats: {msg} (code {code})")
        mm = parse_mm(str(reply["STATS"][0]["MM ID0"]))
        ps = mm["PS"].split()
        power = float(ps[6])
        ghs = float(mm["GHSspd"])
        mode = int(mm.get("WORKLEVEL", mm["WORKMODE"]))
        soft_off = int(mm.get("SoftOFF", "0")) > 0
        levels = self.caps.levels_w or ()
        target = levels[mode] if 0 <= mode < len(levels) else None
        state = State.PAUSED if soft_off else State.RUNNING if ghs > 0 else State.BOOTING
        return Telemetry(state, power, ghs / 1000.0, float(mm["TAvg"]) if "TAvg" in mm else None,
                         target)

    async def _write_target(self, target_w: float) -> None:
        levels = list(self.caps.levels_w or ())
        await self._set_level(levels.index(target_w))

    async def _pause(self) -> None:
        await self._ascset(f"0,softoff,1:{int(self._wall())}")

    async def _resume(self) -> None:
        await self._ascset(f"0,softon,1:{int(self._wall())}")
