"""Helpers for the Modbus tests: emulators on loopback, device configs, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from controller.config.devices import DeviceConfig
from controller.devices.regmap import load_map
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator

# One consistent site state in our conventions (grid import +, battery charge +): the
# site exports 1234 W while the battery charges with 1500 W.
VALUES: dict[str, float] = {
    "grid_power_w": -1234.0, "grid_power_l1_w": -411.0, "grid_power_l2_w": -412.0,
    "grid_power_l3_w": -411.0, "pv_power_w": 5432.0, "pv_power_l1_w": 1810.0,
    "pv_power_l2_w": 1811.0, "pv_power_l3_w": 1811.0, "battery_power_w": 1500.0,
    "soc_pct": 63.5, "grid_voltage_l1_v": 231.2, "grid_voltage_l2_v": 230.0,
    "grid_voltage_l3_v": 229.0, "grid_frequency_hz": 50.02, "grid_current_l1_a": -1.78,
    "grid_current_l2_a": -1.79, "grid_current_l3_a": -1.8,
}


def tolerance(quantity: str) -> float:
    """What integer registers and float32 can carry: whole W and %, 0.1 V, 0.01 Hz."""
    if quantity.endswith("_w"):
        return 4.0  # Victron adds seven whole-W registers for PV
    if quantity == "soc_pct":
        return 0.51  # whole % on Victron and SMA
    return 0.06


async def serve(map_id: str, *, unit_id: int | None = None,
                values: dict[str, float] | None = None, **image_kw: Any) -> ModbusEmulator:
    dmap = load_map(map_id)
    emu = ModbusEmulator([EmulatedDevice(unit_id if unit_id is not None else dmap.unit_id,
                                         DeviceImage(dmap, **image_kw))], name=map_id)
    emu.set_values(VALUES if values is None else values)
    await emu.start_tcp("127.0.0.1", 0)
    return emu


def tcp_device(name: str, map_id: str, port: int, **kw: Any) -> DeviceConfig:
    kw.setdefault("role", "hybrid")
    kw.setdefault("timeout_s", 1.0)
    return DeviceConfig(name=name, map=map_id, host="127.0.0.1", port=port, **kw)


async def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0,
                   what: str = "condition") -> float:
    """Poll `cond` until true; returns the seconds it took. No fixed sleeps in tests."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0
