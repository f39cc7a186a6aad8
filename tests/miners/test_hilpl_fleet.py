"""The fleet names a miner that accepts commands and does not follow them (the rig's
`miner_ignores_target` fault, here on the Braiins OS emulator directly): once per episode,
and says so again when it obeys."""

from __future__ import annotations

import asyncio
import logging

import pytest
from miner_harness import rig, wait_for

from controller.control.types import Commands, MinerCommand
from controller.runtime.fleet import DriverFleet


def _cmds(name: str, run: bool, w: float) -> Commands:
    return Commands((MinerCommand(name, run, w),), w, "grid", "grid")


async def test_fleet_logs_a_miner_that_ignores_its_pause(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="controller.runtime.fleet")
    async with rig("braiins-os") as r:
        fleet = DriverFleet({"m1": r.driver}, poll_s=0.2)
        await fleet.start()
        try:
            fleet.submit(_cmds("m1", True, 1000.0))
            await wait_for(lambda: "m1" in fleet.readings()
                           and fleet.readings()["m1"].power_w > 900, 30)
            assert "m1" not in fleet.disobeying
            r.miner.ignore_commands = True  # the firmware keeps hashing whatever it is told
            fleet.submit(_cmds("m1", False, 0.0))
            await wait_for(lambda: "m1" in fleet.disobeying, 10)
            assert r.miner.paused and r.miner.power_w > 900  # accepted, not followed
            text = caplog.text
            assert "miner m1 ignores its command: paused, still drawing" in text
            await asyncio.sleep(1.0)
            assert caplog.text.count("ignores its command") == 1  # once per episode
            r.miner.ignore_commands = False
            fleet.submit(_cmds("m1", True, 800.0))  # obeyed again: the episode ends
            await wait_for(lambda: "m1" not in fleet.disobeying, 30)
            assert "miner m1 follows its commands again" in caplog.text
        finally:
            await fleet.stop("pause")
