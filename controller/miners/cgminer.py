"""Read-only cgminer/bmminer telemetry (TCP 4028): hash rate, temperature, power if reported.

Source: cgminer API-README (ckolivas/cgminer, "API-README"): JSON request
{"command": "summary"} / {"command": "stats"}, reply with STATUS[0].STATUS "S" and
SUMMARY[0] ("MHS 5s" in cgminer, "GHS 5s" in bmminer) and STATS[] (bmminer adds temp_chip*/
temp2_* and, on some builds, chain power). Stock Antminer firmware has no power target,
so this driver never writes: it is telemetry for everything else, alone (monitoring) or
beside a relay. Without a power field, power is estimated from hash rate and the miner's
efficiency curve and flagged `power_estimated`.
"""

from __future__ import annotations

from typing import Any

from controller.miners.base import Control, DriverError, MinerDriver, State, Telemetry
from controller.miners.transport import cgminer_request, cgminer_status

POWER_KEYS = ("Power", "power", "chain_power", "Chain Power")


async def cgminer_telemetry(host: str, port: int) -> tuple[float, float | None, float | None]:
    """(TH/s, max temperature °C or None, power W or None) from summary + stats."""
    s = await cgminer_request(host, port, "summary")
    letter, code, msg = cgminer_status(s)
    if letter != "S":
        raise DriverError(f"summary: {msg} (code {code})")
    summ = s["SUMMARY"][0]
    ths = float(summ["GHS 5s"]) / 1000.0 if "GHS 5s" in summ else float(summ["MHS 5s"]) / 1000000.0
    st = await cgminer_request(host, port, "stats")
    temps: list[float] = []
    power: float | None = None
    for block in st.get("STATS", []):
        for k, v in block.items():
            if (k.startswith(("temp_chip", "temp2_", "temp_max"))
                    and isinstance(v, int | float) and 0 < v < 150):
                temps.append(float(v))
            if k in POWER_KEYS and isinstance(v, int | float):
                power = float(v)
    return ths, (max(temps) if temps else None), power


class CgminerDriver(MinerDriver):
    api = "cgminer"
    control = Control.READ_ONLY
    document = "cgminer API-README (summary, stats)"

    def __init__(self, cfg: Any, *, host: str, port: int, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.host, self.port = host, port

    async def _read(self) -> Telemetry:
        ths, temp, power = await cgminer_telemetry(self.host, self.port)
        estimated = power is None
        if power is None:
            power = ths * self.cfg.j_per_th_at(self.cfg.max_power_w) if ths > 0 else 0.0
        return Telemetry(State.RUNNING if ths > 0 else State.BOOTING, power, ths, temp, None,
                         "", estimated)
