"""Demand-response test rig: the emulated site, `hearth run` as a process, and a record of
every write the miner emulators receive, time-stamped on the shared monotonic clock.

`time.monotonic()` is CLOCK_MONOTONIC on Linux, the same clock in every process, so the
test's "signal sent" and the emulator's "write received" compare directly even though the
controller runs in its own process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import mqtt_observer
import numpy as np
import simkit
import tomli_w

from hil.miners.core import EmulatedMiner
from hil.site import EmulatedSite

MARGIN_W = 50.0


class Write(NamedTuple):
    at_s: float  # monotonic, when the emulator accepted it
    miner: str
    kind: str  # target / pause / resume
    watts: float | None
    total_target_w: float  # every miner's target right after this write


@dataclass
class WriteLog:
    """Every power/run write the emulated miners accepted, with the total target after it."""

    miners: dict[str, EmulatedMiner]
    writes: list[Write] = field(default_factory=list)

    def install(self) -> None:
        for name, em in self.miners.items():
            self._wrap(name, em)

    def _wrap(self, name: str, em: EmulatedMiner) -> None:
        set_target, pause, resume = em.set_target, em.pause, em.resume

        def record(kind: str, watts: float | None) -> None:
            self.writes.append(Write(time.monotonic(), name, kind, watts,
                                     self.total_target_w()))

        def on_target(watts: float) -> None:
            set_target(watts)
            record("target", watts)

        def on_pause() -> None:
            pause()
            record("pause", None)

        def on_resume() -> None:
            resume()
            record("resume", None)

        em.set_target = on_target  # type: ignore[method-assign]
        em.pause = on_pause  # type: ignore[method-assign]
        em.resume = on_resume  # type: ignore[method-assign]

    def total_target_w(self) -> float:
        """What the miners are told to draw now: a paused miner 0, else its target."""
        return sum(0.0 if em.paused else em.target_w for em in self.miners.values())

    async def first_write(self, cond: Callable[[float], bool], after_s: float,
                          timeout_s: float, what: str) -> Write:
        """The first write after `after_s` that left the total target satisfying `cond`."""
        t0 = time.monotonic()
        while True:
            for w in self.writes:
                if w.at_s > after_s and cond(w.total_target_w):
                    return w
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError(
                    f"not within {timeout_s} s: {what}; total target "
                    f"{self.total_target_w():.0f} W; writes since: "
                    f"{[w for w in self.writes if w.at_s > after_s]}")
            await asyncio.sleep(0.01)



until = mqtt_observer.until  # the DR tests' poll (tests/mqtt_observer.py)


def site_file(tmp: Path) -> Path:
    """The example house without battery and tank; miners that boot and settle in seconds."""
    d = simkit.site_dict()
    del d["battery"], d["tank"]
    for m in d["miners"]:
        m.update(heats_tank=False, min_on_s=5, min_off_s=5, restart_s=2, stop_s=0.5)
    d["miners"][0]["ramp_w_per_s"] = 200.0
    d["control"].update(on_delay_s=1, off_delay_s=2, stale_timeout_s=5,
                        export_margin_w=MARGIN_W)
    p = tmp / "house.toml"
    p.write_bytes(tomli_w.dumps(d).encode())
    return p


async def start_site(tmp: Path, pv_w: float = 1300.0, load_w: float = 300.0) -> EmulatedSite:
    n = 4 * 60
    trace = simkit.trace(np.full(n, pv_w), load_w, step_s=60.0, start_s=1_745_000_000.0)
    site = EmulatedSite(site_file(tmp), trace, speed=1.0, step_s=0.2)
    await site.start()
    return site


def controller_site(site: EmulatedSite, tmp: Path, **sections: Any) -> Path:
    """Write the site file `hearth run` uses: the emulators' ports, a 1 s tick, the
    given extra sections (mqtt, openadr, ledger ...)."""
    d: dict[str, Any] = site.controller_site(tmp, tick_s=1.0, start_delay_max_s=0.0)
    d["devices"][0]["period_s"] = 0.25
    # Exported PV earns nothing here, so the miners are always worth running on surplus.
    d["tariffs"] = {**d.get("tariffs", {}), "export_price_per_kwh": 0.0}
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    path = tmp / "site.toml"
    path.write_bytes(tomli_w.dumps(d).encode())
    return path


class HearthProcess:
    """`hearth run` in its own process; its log in run.log."""

    def __init__(self, cfg_path: Path, tmp: Path, ledger: bool = False) -> None:
        self.log_path = tmp / "run.log"
        self._log = self.log_path.open("wb")
        args = [sys.executable, "-m", "controller.cli", "--log-level", "INFO", "run",
                "--config", str(cfg_path), "--no-hmi"]
        if not ledger:
            args.append("--no-ledger")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=simkit.ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self._log.close()
