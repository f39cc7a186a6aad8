"""The miner drivers as one `MinerFleet`: one task per miner, so one slow miner delays
nobody. The tick only records the latest command; each miner's task applies the newest
one it finds (older ones are skipped, never queued) and reads the miner back between
writes. Drivers never raise (they report `unavailable`), and this layer still guards them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from controller.control.types import Commands, MinerCommand, MinerReading
from controller.miners.base import MinerDriver
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class DriverFleet:
    def __init__(self, drivers: Mapping[str, MinerDriver], poll_s: float = 2.0,
                 reassert_s: float = 30.0) -> None:
        self.drivers = dict(drivers)
        self.poll_s = poll_s
        self.reassert_s = reassert_s
        self._pending: dict[str, MinerCommand] = {}
        self._wake = {name: asyncio.Event() for name in self.drivers}
        self._tasks: list[asyncio.Task[None]] = []
        self._readings: dict[str, MinerReading] = {}
        # What was last applied, whether that is final, and when: the same command is not
        # sent again unless it failed in a way that may heal (unavailable, not applied), or
        # `reassert_s` passed (the driver then corrects a firmware that changed its own
        # target, e.g. after an overheat, and writes nothing if it still holds ours).
        self._done: dict[str, tuple[MinerCommand, str, float]] = {}  # cmd, action, when
        self.disobeying: set[str] = set()  # miners whose readback contradicts our command

    async def start(self) -> None:
        for name in self.drivers:
            self._tasks.append(asyncio.create_task(self._run(name), name=f"miner-{name}"))

    async def _run(self, name: str) -> None:
        drv = self.drivers[name]
        while True:
            cmd = self._pending.pop(name, None)
            try:
                if cmd is not None and self._worth_sending(name, cmd):
                    res = await drv.apply(cmd)
                    last = self._done.get(name)
                    if not res.ok and (last is None or last[0] != cmd):
                        log.warning("miner %s: %s %s", name, res.action, res.reason)
                    self._done[name] = (cmd, "ok" if res.ok else res.action, time.monotonic())
                status = await drv.read()
                r = status.reading()
                if r is not None and not drv.caps.can_pause:
                    r = r._replace(can_pause=False)
                if r is not None:
                    self._readings[name] = r
                    self._check_obeys(name, r)
                else:
                    self._readings.pop(name, None)  # unavailable: the core sees it as stale
            except asyncio.CancelledError:
                raise
            except Exception:  # a driver bug must not end this miner's task
                log.exception("miner %s: driver failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake[name].wait(), self.poll_s)
            self._wake[name].clear()

    def _worth_sending(self, name: str, cmd: MinerCommand) -> bool:
        last = self._done.get(name)
        if last is None or last[0] != cmd:
            return True
        if last[1] == "ok":
            return time.monotonic() - last[2] >= self.reassert_s
        # Refused or unsupported will not change by asking again; anything else may heal.
        return last[1] not in ("unsupported", "refused")

    def _check_obeys(self, name: str, r: MinerReading) -> None:
        """Log (once per episode) a miner that accepted a command and does not follow it:
        still drawing power after a pause, or well above its target, past the time the
        hardware needs (stop / full ramp + two polls). The control core already counts
        its measured power against every cap; this is what tells a person which one."""
        done = self._done.get(name)
        if done is None or done[1] != "ok":
            return
        cmd, _action, at = done
        c = self.drivers[name].cfg
        tol_w = max(0.1 * c.max_power_w, c.target_resolution_w)
        if not cmd.run:
            grace_s, over = c.stop_s + 2 * self.poll_s + 2.0, r.power_w > c.idle_power_w + tol_w
        else:
            grace_s = (c.max_power_w - c.min_power_w) / c.ramp_w_per_s + 2 * self.poll_s + 2.0
            over = r.power_w > cmd.power_target_w + tol_w
        if over and time.monotonic() - at > grace_s:
            if name not in self.disobeying:
                self.disobeying.add(name)
                log.error("miner %s ignores its command: %s, still drawing %.0f W %.0f s "
                          "later (firmware fault? check it on site)", name,
                          "paused" if not cmd.run else f"target {cmd.power_target_w:.0f} W",
                          r.power_w, time.monotonic() - at)
        elif not over and name in self.disobeying:
            self.disobeying.discard(name)
            log.warning("miner %s follows its commands again (%.0f W)", name, r.power_w)

    def readings(self) -> Mapping[str, MinerReading]:
        return self._readings

    def submit(self, commands: Commands) -> None:
        for cmd in commands.miners:
            drv = self.drivers.get(cmd.name)
            if drv is None:
                continue
            self._pending[cmd.name] = cmd
            self._wake[cmd.name].set()

    async def stop(self, shutdown_state: str) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if shutdown_state in ("pause", "off"):
            results = await asyncio.gather(
                *(drv.pause() for drv in self.drivers.values()), return_exceptions=True
            )
            for name, res in zip(self.drivers, results, strict=True):
                log.info("miner %s -> %s: %s", name, shutdown_state, res)
        for drv in self.drivers.values():
            with contextlib.suppress(Exception):
                await drv.close()
