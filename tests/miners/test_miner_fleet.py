"""The service's `DriverFleet` over real drivers and emulators: latest command wins, a hung
miner delays nobody and shows up as missing readings, shutdown pauses every miner."""

from __future__ import annotations

import asyncio
import time

from miner_harness import rig, wait_for

from controller.control.types import Commands, MinerCommand
from controller.runtime.fleet import DriverFleet


def _cmds(name: str, run: bool, w: float) -> Commands:
    return Commands((MinerCommand(name, run, w),), w, "grid", "grid")


async def test_fleet_applies_the_latest_command_and_reads_back() -> None:
    async with rig("braiins-os") as r:
        fleet = DriverFleet({"m1": r.driver}, poll_s=0.2)
        await fleet.start()
        try:
            for w in (700.0, 800.0, 1000.0):  # within one poll: only the newest matters
                fleet.submit(_cmds("m1", True, w))
            await wait_for(lambda: abs(r.miner.target_w - 1000.0) < 1, timeout_s=10)
            await wait_for(lambda: "m1" in fleet.readings()
                           and abs(fleet.readings()["m1"].power_w - 1000.0) < 15, 60)
            assert 700.0 not in r.miner.power_writes
        finally:
            await fleet.stop("pause")
        assert r.miner.paused


async def test_a_hung_miner_is_missing_from_readings_and_never_blocks_submit() -> None:
    async with rig("braiins-os") as r:
        fleet = DriverFleet({"m1": r.driver}, poll_s=0.2)
        await fleet.start()
        try:
            await wait_for(lambda: "m1" in fleet.readings(), 10)
            r.miner.hang = True
            t0 = time.perf_counter()
            for w in range(600, 1400, 10):
                fleet.submit(_cmds("m1", True, float(w)))
            assert time.perf_counter() - t0 < 0.05
            await wait_for(lambda: "m1" not in fleet.readings(), 30)
            r.miner.hang = False
            await wait_for(lambda: "m1" in fleet.readings(), 30)
        finally:
            await asyncio.wait_for(fleet.stop("leave"), 30)
        assert not r.miner.paused  # "leave": untouched
