"""Test rigs for the miner drivers: an emulator on a real socket + the driver built from a
site file by the factory. Also a Mosquitto the tests start themselves (Tasmota).

Miner dynamics are sped up (fast ramps, sub-second boots) so the whole contract suite runs
in seconds; the declared settle time is derived from the same numbers, so "converges
within the declared settle time" keeps its meaning.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.config.load import parse_site
from controller.config.models import MinerConfig, SiteConfig
from controller.miners.axeos import PowerCurve
from controller.miners.base import MinerDriver
from controller.miners.factory import build_drivers
from hil.miners.avalon import AvalonEmulator
from hil.miners.axeos import AxeOsEmulator
from hil.miners.braiins import BraiinsEmulator
from hil.miners.cgminer import CgminerEmulator
from hil.miners.core import EmulatedMiner
from hil.miners.luxos import LuxosEmulator
from hil.miners.servers import Emulator
from hil.miners.shelly import ShellyEmulator
from hil.miners.tasmota import TasmotaEmulator
from hil.miners.vnish import VnishEmulator
from hil.miners.whatsminer import WhatsminerEmulator

CONTROL_APIS = ("braiins-os", "axeos", "whatsminer", "vnish", "luxos", "avalon", "shelly",
                "tasmota")
AUTH_APIS = ("braiins-os", "whatsminer", "vnish", "luxos")
OVERHEAT_APIS = ("braiins-os", "axeos", "whatsminer", "vnish", "luxos")
TEST_TIMEOUT_S = 0.6  # driver timeout in tests: hung sockets are detected fast

_EFF = [{"power_w": 600, "j_per_th": 30}, {"power_w": 1500, "j_per_th": 34}]
MINERS: dict[str, dict[str, Any]] = {
    "continuous": {"kind": "test-asic", "actuation": "power_target", "min_power_w": 600,
                   "max_power_w": 1400, "idle_power_w": 40, "efficiency": _EFF,
                   "ramp_w_per_s": 2000, "restart_s": 0.3, "stop_s": 0.1,
                   "target_resolution_w": 10},
    "bitaxe": {"kind": "bitaxe-gamma", "actuation": "power_target", "min_power_w": 9,
               "max_power_w": 22, "idle_power_w": 2,
               "efficiency": [{"power_w": 9, "j_per_th": 15.5}, {"power_w": 22, "j_per_th": 19}],
               "ramp_w_per_s": 40, "restart_s": 0.3, "stop_s": 0.1, "target_resolution_w": 1},
    "whatsminer": {"kind": "m30s", "actuation": "power_target", "min_power_w": 1000,
                   "max_power_w": 3000, "idle_power_w": 60, "efficiency": _EFF,
                   "ramp_w_per_s": 5000, "restart_s": 0.3, "stop_s": 0.1,
                   "target_resolution_w": 30},
    "stepped": {"kind": "s19-profiles", "actuation": "profiles", "min_power_w": 1100,
                "max_power_w": 1500, "profiles_w": [1100, 1300, 1500], "idle_power_w": 50,
                "efficiency": _EFF, "ramp_w_per_s": 2000, "restart_s": 0.3, "stop_s": 0.1},
    "avalon": {"kind": "avalon-nano3s", "actuation": "profiles", "min_power_w": 70,
               "max_power_w": 140, "profiles_w": [70, 100, 140], "idle_power_w": 8,
               "efficiency": [{"power_w": 70, "j_per_th": 23}, {"power_w": 140, "j_per_th": 22}],
               "ramp_w_per_s": 300, "restart_s": 0.3, "stop_s": 0.1},
    "relay": {"kind": "s9-stock", "actuation": "relay", "min_power_w": 1300,
              "max_power_w": 1300, "idle_power_w": 60, "efficiency": _EFF,
              "ramp_w_per_s": 4000, "restart_s": 0.4, "stop_s": 0.1, "min_on_s": 0,
              "min_off_s": 0},
}
MINER_FOR_API = {"braiins-os": "continuous", "axeos": "bitaxe", "whatsminer": "whatsminer",
                 "vnish": "stepped", "luxos": "stepped", "avalon": "avalon", "shelly": "relay",
                 "tasmota": "relay", "cgminer": "relay"}


def site_raw(miners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "site": {"id": "miner-test", "grid_import_limit_w": 10000, "grid_export_limit_w": 8000,
                 "main_fuse_a": 25},
        "pv": {"peak_w": 8000, "inverter_max_w": 8000},
        "miners": miners,
    }


def site(miners: list[dict[str, Any]]) -> SiteConfig:
    return parse_site(site_raw(miners), "test-site")


def miner_entry(name: str, kind: str, driver: dict[str, Any], **over: Any) -> dict[str, Any]:
    m = {"name": name, **MINERS[kind], "heats_tank": False, "driver": driver}
    m.update(over)
    return m


@dataclass
class Rig:
    api: str
    miner: EmulatedMiner
    emulator: Emulator
    driver: MinerDriver
    cfg: MinerConfig
    expire_auth: Callable[[], None] | None = None
    extra: list[Emulator] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mosquitto:
    """A broker of our own on a free loopback port, with its own config file."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\n")
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read()!r}"
                                   if self.proc.stderr else "mosquitto exited")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def make_emulator(api: str, miner: EmulatedMiner, broker_port: int | None = None,
                        ) -> tuple[Emulator, dict[str, Any], Callable[[], None] | None]:
    """Start the emulator for an API; returns it, the driver table, and the auth expirer."""
    host = "127.0.0.1"
    emu: Emulator
    expire: Callable[[], None] | None = None
    if api == "braiins-os":
        b = BraiinsEmulator(miner, password="secret")
        emu, expire = b, b.expire_tokens
        extra: dict[str, Any] = {"password": "secret"}
    elif api == "axeos":
        emu, extra = AxeOsEmulator(miner, PowerCurve.load("bitaxe-gamma")), {
            "min_write_interval_s": 0}
    elif api == "whatsminer":
        w = WhatsminerEmulator(miner, password="pw")
        emu, expire, extra = w, w.rotate_salt, {"password": "pw"}
    elif api == "vnish":
        v = VnishEmulator(miner, password="admin")
        emu, expire, extra = v, v.expire_tokens, {"password": "admin"}
    elif api == "luxos":
        lx = LuxosEmulator(miner)
        emu, expire, extra = lx, lx.expire_session, {}
    elif api == "avalon":
        emu, extra = AvalonEmulator(miner), {}
    elif api == "shelly":
        emu, extra = ShellyEmulator(miner), {}
    elif api == "tasmota":
        assert broker_port is not None
        emu = TasmotaEmulator(miner, broker_port, topic=f"plug{free_port()}")
        await emu.start()
        return emu, {"api": api, "host": host, "port": broker_port, "topic": emu.topic,
                     "timeout_s": TEST_TIMEOUT_S, "settle_margin_s": 1.0}, None
    elif api == "cgminer":
        emu, extra = CgminerEmulator(miner), {}
    else:
        raise ValueError(api)
    await emu.start()
    table = {"api": api, "host": host, "port": emu.port, "timeout_s": TEST_TIMEOUT_S,
             "settle_margin_s": 1.0, **extra}
    return emu, table, expire


@contextlib.asynccontextmanager
async def rig(api: str, broker_port: int | None = None, *, fw_min_w: float | None = None,
              fw_max_w: float | None = None, start_w: float | None = None,
              start_running: bool = True, **miner_over: Any) -> AsyncIterator[Rig]:
    kind = MINER_FOR_API[api]
    cfg = site([miner_entry("m1", kind, {}, **miner_over)]).miners[0]  # the model only
    miner = EmulatedMiner(cfg, fw_min_w=fw_min_w, fw_max_w=fw_max_w, start_w=start_w,
                          start_running=start_running)
    emu, table, expire = await make_emulator(api, miner, broker_port)
    driver = build_drivers(site([miner_entry("m1", kind, table, **miner_over)]))["m1"]
    try:
        yield Rig(api, miner, emu, driver, cfg, expire)
    finally:
        await driver.close()
        await emu.stop()


async def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0, poll_s: float = 0.05,
                   ) -> None:
    """Wait for an async-or-sync condition, failing loudly after a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(poll_s)
