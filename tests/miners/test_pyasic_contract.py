"""A widely used third-party client as a contract test: pyasic against every emulator.

pyasic (UpstreamData/pyasic, pinned in pyproject's dev extra) talks to these firmwares in
production. Here it must identify each emulated firmware the way it identifies real ones
(web root page, cgminer `version`/`devdetails`, Whatsminer `get_version`, the model) and read
hash rate, power and temperatures equal to what Hearth's own driver reads from the same
emulator. pyasic only knows the vendors' fixed ports (80, 4028, 4433), so each emulator
listens on an address of its own in 127.0.0.0/8 (loopback only; binding port 80 needs root,
which the test machines and CI have).
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import pyasic
import pytest
from miner_harness import MINER_FOR_API, miner_entry, site
from pyasic import settings as pyasic_settings
from pyasic.miners.backends import (
    AvalonMiner,
    BitAxe,
    BMMiner,
    BOSMiner,
    BTMinerV3,
    LUXMiner,
    VNish,
)

from controller.miners.axeos import PowerCurve
from controller.miners.base import MinerDriver, State
from controller.miners.cgminer import CgminerDriver
from controller.miners.factory import build_drivers
from hil.miners.avalon import AvalonEmulator
from hil.miners.axeos import AxeOsEmulator
from hil.miners.braiins import BraiinsEmulator
from hil.miners.cgminer import CgminerEmulator
from hil.miners.core import EmulatedMiner
from hil.miners.luxos import LuxosEmulator
from hil.miners.servers import Emulator
from hil.miners.vnish import VnishEmulator
from hil.miners.whatsminer import WhatsminerEmulator

# firmware -> the pyasic backend it must be identified as
EXPECTED: dict[str, type] = {
    "axeos": BitAxe, "braiins-os": BOSMiner, "whatsminer": BTMinerV3, "vnish": VNish,
    "luxos": LUXMiner, "avalon": AvalonMiner, "cgminer": BMMiner,
}


def _free_loopback_address(ports: tuple[int, ...]) -> str:
    """A 127.x.y.z where every vendor port is free (other test runs may use others)."""
    for _ in range(50):
        ip = f"127.{random.randint(16, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind((ip, port))
        except OSError as err:
            if err.errno == errno.EACCES:
                raise RuntimeError(f"binding {ip}:{port} needs root (pyasic only knows the "
                                   "vendor ports)") from err
            continue
        return ip
    raise RuntimeError("no free loopback address for the vendor ports")


async def _start(api: str, miner: EmulatedMiner) -> tuple[Emulator, str, dict[str, Any]]:
    """The emulator on the vendor's own ports; returns it, its address, the driver table."""
    emu: Emulator
    if api == "axeos":
        ip = _free_loopback_address((80,))
        emu = await AxeOsEmulator(miner, PowerCurve.load("bitaxe-gamma")).start(ip, 80)
        table: dict[str, Any] = {"port": 80, "min_write_interval_s": 0}
    elif api == "braiins-os":
        ip = _free_loopback_address((80, 4028))
        emu = await BraiinsEmulator(miner, password="root").start(ip, 80, rpc_port=4028)
        table = {"port": 80, "password": "root"}
    elif api == "whatsminer":
        ip = _free_loopback_address((4433, 4028))
        emu = await WhatsminerEmulator(miner, password="super").start(ip, 4433, rpc_port=4028)
        table = {"port": 4433, "password": "super"}
    elif api == "vnish":
        ip = _free_loopback_address((80, 4028))
        emu = await VnishEmulator(miner, password="admin").start(ip, 80, rpc_port=4028)
        table = {"port": 80, "password": "admin"}
    else:
        ip = _free_loopback_address((4028,))
        cls = {"luxos": LuxosEmulator, "avalon": AvalonEmulator, "cgminer": CgminerEmulator}
        emu = await cls[api](miner).start(ip, 4028)
        table = {"port": 4028}
    return emu, ip, {"api": api, "host": ip, "timeout_s": 3.0, **table}


@pytest.fixture(params=sorted(EXPECTED))
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Any, MinerDriver]]:
    api: str = request.param
    kind = MINER_FOR_API[api]
    cfg = site([miner_entry("m1", kind, {})]).miners[0]  # the model only
    miner = EmulatedMiner(cfg)
    emu, ip, table = await _start(api, miner)
    driver: MinerDriver
    if api == "cgminer":  # read-only telemetry: no site actuation fits it, build it alone
        driver = CgminerDriver(cfg, host=ip, port=4028, timeout_s=3.0)
    else:
        driver = build_drivers(site([miner_entry("m1", kind, table)]))["m1"]
    pyasic_settings.update("factory_get_timeout", 10)  # 2 shared cores: be patient
    try:
        found = await pyasic.get_miner(ip)
        yield api, found, driver
    finally:
        await driver.close()
        await emu.stop()


def _pyasic_temp(data: Any) -> float | None:
    """The hottest temperature pyasic reports: chip temperature where it has one."""
    temps = [b.chip_temp if b.chip_temp is not None else b.temp for b in data.hashboards]
    known = [float(t) for t in temps if t is not None]
    return max(known) if known else None


async def test_pyasic_identifies_the_firmware_and_reads_what_hearth_reads(
        pair: tuple[str, Any, MinerDriver]) -> None:
    api, found, driver = pair
    assert found is not None, f"pyasic did not recognise the {api} emulator"
    assert isinstance(found, EXPECTED[api]), f"{api}: pyasic saw {type(found).__mro__}"
    data = await found.get_data(include=["hashrate", "wattage", "hashboards"])
    st = await driver.read()
    assert st.state is State.RUNNING, st.detail
    assert data.hashrate is not None
    assert float(data.hashrate) == pytest.approx(st.hashrate_ths, rel=1e-3, abs=1e-3)
    if st.power_estimated:  # stock bmminer reports no power: neither may pyasic
        assert data.wattage is None
    else:
        assert data.wattage == pytest.approx(st.power_w, abs=1.0)
    temp = _pyasic_temp(data)
    assert temp is not None and st.temp_c is not None
    assert temp == pytest.approx(st.temp_c, abs=1.0)
