"""One emulator for a miner's `driver` table: what `hearth emulate` and the emulated site use.

The emulator is chosen by the table's `api`; credentials come from the table (a literal
`password`) or the emulator's factory default, so the same site file drives both the
emulator and `hearth run`. Tasmota needs an MQTT broker and is not started here.
"""

from __future__ import annotations

from typing import Any

from controller.miners.axeos import PowerCurve
from hil.miners.avalon import AvalonEmulator
from hil.miners.axeos import AxeOsEmulator
from hil.miners.braiins import BraiinsEmulator
from hil.miners.cgminer import CgminerEmulator
from hil.miners.core import EmulatedMiner
from hil.miners.luxos import LuxosEmulator
from hil.miners.servers import Emulator
from hil.miners.shelly import ShellyEmulator
from hil.miners.vnish import VnishEmulator
from hil.miners.whatsminer import WhatsminerEmulator

# The factory defaults of each firmware's login (what a fresh miner accepts)
DEFAULT_PASSWORDS = {"braiins-os": "root", "whatsminer": "super", "vnish": "admin"}
EMULATED_APIS = ("braiins-os", "axeos", "whatsminer", "vnish", "luxos", "avalon", "shelly",
                 "cgminer")


def emulator_for(api: str, miner: EmulatedMiner, driver: dict[str, Any]) -> Emulator:
    """The emulator speaking `api` for this miner (ValueError names what is missing)."""
    pw = driver.get("password")
    password = str(pw) if pw is not None else DEFAULT_PASSWORDS.get(api, "")
    if api == "braiins-os":
        return BraiinsEmulator(miner, username=str(driver.get("username", "root")),
                               password=password)
    if api == "axeos":
        curve = str(driver.get("curve", "bitaxe-gamma"))
        board = "nerdqaxe-plus-plus" if "nerdqaxe" in curve else "bitaxe-gamma"
        return AxeOsEmulator(miner, PowerCurve.load(curve), board=board)
    if api == "whatsminer":
        rated = driver.get("rated_power_w")
        return WhatsminerEmulator(miner, account=str(driver.get("account", "super")),
                                  password=password,
                                  rated_power_w=float(rated) if rated is not None else None)
    if api == "vnish":
        return VnishEmulator(miner, password=password)
    if api == "luxos":
        return LuxosEmulator(miner)
    if api == "avalon":
        return AvalonEmulator(miner, level_command=str(driver.get("level_command",
                                                                 "workmode")))
    if api == "shelly":
        return ShellyEmulator(miner, switch_id=int(driver.get("switch_id", 0)))
    if api == "cgminer":
        return CgminerEmulator(miner)
    raise ValueError(f"no emulator for miner API {api!r} here (one of "
                     f"{', '.join(EMULATED_APIS)}; tasmota needs an MQTT broker)")
