"""LuxOS (Luxor firmware) over its cgminer-style API on TCP 4028 with a logon session.

Source: LuxOS API documentation (docs.luxor.tech/firmware/api) and the command table of
Luxor's own client, LuxorLabs/luxos-tooling `src/luxos/api.json` (which commands need a
session):
- `logon` -> SESSION[0].SessionID (one session at a time; Code 402 "Another session is
  active"); write commands take the session id as their first parameter; `logoff`.
- `profiles` -> PROFILES[] {"Profile Name", "Watts", ...}; `profileset` "<sid>,<name>"
  selects one live (no restart); `config` -> CONFIG[0].Profile is the active one.
- `curtail` "<sid>,sleep" | "<sid>,wakeup": stop/start hashing, control board alive.
- `power` -> POWER[0].Watts; `summary` -> SUMMARY[0]["GHS 5s"]; `temps` -> TEMPS[].Board.
An invalid/expired session is answered with STATUS "E" and a message naming the session:
the driver logs on again once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from controller.miners.base import (
    AuthExpired,
    Control,
    DriverError,
    FirmwareRefused,
    MinerDriver,
    State,
    Telemetry,
)
from controller.miners.transport import cgminer_request, cgminer_status


class LuxosDriver(MinerDriver):
    api = "luxos"
    control = Control.STEPPED
    has_auth = True
    document = "LuxOS API documentation + luxos-tooling api.json"

    def __init__(self, cfg: Any, *, host: str, port: int, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.host, self.port = host, port
        self._sid: str | None = None
        self._profiles: dict[float, str] = {}

    async def _cmd(self, command: str, parameter: str | None = None) -> dict[str, Any]:
        reply = await cgminer_request(self.host, self.port, command, parameter)
        letter, code, msg = cgminer_status(reply)
        if letter != "S":
            if "session" in msg.lower():
                self._sid = None
                raise AuthExpired(f"{command}: {msg} (code {code})")
            if command in ("profileset", "curtail"):
                raise FirmwareRefused(f"{command}: {msg} (code {code})")
            raise DriverError(f"{command}: {msg} (code {code})")
        return reply

    async def _login(self) -> None:
        reply = await cgminer_request(self.host, self.port, "logon")
        letter, code, msg = cgminer_status(reply)
        if letter != "S" or "SESSION" not in reply:
            raise DriverError(f"logon refused: {msg} (code {code})")
        self._sid = str(reply["SESSION"][0]["SessionID"])

    async def _write(self, command: str, arg: str) -> None:
        if self._sid is None:
            await self._login()
        await self._cmd(command, f"{self._sid},{arg}")

    async def _prepare(self) -> None:
        reply = await self._cmd("profiles")
        self._profiles = {float(p["Watts"]): str(p["Profile Name"]) for p in reply["PROFILES"]}
        assert self.caps.levels_w is not None
        missing = [lv for lv in self.caps.levels_w if lv not in self._profiles]
        if missing:
            raise FirmwareRefused(f"profiles_w {missing} have no LuxOS profile with those "
                                  f"watts (firmware offers {sorted(self._profiles)} W)")

    async def _read(self) -> Telemetry:
        power = float((await self._cmd("power"))["POWER"][0]["Watts"])
        summary = (await self._cmd("summary"))["SUMMARY"][0]
        cfg = (await self._cmd("config"))["CONFIG"][0]
        temps = [float(t["Board"]) for t in (await self._cmd("temps")).get("TEMPS", [])]
        if not self._profiles:
            await self._prepare()
        by_name = {v: k for k, v in self._profiles.items()}
        ths = float(summary["GHS 5s"]) / 1000.0
        curtailed = str(cfg.get("CurtailMode", "None")).lower() not in ("none", "")
        overheat = bool(cfg.get("Overheat", False))
        if overheat:
            state = State.OVERHEAT
        elif curtailed:
            state = State.PAUSED
        else:
            state = State.RUNNING if ths > 0 else State.BOOTING
        return Telemetry(state, power, ths, max(temps) if temps else None,
                         by_name.get(str(cfg.get("Profile"))),
                         "overheat: hashing stopped by the firmware" if overheat else "")

    async def _write_target(self, target_w: float) -> None:
        if not self._profiles:
            await self._prepare()
        name = self._profiles.get(target_w)
        if name is None:
            raise FirmwareRefused(f"no LuxOS profile with {target_w:.0f} W")
        await self._write("profileset", name)

    async def _pause(self) -> None:
        await self._write("curtail", "sleep")

    async def _resume(self) -> None:
        await self._write("curtail", "wakeup")

    async def close(self) -> None:
        if self._sid is not None:
            with contextlib.suppress(OSError, ValueError, DriverError):
                await cgminer_request(self.host, self.port, "logoff", self._sid)
            self._sid = None
